"""A/B testing, part 3: run a plan's jobs, each in its own run folder, inside
one sweep folder:

    <out>/<recipe>/sweep-<stamp>/
        sweep.json                   jobs, labels, axes, run folders, order, statuses
        01-seed-1-light-rembrandt/   a normal run folder (recipe.resolved.yaml,
        ...                          graph.api.json, run.json, images)
        contact.png, report.html

This module is the dispatcher; ab/lanes.py has one lane per server (with the
follower thread that collects its prompts), ab/record.py the record that owns
sweep.json. The calling thread dispatches: it keeps up to 1 + `ahead` of our
prompts queued on each server, gives the next job to the least-loaded server
with room (GET /queue), and picks for that server the job that best follows
the last one it got (order.nearest), so each server's cache stays warm. No
server idles between jobs. A job that fails is recorded in its run folder and
in sweep.json, and the others go on.

A server that stops answering mid-sweep (a failed submit, or its lane's
`alive` check while the dispatcher waits) is marked down with the reason, in
sweep.json and the report; its queued and in-flight jobs go back to the
remaining ones, each with a fresh run folder, for the other servers.
"""
from __future__ import annotations

import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from compiler.ab.lanes import PROBE_EVERY, Lane
from compiler.ab.order import footprint, greedy_order, nearest, reexecuted
from compiler.ab.record import FINISHED, SweepRecord
from compiler.ab.variants import Job, Plan
from compiler.errors import ConnectError, InterruptedRun, RecipeError, RunError
from compiler.ir.graph import Graph
from compiler.ir.recipe import Recipe
from compiler.run.folder import RunRecord, prepare

__all__ = ["Compiled", "check_servers", "run_sweep", "FINISHED"]


@dataclass
class Compiled:
    """One job, resolved and lowered, with its changes to the recipe as written."""
    job: Job
    recipe: Recipe
    graph: Graph
    differences: List[dict] = field(default_factory=list)


