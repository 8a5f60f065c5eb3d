"""A/B testing, part 3: run a plan's jobs, each in its own run folder, inside
one sweep folder:

    <out>/<recipe>/sweep-<stamp>/
        sweep.json                   jobs, labels, axes, run folders, order, statuses
        01-seed-1-light-rembrandt/   a normal run folder (recipe.resolved.yaml,
        ...                          graph.api.json, run.json, images)
        contact.png, report.html

One lane per server. The calling thread dispatches: it keeps up to 1 + `ahead`
of our prompts queued on each server, gives the next job to the least-loaded
server with room (GET /queue), and picks for that server the job that best
follows the last one it got (order.nearest), so each server's cache stays
warm. A follower thread per server waits for that server's prompts, in order,
on one WebSocket, so no server idles between jobs. A job that fails is
recorded in its run folder and in sweep.json, and the others go on.
"""
from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from compiler._version import __version__
from compiler.check.catalogue import check_graph
from compiler.files import write_atomic
from compiler.errors import ConnectError, InterruptedRun, RecipeError, RunError
from compiler.ir.graph import Graph
from compiler.ab.order import Footprint, footprint, greedy_order, nearest, predicted, reexecuted
from compiler.run.progress import Reporter
from compiler.ir.recipe import Recipe
from compiler.run.catalogues import CatalogueProvider
from compiler.run.folder import RunRecord, prepare
from compiler.run.steps import finish, follow, preflight, submit
from compiler.ab.variants import Job, Plan, overrides_by_key

__all__ = ["Compiled", "run_sweep", "FINISHED"]

FINISHED = ("success", "failed", "rejected", "interrupted", "not run")


@dataclass
class Compiled:
    """One job, resolved and lowered, with its changes to the recipe as written."""
    job: Job
    recipe: Recipe
    graph: Graph
    differences: List[dict] = field(default_factory=list)


