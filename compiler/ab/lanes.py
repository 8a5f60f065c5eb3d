"""One lane per server of a sweep: its connections, its catalogue provider,
the prompts we have queued there, and the follower thread that collects them.

The dispatcher (ab/sweep.py) queues a job on a lane with `submit`, from its
own thread and through the lane's `client`; the follower waits for the lane's
prompts in queue order on one WebSocket, through its own `reader` client (a
client makes one HTTP request at a time, so the two do not wait on each
other), and hands each finished job to
`on_done`. `inflight` is shared with the dispatcher under one Condition.

A server can die mid-sweep. The follower would then wait out its idle
timeout, so the dispatcher also asks each busy lane's server (`alive`) while
it waits; after MISSES failed answers in a row the lane goes `down` and
`take_back` hands its queued and in-flight jobs to the dispatcher, which
gives them to the other servers. Whatever the lane's follower learns later
about a job it no longer holds is dropped.
"""
from __future__ import annotations

import io
import threading
from collections import deque
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from compiler.ab.order import Footprint
from compiler.check.catalogue import check_graph
from compiler.errors import ConnectError, RecipeError, RunError
from compiler.run.catalogues import CatalogueProvider
from compiler.run.folder import RunRecord
from compiler.run.progress import Reporter
from compiler.run.steps import finish, follow, preflight, submit

__all__ = ["Lane"]

Done = Callable[[int, RunRecord, Optional[RecipeError]], None]

MISSES = 2          # failed answers in a row before a lane's server counts as gone
PROBE_EVERY = 0.5   # seconds between those questions, while the dispatcher waits


class Lane:
    """One server: its connections, its catalogue, the prompts we have queued there."""

    def __init__(self, index: int, server: str, make_client: Callable, cache_dir: Optional[Path],
                 cond: threading.Condition, held=None):
        self.index, self.cond = index, cond
        self.client = make_client(server)   # the dispatcher's: POST /prompt, GET /queue
        self.server = self.client.address.http_base
        self.reader = make_client(server)   # the follower's own
        self.catalogues = CatalogueProvider(self.client, cache_dir)
        self.catalogues.current = held      # one fetched already (to complete model names), or None
        self.stats: Optional[dict] = None   # GET /system_stats, asked once per sweep
        self.stream = None
        self.inflight: deque = deque()      # (job index, RunRecord), in queue order
        self.last: Optional[Footprint] = None
        self.down = ""                      # why this server gets no more jobs
        self.closing = False
        self.thread: Optional[threading.Thread] = None
        self.misses, self.probed = 0, 0.0

    def open(self, compiled: Sequence) -> Dict[int, Optional[RecipeError]]:
        """Connect and check every job against this server's catalogue: for
        each job, None if it fits, else why not. Raises RunError if the server
        cannot be reached (then `down` says why)."""
        try:
            catalogue = self.catalogues.for_graphs(c.graph for c in compiled)
            self.stream = self.reader.open_events()
        except RunError as exc:
            self.down = str(exc)
            raise
        fits: Dict[int, Optional[RecipeError]] = {}
        for i, c in enumerate(compiled):
            try:
                check_graph(c.graph, catalogue, c.recipe.locate)
                fits[i] = None
            except RecipeError as exc:
                fits[i] = exc
        return fits

    def load(self) -> float:
        """Prompts on the server (anyone's, GET /queue); not answering: the last choice."""
        try:
            q = self.client.queue()
            return len(q["queue_running"]) + len(q["queue_pending"])
        except RunError:
            return float("inf")

    def alive(self, now: float) -> bool:
        """False once the server has not answered MISSES questions in a row
        (asked at most every PROBE_EVERY s; from the dispatcher's thread)."""
        if self.down:
            return False
        if now - self.probed < PROBE_EVERY:
            return True
        self.probed = now
        try:
            self.client.queue()
            self.misses = 0
        except ConnectError as exc:
            self.misses += 1
            if self.misses >= MISSES:
                self.down = f"stopped answering mid-sweep: {exc}"
        except RunError:
            self.misses = 0   # it answered, if oddly: alive
        return not self.down

    def take_back(self) -> list:
        """Under the Condition, after `down` was set: our jobs here, to go elsewhere."""
        jobs = list(self.inflight)
        self.inflight.clear()
        return jobs

    def submit(self, c, record: RunRecord) -> None:
        """Check and queue one job (a Compiled) whose run folder is prepared, on
        the lane's one socket. Raises RecipeError; a ConnectError marks the lane down."""
        try:
            if self.stats is None:
                self.stats = self.client.system_stats()
            catalogue = preflight(self.client, c.recipe, c.graph, record, self.catalogues, self.stats)
            record.update(client_id=self.stream.client_id)   # one socket follows all our prompts
            submit(self.client, c.recipe, c.graph, record, catalogue)
        except ConnectError as exc:
            self.down = str(exc)
            raise

    def start(self, compiled: Sequence, on_done: Done) -> None:
        self.thread = threading.Thread(target=self._follow, args=(compiled, on_done), daemon=True,
                                       name=f"sweep-follow-{self.index}")
        self.thread.start()

    def _follow(self, compiled: Sequence, on_done: Done) -> None:
        while True:
            with self.cond:
                while not self.inflight and not self.closing:
                    self.cond.wait()
                if not self.inflight:
                    return
                index, record = self.inflight[0]
            error = self._collect(compiled[index], record)
            with self.cond:
                if not self.inflight or self.inflight[0][1] is not record:
                    return   # taken back (the server went down): the job runs elsewhere
                self.inflight.popleft()
                self.cond.notify_all()
            on_done(index, record, error)

    def _collect(self, c, record: RunRecord) -> Optional[RecipeError]:
        quiet = Reporter(c.graph, io.StringIO())   # the sweep reports per job, not per node
        try:
            outcome = follow(self.reader, self.stream, record, quiet, c.graph)
            finish(self.reader, c.recipe, c.graph, record, outcome, quiet)
            return None
        except RecipeError as exc:
            if not self.down:   # a job taken back has a new run folder: leave it alone
                record.fail(exc)
            return exc
        except Exception as exc:   # a bug here must cost one job, not the others' results
            error = RunError(f"internal error: {type(exc).__name__}: {exc}")
            record.fail(error)
            return error

    def stop_prompts(self, records: Sequence[RunRecord]) -> Optional[RunError]:
        """Drop our queued prompts and interrupt the running one; the error, if that failed."""
        pids = [record.data["prompt_id"] for record in records]
        try:
            self.client.delete_queued(pids)   # POST /queue {"delete": [...]} drops pending ones
            for pid in pids:
                self.client.interrupt(pid)
        except RunError as exc:
            return exc
        return None

    def close(self) -> None:
        """After `closing` was set under the Condition: let the follower end, close the socket."""
        if self.thread:
            self.thread.join(5)
        if self.stream is not None:
            self.stream.close()