class Sweep:
    """One sweep folder and its jobs; `run_sweep` drives it."""

    def __init__(self, plan: Plan, compiled: Sequence[Compiled], servers: Sequence[str],
                 make_client: Callable, out: Path, *, order: str, ahead: int,
                 say: Callable[[str], None], cache_dir: Optional[Path], held: Optional[dict] = None):
        if order not in ("cache", "naive"):
            raise ValueError(f"order must be cache or naive, not {order!r}")
        self.compiled, self.order, self.ahead, self.say = list(compiled), order, ahead, say
        self.prints = [footprint(c.graph) for c in self.compiled]
        self.cond = threading.Condition()
        self.lanes = [Lane(i, s, make_client, cache_dir, self.cond, (held or {}).get(s))
                      for i, s in enumerate(servers)]
        self.fits: Dict[int, set] = {i: set() for i in range(len(self.compiled))}
        self.misfit: Dict[int, RecipeError] = {}
        self.submitting: Optional[tuple] = None
        name = self.compiled[0].recipe.name
        self.folder = Path(out) / name / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        self.folder.mkdir(parents=True)
        naive = list(range(len(self.compiled)))
        self.planned = greedy_order(self.prints) if order == "cache" else naive
        self.remaining = list(self.planned)
        self.record = SweepRecord(self.folder, plan, self.compiled, [lane.server for lane in self.lanes],
                                  order=order, ahead=ahead, planned=self.planned, prints=self.prints, say=say)

    @property
    def data(self) -> dict:
        """sweep.json, as it stands."""
        return self.record.data

    # -- servers ------------------------------------------------------------------------
    def open_lanes(self) -> None:
        for lane in self.lanes:
            try:
                fits = lane.open(self.compiled)
            except RunError as exc:
                self.say(f"warning: leaving out {lane.server}: {exc}")
                continue
            for i, error in fits.items():   # each server's catalogue, each graph
                if error is None:
                    self.fits[i].add(lane.index)
                else:
                    self.misfit.setdefault(i, error)
        if all(lane.down for lane in self.lanes):
            reasons = "; ".join(f"{lane.server}: {lane.down}" for lane in self.lanes)
            self._close_all("failed", f"no server could be reached ({reasons})")
            raise ConnectError(f"no server could be reached: {reasons}")
        for lane in self.lanes:
            if not lane.down:
                lane.start(self.compiled, self.record.done)

    def _least_loaded(self, lanes: List[Lane]) -> Lane:
        """Fewest prompts on the server (anyone's, GET /queue), then fewest of ours."""
        if len(lanes) == 1:
            return lanes[0]
        loads = {lane.index: lane.load() for lane in lanes}
        return min(lanes, key=lambda lane: (loads[lane.index], len(lane.inflight), lane.index))

    # -- dispatching -------------------------------------------------------------------
    def dispatch(self) -> None:
        self._reject_misfits()
        while self.remaining:
            lane = self._lane_with_room()
            if lane is None:
                break
            index = self._pick(lane)
            if index is None:
                continue
            self.remaining.remove(index)
            self._submit(lane, index)
        for index in list(self.remaining):   # their servers went away
            self.remaining.remove(index)
            self._record_unrun(index, "no server that fits this job is left")

    def _reject_misfits(self) -> None:
        for index in [i for i in self.remaining if not self.fits[i]]:
            self.remaining.remove(index)
            error = self.misfit.get(index) or RunError("no server could take this job")
            self._record_unrun(index, error)

    def _lane_with_room(self) -> Optional[Lane]:
        while True:
            with self.cond:
                usable = [lane for lane in self.lanes if not lane.down
                          and any(lane.index in self.fits[i] for i in self.remaining)]
                if not usable:
                    return None
                room = [lane for lane in usable if len(lane.inflight) <= self.ahead]
                if room:
                    break
                self.cond.wait(PROBE_EVERY)
            self._watch()
        return self._least_loaded(room)

    def _watch(self) -> None:
        """Ask each lane with our prompts whether its server still answers."""
        now = time.monotonic()
        for lane in self.lanes:
            if lane.thread and not lane.down and lane.inflight and not lane.alive(now):
                self._lost(lane)

    def _lost(self, lane: Lane) -> None:
        """`lane` is down: its jobs go back to the others, and it is said so."""
        with self.cond:
            jobs = lane.take_back()
            for index, _ in jobs:
                if index not in self.remaining:
                    self.remaining.append(index)
                self.record.job(index, status="planned", moved_from=lane.server)
            self.cond.notify_all()
        self.record.server_down(lane.server, lane.down, [index for index, _ in jobs])
        self.say(f"warning: {lane.server} is down ({lane.down}); "
                 f"{len(jobs)} of its job(s) go to the other servers")

    def _pick(self, lane: Lane) -> Optional[int]:
        candidates = [i for i in self.remaining if lane.index in self.fits[i]]
        if not candidates:
            return None
        return nearest(lane.last, candidates, self.prints) if self.order == "cache" else candidates[0]

    def _prepare(self, index: int, lane: Lane) -> RunRecord:
        """A normal run folder, named by job inside the sweep folder."""
        c = self.compiled[index]
        folder = self.record.run_folder(index)
        if folder.exists():   # a job taken back from a server that went down: start it afresh
            shutil.rmtree(folder)
        record = prepare(c.recipe, c.graph, self.folder, lane.client, folder=folder)
        record.update(sweep={"folder": "..", "job": index, "label": c.job.label,
                             "overrides": list(c.job.overrides)})
        return record

    def _submit(self, lane: Lane, index: int) -> None:
        c = self.compiled[index]
        record = self._prepare(index, lane)
        self.submitting = (lane, index, record)   # for Ctrl-C between POST /prompt and inflight
        try:
            lane.submit(c, record)
        except RecipeError as exc:
            self.submitting = None
            if lane.down:   # the server went away: this job and its others go elsewhere
                self.remaining.append(index)
                self._lost(lane)
                return
            record.fail(exc)
            self.record.done(index, record, exc)
            return
        with self.cond:   # one hold: the follower must not finish it before it reads "queued"
            rerun = reexecuted(lane.last, self.prints[index])
            lane.last = self.prints[index]
            position = self.record.queued(index, server=lane.server, prompt_id=record.data["prompt_id"],
                                          reexecuted_nodes=rerun)
            lane.inflight.append((index, record))
            self.submitting = None
            self.cond.notify_all()
        self.say(f"[{position}/{len(self.compiled)}] queued {c.job.label} on {lane.server} "
                 f"({rerun} of {len(c.graph.nodes)} nodes to run)")

    def _record_unrun(self, index: int, error) -> None:
        lane = next((lane for lane in self.lanes if not lane.down), self.lanes[0])
        record = self._prepare(index, lane)
        error = error if isinstance(error, RecipeError) else RunError(str(error))
        record.fail(error)
        self.record.done(index, record, error)

    # -- the end -----------------------------------------------------------------------
    def drain(self) -> None:
        """Wait for every job; those a dying server hands back are dispatched again."""
        while True:
            with self.cond:
                if not self.remaining and not any(lane.inflight for lane in self.lanes if lane.thread):
                    for lane in self.lanes:
                        lane.closing = True
                    self.cond.notify_all()
                    break
                if not self.remaining:
                    self.cond.wait(PROBE_EVERY)
            self._watch()
            if self.remaining:
                self.dispatch()
        for lane in self.lanes:
            lane.close()

    def interrupt(self) -> None:
        """Ctrl-C: stop our prompts (the running one and those still queued), keep the rest."""
        self.say("interrupting the sweep (its finished runs are kept)")
        for lane in self.lanes:
            ours = list(lane.inflight)
            if self.submitting and self.submitting[0] is lane:   # maybe queued already
                ours.append(self.submitting[1:])
            if not ours:
                continue
            error = lane.stop_prompts([record for _, record in ours])
            if error is not None:
                self.say(f"warning: could not stop prompts on {lane.server}: {error}")
            for index, record in ours:
                record.update(status="interrupted", error="the sweep was interrupted")
                self.record.job(index, status="interrupted", error="the sweep was interrupted")
        self._close_all("interrupted", "the sweep was interrupted")

    def _close_all(self, status: str, why: str) -> None:
        self.record.close_all(status, why)
        self.remaining = []

    def finish(self) -> None:
        self.record.finish()


