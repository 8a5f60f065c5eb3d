"""`recipe watch`: the edit loop. Save the recipe (or a preset it extends),
see the new image.

The loop looks at the mtimes, sizes and inodes of the recipe's files (the
recipe, its extends chain and any --preset, collected again after each good
resolve) when a filesystem event wakes it (watch/changes.py; every `poll`
seconds as well, and only then where events are unavailable). It compiles
as soon as the editor's write is complete: the file was renamed into place
(a new inode), or its size and mtime stay the same over two quick reads
(`settle` apart). `debounce` is only the last resort, for a file that never
reads the same twice. A version ends at `execution_success`, its images
named by the `executed` messages, not after the server's housekeeping. An unchanged graph does nothing; a changed one is handed to
the `Runner`, a thread that runs one version at a time with run/steps.py's
public steps, so every version is an ordinary run folder. The Runner owns the
session's catalogue provider: a file added on the server is seen at the next
save that needs it. If a version is still
in flight, only its prompt is interrupted (POST /interrupt with its id).

A look costs a stat per file; the clock and the intervals are parameters,
so tests run the loop in milliseconds.
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Dict, List, Optional, Sequence, Tuple

from compiler.comfy.client import ComfyClient
from compiler.errors import Location, RecipeError, RunError
from compiler.ir.graph import Graph
from compiler.resolve.access import Roots
from compiler.resolve.loader import load_file
from compiler.resolve.presets import find_preset
from compiler.run.progress import Reporter
from compiler.ir.recipe import Recipe
from compiler.run.catalogues import CatalogueProvider
from compiler.run.folder import RunRecord, prepare
from compiler.run.steps import run_prepared
from compiler.watch.changes import FileEvents
from compiler.watch.page import Version, WatchState, facts_line

if TYPE_CHECKING:
    from compiler.pipeline import Compiled

__all__ = ["recipe_files", "snapshot", "Debouncer", "prune", "Runner", "Session", "POLL_S", "DEBOUNCE_S"]

POLL_S = 0.1        # how often the files are looked at without an event
DEBOUNCE_S = 0.3    # the last resort: still this long counts as written, whatever the reads said
SETTLE_S = 0.01     # the two quick reads of a file written in place

Snapshot = Dict[str, Optional[Tuple[int, int, int]]]


def recipe_files(path: str, presets: Sequence[str] = ()) -> List[str]:
    """The recipe and every preset file it loads, as absolute paths. It is
    tolerant: a file that does not parse (yet) still counts, so saving the
    fix is noticed."""
    found: List[str] = []
    roots = Roots.of(path)   # only what the compile may read is watched (and so read) here

    def visit(file: Path) -> None:
        if not roots.admits(str(file)):
            return
        key = os.path.abspath(file)
        if key in found:
            return
        found.append(key)
        try:
            data, _ = load_file(file)
        except RecipeError:
            return
        raw = data.get("extends") if isinstance(data, dict) else None
        for name in [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []:
            _visit_preset(visit, name, file.parent)

    visit(Path(path))
    for name in presets:
        _visit_preset(visit, name, Path(path).parent)
    return found


def _visit_preset(visit: Callable[[Path], None], name: object, base: Path) -> None:
    if not isinstance(name, str) or not name:
        return
    try:
        visit(find_preset(name, base, Location(str(base))))
    except RecipeError:
        pass   # resolve reports a missing preset, with its line


def snapshot(files: Sequence[str]) -> Snapshot:
    """(mtime_ns, size, inode) per file; None for one that is missing right now."""
    snap: Snapshot = {}
    for f in files:
        try:
            st = os.stat(f)
            snap[f] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            snap[f] = None
    return snap


class Debouncer:
    """Says "rebuild" once the files have changed and the write is `complete`
    (the caller's judgement), or, failing that, once they have stopped
    changing for `quiet` seconds."""

    def __init__(self, quiet: float = DEBOUNCE_S):
        self.quiet = quiet
        self.seen: Optional[Snapshot] = None
        self.changed_at: Optional[float] = None

    def feed(self, snap: Snapshot, now: float, complete: bool = False) -> bool:
        if snap != self.seen:
            self.seen, self.changed_at = snap, now
            if not complete:
                return False
        if self.changed_at is not None and (complete or now - self.changed_at >= self.quiet):
            self.changed_at = None
            return True
        return False

    def rebase(self, snap: Snapshot) -> None:
        """The file set changed after a build: watch these, without counting it as a save."""
        if self.changed_at is None:
            self.seen = snap


def written(before: Optional[Snapshot], now: Snapshot, settle: float = SETTLE_S) -> bool:
    """Is the write that changed the files from `before` to `now` complete?
    Each changed file must be there, and renamed into place (a new inode) or
    read the same again `settle` seconds later. Unchanged files: yes."""
    changed = [f for f, s in now.items() if (before or {}).get(f) != s]
    if any(now[f] is None for f in changed):
        return False   # deleted, or between an editor's delete and write
    renamed = {f for f in changed if (before or {}).get(f) and before[f][2] != now[f][2]}
    rest = [f for f in changed if f not in renamed]
    if not rest:
        return True
    time.sleep(settle)
    return snapshot(rest) == {f: now[f] for f in rest}


def prune(folders: List[Path], keep: int, protect: Collection[Path] = ()) -> List[Path]:
    """Delete all but the newest `keep` of `folders` (this session's run
    folders, oldest first), except those in `protect`. Nothing else is touched."""
    doomed = [f for f in folders[:max(0, len(folders) - keep)] if f not in protect]
    for f in doomed:
        shutil.rmtree(f, ignore_errors=True)
        folders.remove(f)
    return doomed


@dataclass
class Build:
    """A compiled graph on its way to becoming a version."""
    recipe: Recipe
    graph: Graph
    text: str                       # graph.to_json(): what "unchanged" compares
    resolved: str = ""              # the resolved recipe's YAML, if the compile made it (its cache did)
    record: Optional[RunRecord] = None
    superseded: bool = False        # a newer build came while this one was in flight
    interrupted: bool = field(default=False, repr=False)


class _LiveReporter(Reporter):
    """The run steps' reporter calls, turned into page progress. It also re-sends
    the interrupt of a superseded prompt once it is seen running: an
    interrupt sent while the prompt still waited in the server's queue
    did nothing (ComfyUI only stops the prompt it runs)."""

    def __init__(self, graph: Graph, state: WatchState, n: int, poke: Callable[[], None]):
        super().__init__(graph, sys.stderr)
        self.state, self.n, self._poke = state, n, poke

    def say(self, text: str) -> None:
        pass   # the version line, printed when the run ends, says it once

    def node(self, node_id: str) -> None:
        self._poke()
        self.state.update_progress(self.n, node=node_id, label=self.label(node_id), step=None, max=None)

    def cached(self, nodes: list) -> None:
        self._poke()
        self.state.update_progress(self.n, cached=len(nodes))

    def progress(self, node_id: str, value: int, maximum: int) -> None:
        self._poke()
        self.state.update_progress(self.n, node=node_id, label=self.label(node_id), step=value, max=maximum)


class Runner(threading.Thread):
    """Runs the newest build, one at a time; a build that is replaced before
    it starts never runs."""

    def __init__(self, client: ComfyClient, interrupt_client: ComfyClient, out: Path, state: WatchState, *,
                 keep: Optional[int] = None, cache_dir: Optional[Path] = None,
                 show: Callable[[str], None] = print, warn: Callable[[str], None] = print):
        super().__init__(daemon=True, name="recipe-watch-runner")
        self.client, self.interrupt_client, self.out, self.state = client, interrupt_client, Path(out), state
        self.keep, self.show, self.warn = keep, show, warn
        self.catalogues = CatalogueProvider(client, cache_dir)   # this session's: refetched on a miss
        self.folders: List[Path] = []          # this session's run folders, oldest first
        self._cond = threading.Condition()
        self._pending: Optional[Build] = None
        self._current: Optional[Build] = None
        self._last_text: Optional[str] = None  # the graph last handed over
        self._stopping = False
        self.unchanged = 0                     # builds turned down: their graph was the last one

    def submit(self, build: Build) -> bool:
        """Queue `build` unless its graph is the one last handed over; interrupt ours in flight."""
        with self._cond:
            if build.text == self._last_text:
                self.unchanged += 1
                return False
            self._last_text, self._pending = build.text, build
            victim = self._supersede()
            self._cond.notify()
        self._interrupt(victim, self.interrupt_client)
        return True

    def stop(self) -> None:
        """No new runs; interrupt our prompt in flight (only ours), as Ctrl-C does in `recipe run`."""
        with self._cond:
            self._stopping, self._pending = True, None
            victim = self._supersede()
            self._cond.notify()
        self._interrupt(victim, self.interrupt_client)

    def _supersede(self) -> Optional[Build]:
        if self._current is not None:
            self._current.superseded = True
        return self._current

    def _interrupt(self, build: Optional[Build], client: ComfyClient) -> None:
        """Drop `build`'s prompt from the server's queue, or interrupt it if it
        runs, by its prompt id (never anyone else's), once it is prepared."""
        if build is None or build.record is None:
            return   # not prepared yet: _LiveReporter interrupts it when it shows up
        try:
            pid = build.record.data["prompt_id"]
            client.delete_queued([pid])   # still waiting behind someone else's prompt: drop it
            client.interrupt(pid)         # already running: stop it (a no-op otherwise)
        except RunError as exc:
            self.warn(f"error: could not interrupt the previous version: {exc}")

    def run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait(0.5)
                if self._stopping:
                    return
                build, self._pending = self._pending, None
                self._current = build
            try:
                self._run_one(build)
            finally:
                with self._cond:
                    self._current = None

    def _run_one(self, build: Build) -> None:
        try:
            build.record = prepare(build.recipe, build.graph, self.out, self.client, resolved=build.resolved)
        except (RecipeError, OSError) as exc:
            self._forget(build)
            self.warn(f"error: cannot make a run folder: {exc}")
            return
        self.folders.append(build.record.folder)
        version = self.state.started(build.record.folder, build.recipe.document)
        reporter = _LiveReporter(build.graph, self.state, version.n, lambda: self._poke(build))
        error: List[str] = []
        try:
            run_prepared(build.record, build.recipe, build.graph, self.client,
                         reporter=reporter, catalogues=self.catalogues, at_success=True)
        except RecipeError as exc:   # the server's or the run's: shown, and the loop goes on
            error = exc.lines()
        except Exception as exc:     # a bug: say so, but keep the session (and the last image) alive
            error = [f"internal error: {type(exc).__name__}: {exc} (please report it)"]
        self._report(build, version, error)
        self._prune()

    def _poke(self, build: Build) -> None:
        if build.superseded and not build.interrupted:
            build.interrupted = True
            self._interrupt(build, self.client)   # the run thread's own client

    def _report(self, build: Build, version: Version, error: List[str]) -> None:
        if build.superseded and build.record.data.get("status") == "interrupted":
            error = ["stopped" if self._stopping else "superseded by a newer save"]
        self.state.finished(version, build.record.data, error)
        if error and not build.superseded:
            self._forget(build)   # saving the same recipe again retries it
            for line in error:
                self.warn(f"error: {line}")
        self.show(facts_line(version))

    def _forget(self, build: Build) -> None:
        with self._cond:
            if self._last_text == build.text:
                self._last_text = None

    def _prune(self) -> None:
        if self.keep is None:
            return
        good = self.state.last_good()
        done = prune(self.folders, self.keep, protect={good.folder} if good else ())
        if done:
            self.state.pruned(done)


class Session:
    """The watch loop: `step()` is one look at the files; `run()` loops until stopped.
    `compile_fn` compiles the recipe as it is now: a pipeline.Compiled."""

    def __init__(self, file: str, compile_fn: Callable[[], "Compiled"], runner: Runner, *,
                 presets: Sequence[str] = (), poll: float = POLL_S, debounce: float = DEBOUNCE_S,
                 settle: float = SETTLE_S, events: bool = True,
                 clock: Callable[[], float] = time.monotonic, warn: Callable[[str], None] = print):
        self.file, self.presets, self.compile_fn, self.runner = file, tuple(presets), compile_fn, runner
        self.state = runner.state
        self.poll, self.settle, self.clock, self.warn = poll, settle, clock, warn
        self.debouncer = Debouncer(debounce)
        self.files = recipe_files(file, self.presets)
        self.events = FileEvents(use_events=events)

    def step(self) -> None:
        snap = snapshot(self.files)
        complete = snap != self.debouncer.seen and written(self.debouncer.seen, snap, self.settle) \
            or (snap == self.debouncer.seen and self.debouncer.changed_at is not None)
        if self.debouncer.feed(snap, self.clock(), complete):
            self.rebuild(snap)

    def rebuild(self, snap: Snapshot) -> None:
        """Compile the saved recipe; hand a changed graph to the runner."""
        try:
            done = self.compile_fn()
        except RecipeError as exc:   # YAML, schema, template...: say where, keep the last image up
            lines = exc.lines()
            self.state.built(lines)
            for line in lines:
                self.warn(f"error: {line}")
            return
        self.state.built()
        files = recipe_files(self.file, self.presets)
        if files != self.files:   # extends changed: known files keep the state this build read
            self.files = files
            self.events.watch(files)
            self.debouncer.rebase({**snapshot(files), **{f: s for f, s in snap.items() if f in files}})
        self.runner.submit(Build(done.recipe, done.graph, done.graph.to_json(), done.resolved))

    def run(self, stop: threading.Event) -> None:
        if not self.runner.is_alive():
            self.runner.start()
        self.events.watch(self.files)
        try:
            while not stop.is_set():
                self.step()
                self.events.wait(self.poll, stop)   # an event wakes it at once
        finally:
            self.close()

    def close(self, wait: float = 5.0) -> None:
        self.events.close()
        self.runner.stop()
        if self.runner.is_alive():
            self.runner.join(wait)