class Lane:
    """One server: its connections, its catalogue, the prompts we have queued there."""

    def __init__(self, index: int, server: str, make_client: Callable, cache_dir: Optional[Path]):
        self.index = index
        self.client = make_client(server)   # the dispatcher's: POST /prompt, GET /queue
        self.catalogues = CatalogueProvider(self.client, cache_dir)
        self.server = self.client.address.http_base
        self.reader = make_client(server)   # the follower's own: a requests Session is not thread-safe
        self.stream = None
        self.inflight: deque = deque()      # (job index, RunRecord), in queue order
        self.last: Optional[Footprint] = None
        self.down = ""                      # why this server gets no more jobs
        self.thread: Optional[threading.Thread] = None


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def job_folder(job: Job, width: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", job.label).strip("-.")[:60] or "job"
    return f"{job.index + 1:0{width}d}-{slug}"


class Sweep:
    """One sweep folder and its jobs; `run_sweep` drives it."""

    def __init__(self, plan: Plan, compiled: Sequence[Compiled], servers: Sequence[str],
                 make_client: Callable, out: Path, *, order: str, ahead: int,
                 say: Callable[[str], None], cache_dir: Optional[Path]):
        if order not in ("cache", "naive"):
            raise ValueError(f"order must be cache or naive, not {order!r}")
        self.plan, self.compiled, self.order, self.ahead = plan, list(compiled), order, ahead
        self.say = say
        self.prints = [footprint(c.graph) for c in self.compiled]
        self.lanes = [Lane(i, s, make_client, cache_dir) for i, s in enumerate(servers)]
        self.fits: Dict[int, set] = {i: set() for i in range(len(self.compiled))}
        self.misfit: Dict[int, RecipeError] = {}
        self.cond = threading.Condition()
        self.closing = False
        self.submitting: Optional[tuple] = None
        name = self.compiled[0].recipe.name
        self.folder = Path(out) / name / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        self.folder.mkdir(parents=True)
        naive = list(range(len(self.compiled)))
        self.planned = greedy_order(self.prints) if order == "cache" else naive
        self.remaining = list(self.planned)
        self.data = self._initial([lane.server for lane in self.lanes], naive)
        self._write()

    # -- sweep.json -------------------------------------------------------------------
    def _initial(self, servers: Sequence[str], naive: List[int]) -> dict:
        width = max(2, len(str(len(self.compiled))))
        c0 = self.compiled[0].recipe
        return {
            "recipe": c0.name, "source": c0.source, "recipe_version": __version__,
            "created_at": _stamp(), "status": "running", "servers": list(servers),
            "order_strategy": "cache-aware" if self.order == "cache" else "naive", "ahead": self.ahead,
            "axes": [{"key": a.key, "label": a.label, "values": list(a.values)} for a in self.plan.axes],
            "jobs": [{"index": c.job.index, "label": c.job.label, "overrides": overrides_by_key(c.job),
                      "coords": dict(c.job.coords), "folder": job_folder(c.job, width),
                      "status": "planned", "seed": c.recipe.sampler.seed, "nodes": len(c.graph.nodes),
                      "differences": c.differences} for c in self.compiled],
            "planned_order": self.planned, "order": [],
            # Predicted for one server under ComfyUI's classic cache (REFERENCE A5).
            "reexecuted_nodes": {"naive": sum(predicted(self.prints, naive).values()),
                                 "planned": sum(predicted(self.prints, self.planned).values())},
        }

    def _write(self) -> None:
        write_atomic(self.folder / "sweep.json",   # default=str: a YAML date in vars is still written
                     json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n")

    def _job(self, index: int, **fields) -> None:
        with self.cond:
            self.data["jobs"][index].update(fields)
            self._write()

    # -- servers ------------------------------------------------------------------------
    def open_lanes(self) -> None:
        for lane in self.lanes:
            try:
                catalogue = lane.catalogues.for_graphs(c.graph for c in self.compiled)
                lane.stream = lane.reader.open_events()
            except RunError as exc:
                lane.down = str(exc)
                self.say(f"warning: leaving out {lane.server}: {exc}")
                continue
            for i, c in enumerate(self.compiled):   # each server's catalogue, each graph
                try:
                    check_graph(c.graph, catalogue, c.recipe.locate)
                    self.fits[i].add(lane.index)
                except RecipeError as exc:
                    self.misfit.setdefault(i, exc)
        if all(lane.down for lane in self.lanes):
            reasons = "; ".join(f"{lane.server}: {lane.down}" for lane in self.lanes)
            self._close_all("failed", f"no server could be reached ({reasons})")
            raise ConnectError(f"no server could be reached: {reasons}")
        for lane in self.lanes:
            if not lane.down:
                lane.thread = threading.Thread(target=self._follow_lane, args=(lane,), daemon=True,
                                               name=f"sweep-follow-{lane.index}")
                lane.thread.start()

    def _least_loaded(self, lanes: List[Lane]) -> Lane:
        """Fewest prompts on the server (anyone's, GET /queue), then fewest of ours."""
        if len(lanes) == 1:
            return lanes[0]
        loads = {}
        for lane in lanes:
            try:
                q = lane.client.queue()
                loads[lane.index] = len(q["queue_running"]) + len(q["queue_pending"])
            except RunError:
                loads[lane.index] = float("inf")   # not answering: the last choice, not an error
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
            self._record_unrun(index, "no server that fits this job is left")

    def _reject_misfits(self) -> None:
        for index in [i for i in self.remaining if not self.fits[i]]:
            self.remaining.remove(index)
            error = self.misfit.get(index) or RunError("no server could take this job")
            self._record_unrun(index, error)

    def _lane_with_room(self) -> Optional[Lane]:
        with self.cond:
            while True:
                usable = [lane for lane in self.lanes if not lane.down
                          and any(lane.index in self.fits[i] for i in self.remaining)]
                if not usable:
                    return None
                room = [lane for lane in usable if len(lane.inflight) <= self.ahead]
                if room:
                    break
                self.cond.wait(0.5)
        return self._least_loaded(room)

    def _pick(self, lane: Lane) -> Optional[int]:
        candidates = [i for i in self.remaining if lane.index in self.fits[i]]
        if not candidates:
            return None
        return nearest(lane.last, candidates, self.prints) if self.order == "cache" else candidates[0]

    def _prepare(self, index: int, lane: Lane) -> RunRecord:
        """A normal run folder, named by job inside the sweep folder."""
        c, entry = self.compiled[index], self.data["jobs"][index]
        record = prepare(c.recipe, c.graph, self.folder, lane.client, folder=self.folder / entry["folder"])
        record.update(sweep={"folder": "..", "job": index, "label": c.job.label,
                             "overrides": list(c.job.overrides)})
        return record

    def _submit(self, lane: Lane, index: int) -> None:
        c = self.compiled[index]
        record = self._prepare(index, lane)
        self.submitting = (lane, index, record)   # for Ctrl-C between POST /prompt and inflight
        try:
            catalogue = preflight(lane.client, c.recipe, c.graph, record, lane.catalogues)
            record.update(client_id=lane.stream.client_id)   # one socket follows all our prompts
            submit(lane.client, c.recipe, c.graph, record, catalogue)
        except RecipeError as exc:
            self.submitting = None
            record.fail(exc)
            if isinstance(exc, ConnectError):
                lane.down = str(exc)
            self._done(index, record, exc)
            return
        with self.cond:   # one hold: the follower must not finish it before it reads "queued"
            rerun = reexecuted(lane.last, self.prints[index])
            lane.last = self.prints[index]
            self.data["order"].append(index)
            position = len(self.data["order"])
            self._job(index, status="queued", server=lane.server, prompt_id=record.data["prompt_id"],
                      position=position, reexecuted_nodes=rerun)
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
        self._done(index, record, error)

    # -- following ---------------------------------------------------------------------
    def _follow_lane(self, lane: Lane) -> None:
        while True:
            with self.cond:
                while not lane.inflight and not self.closing:
                    self.cond.wait()
                if not lane.inflight:
                    return
                index, record = lane.inflight[0]
            error = self._collect(lane, index, record)
            with self.cond:
                lane.inflight.popleft()
                self.cond.notify_all()
            self._done(index, record, error)

    def _collect(self, lane: Lane, index: int, record: RunRecord) -> Optional[RecipeError]:
        c = self.compiled[index]
        quiet = Reporter(c.graph, io.StringIO())   # the sweep reports per job, not per node
        try:
            outcome = follow(lane.reader, lane.stream, record, quiet, c.graph)
            finish(lane.reader, c.recipe, c.graph, record, outcome, quiet)
            return None
        except RecipeError as exc:
            record.fail(exc)
            return exc
        except Exception as exc:   # a bug here must cost one job, not the others' results
            error = RunError(f"internal error: {type(exc).__name__}: {exc}")
            record.fail(error)
            return error

    def _done(self, index: int, record: RunRecord, error: Optional[RecipeError]) -> None:
        entry = self.data["jobs"][index]
        images = [f"{entry['folder']}/{f['file']}" for f in record.data.get("outputs") or []]
        status = record.data.get("status", "failed")
        self._job(index, status=status, images=images, error=str(error) if error else None,
                  server_span_s=record.data.get("server_span_s"), cached=len(record.data.get("cached") or []))
        done = sum(1 for j in self.data["jobs"] if j["status"] in FINISHED and j["status"] != "not run")
        self.say(f"[{done}/{len(self.compiled)} done] {self.compiled[index].job.label}: {status}"
                 + (f": {str(error).splitlines()[0]}" if error else f", {len(images)} image(s)"))

    # -- the end -----------------------------------------------------------------------
    def drain(self) -> None:
        with self.cond:
            while any(lane.inflight for lane in self.lanes if lane.thread):
                self.cond.wait(0.5)
            self.closing = True
            self.cond.notify_all()
        for lane in self.lanes:
            if lane.thread:
                lane.thread.join(5)
            if lane.stream is not None:
                lane.stream.close()

    def interrupt(self) -> None:
        """Ctrl-C: stop our prompts (the running one and those still queued), keep the rest."""
        self.say("interrupting the sweep (its finished runs are kept)")
        for lane in self.lanes:
            ours = list(lane.inflight)
            if self.submitting and self.submitting[0] is lane:   # maybe queued already
                ours.append(self.submitting[1:])
            if not ours:
                continue
            pids = [record.data["prompt_id"] for _, record in ours]
            try:   # ComfyClient has no call for it: POST /queue {"delete": [...]} drops pending ones
                lane.client.delete_queued(pids)
                for pid in pids:
                    lane.client.interrupt(pid)
            except RunError as exc:
                self.say(f"warning: could not stop prompts on {lane.server}: {exc}")
            for index, record in ours:
                record.update(status="interrupted", error="the sweep was interrupted")
                self._job(index, status="interrupted", error="the sweep was interrupted")
        self._close_all("interrupted", "the sweep was interrupted")

    def _close_all(self, status: str, why: str) -> None:
        """Every job not yet queued is "not run" (its run folder too, if it has one)."""
        for entry in self.data["jobs"]:
            if entry["status"] == "planned":
                folder = self.folder / entry["folder"]
                if (folder / "run.json").is_file():
                    RunRecord.load(folder).update(status="not run", error=why)
                self._job(entry["index"], status="not run", error=why)
        self.remaining = []
        self.data["status"] = status

    def finish(self) -> None:
        """Contact sheet, report and final status: the runs are safe on disk already."""
        statuses = [j["status"] for j in self.data["jobs"]]
        if self.data["status"] == "running":
            ok = statuses.count("success")
            self.data["status"] = "success" if ok == len(statuses) else ("partial" if ok else "failed")
        self.data.update(finished_at=_stamp(), counts={s: statuses.count(s) for s in sorted(set(statuses))})
        for name, make in (("contact sheet", _contact), ("report", _report)):
            try:
                make(self.folder, self.data)
            except Exception as exc:   # never lose finished runs to a picture or a page
                self.say(f"warning: no {name}: {type(exc).__name__}: {exc}")
        with self.cond:
            self._write()


def _contact(folder: Path, data: dict) -> None:
    from compiler.ab.contact import write_contact_sheet
    write_contact_sheet(folder, data)


def _report(folder: Path, data: dict) -> None:
    from compiler.ab.report import write_report
    write_report(folder, data)


def run_sweep(plan: Plan, compiled: Sequence[Compiled], servers: Sequence[str], make_client: Callable,
              out: Path, *, order: str = "cache", ahead: int = 1, say: Callable[[str], None] = print,
              cache_dir: Optional[Path] = None) -> Sweep:
    """Run every job; returns the Sweep (its `folder` and `data`, as in sweep.json).
    Raises ConnectError when no server answers, InterruptedRun on Ctrl-C."""
    sweep = Sweep(plan, compiled, servers, make_client, out, order=order, ahead=ahead, say=say,
                  cache_dir=cache_dir)
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