def check_servers(servers: Sequence[str], make_client: Callable) -> Dict[str, str]:
    """Ask each server once (GET /queue) before any job is resolved: {server:
    why not} for those that do not answer. Raises ConnectError, having
    written nothing, when none does: a 1000-job sweep against a dead server
    should not resolve 1000 jobs first."""
    silent = {}
    for server in servers:
        try:
            make_client(server).queue()
        except RunError as exc:
            silent[server] = str(exc)
    if silent and len(silent) == len(servers):
        reasons = "; ".join(f"{s}: {why}" for s, why in silent.items())
        raise ConnectError(f"no server could be reached: {reasons}")
    return silent


def run_sweep(plan: Plan, compiled: Sequence[Compiled], servers: Sequence[str], make_client: Callable,
              out: Path, *, order: str = "cache", ahead: int = 1, say: Callable[[str], None] = print,
              cache_dir: Optional[Path] = None, held: Optional[dict] = None) -> Sweep:
    """Run every job; returns the Sweep (its `folder` and `data`, as in sweep.json).
    `held`: catalogues already fetched, by server as given. Raises
    ConnectError when no server answers, InterruptedRun on Ctrl-C."""
    sweep = Sweep(plan, compiled, servers, make_client, out, order=order, ahead=ahead, say=say,
                  cache_dir=cache_dir, held=held)
    say(f"sweep folder {sweep.folder}: {len(sweep.compiled)} jobs on {len(servers)} server(s)")
    try:
        sweep.open_lanes()
        sweep.dispatch()
        sweep.drain()
    except KeyboardInterrupt:
        sweep.interrupt()
        sweep.finish()
        raise InterruptedRun(f"sweep interrupted; finished runs are in {sweep.folder}") from None
    except ConnectError:
        sweep.finish()
        raise
    sweep.finish()
    return sweep
