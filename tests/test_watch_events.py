"""The watch reacts at once (issue 12): filesystem events wake the loop, the
rebuild starts as soon as the editor's write is complete (a rename into
place, or the same size and mtime over two quick reads), and a version ends
at execution_success with the images the `executed` messages named."""
from __future__ import annotations

import os
import threading
import time

import pytest

from compiler.comfy.client import ComfyClient
from compiler.lower import lower
from compiler.pipeline import Compiled
from compiler.resolve.passes import resolve_file
from compiler.watch.changes import FileEvents
from compiler.watch.loop import Debouncer, Runner, Session, snapshot, written
from compiler.watch.page import WatchState

try:
    from .test_watch import RECIPE, SCENARIO, save, wait_until
except ImportError:
    from test_watch import RECIPE, SCENARIO, save, wait_until

try:
    import watchfiles  # noqa: F401
    EVENTS = True
except ImportError:
    EVENTS = False
needs_events = pytest.mark.skipif(not EVENTS, reason="watchfiles is not installed: the watch polls")


def test_a_file_renamed_into_place_is_written_at_once(tmp_path):
    target = tmp_path / "r.yaml"
    target.write_text("a: 1\n")
    before = snapshot([str(target)])
    (tmp_path / ".r.yaml.tmp").write_text("a: 2\n")
    os.replace(tmp_path / ".r.yaml.tmp", target)   # how most editors save
    started = time.monotonic()
    assert written(before, snapshot([str(target)]), settle=5.0)
    assert time.monotonic() - started < 1.0        # no second read was needed


def test_a_file_written_in_place_must_read_the_same_twice(tmp_path):
    target = tmp_path / "r.yaml"
    target.write_text("a: 1\n")
    before = snapshot([str(target)])
    save(target, "a: 22\n")
    assert written(before, snapshot([str(target)]), settle=0.01)

    now = snapshot([str(target)])
    grow = threading.Timer(0.05, lambda: save(target, "a: 22\nb: 3\n"))   # the editor's second write
    grow.start()
    assert not written(before, now, settle=0.3)
    grow.join()
    assert not written(before, {str(target): None})   # gone: not written yet


def test_a_complete_write_ends_the_debounce_without_a_wait():
    d = Debouncer(30.0)
    assert d.feed({"a": (1, 1, 1)}, 0.0, complete=True)
    assert not d.feed({"a": (1, 1, 1)}, 0.1)
    assert not d.feed({"a": (2, 2, 1)}, 0.2, complete=False)   # half written: wait
    assert d.feed({"a": (2, 2, 1)}, 0.3, complete=True)


@needs_events
def test_events_wake_the_wait_at_once(tmp_path):
    target = tmp_path / "r.yaml"
    target.write_text("a: 1\n")
    events = FileEvents()
    events.watch([str(target)])
    try:
        assert events.kind == "events"
        time.sleep(0.2)   # the watcher thread is up
        (tmp_path / "other.txt").write_text("not watched")
        assert not events.wait(0.3)
        threading.Timer(0.1, lambda: target.write_text("a: 2\n")).start()
        started = time.monotonic()
        assert events.wait(5.0)
        assert time.monotonic() - started < 1.0
    finally:
        events.close()


def test_without_events_the_wait_is_a_poll(tmp_path):
    events = FileEvents(use_events=False)
    events.watch([str(tmp_path / "r.yaml")])
    started = time.monotonic()
    assert not events.wait(0.05) and events.kind == "polling"
    assert 0.04 <= time.monotonic() - started < 1.0


def _session(tmp_path, url, poll, events=True):
    recipe = tmp_path / "duo.yaml"
    (tmp_path / "presets").mkdir(exist_ok=True)
    save(tmp_path / "presets" / "look.yaml", "sampler: {steps: 20}\n")
    save(recipe, RECIPE)
    state = WatchState(str(recipe))
    runner = Runner(ComfyClient(url), ComfyClient(url), tmp_path / "out", state, show=lambda _: None,
                    warn=lambda _: None)

    def compile_fn():
        r = resolve_file(str(recipe))
        return Compiled(r, lower(r), ())

    session = Session(str(recipe), compile_fn, runner, poll=poll, debounce=30.0, events=events, warn=lambda _: None)
    stop = threading.Event()
    thread = threading.Thread(target=session.run, args=(stop,), daemon=True)
    thread.start()
    return recipe, state, stop, thread


def _done(state, n):
    v = [v for v in state.versions if v.n == n and v.status != "running"]
    return v[0] if v else None


@needs_events
def test_a_save_is_built_at_once_not_at_the_next_poll(comfy_server, tmp_path):
    srv = comfy_server(SCENARIO)
    recipe, state, stop, thread = _session(tmp_path, srv.url, poll=30.0)   # a poll would take 30 s
    try:
        first = wait_until(lambda: _done(state, 1), what="the first version")
        assert first.status == "success", first.error
        tmp = recipe.with_name(".duo.yaml.swp")
        tmp.write_text(recipe.read_text().replace("three-quarter headshot", "profile view"))
        saved = time.monotonic()
        os.replace(tmp, recipe)
        second = wait_until(lambda: _done(state, 2), timeout=10, what="the second version")
        assert second.status == "success" and time.monotonic() - saved < 5
    finally:
        stop.set()
        thread.join(10)


def test_a_version_ends_at_execution_success_without_history(comfy_server, tmp_path):
    srv = comfy_server(SCENARIO)
    recipe, state, stop, thread = _session(tmp_path, srv.url, poll=0.01, events=False)
    try:
        first = wait_until(lambda: _done(state, 1), what="the first version")
        assert first.status == "success", first.error
        assert (first.folder / first.record["outputs"][0]["file"]).is_file()
        assert not [r for r in srv.requests if r.path.startswith("/history")]
    finally:
        stop.set()
        thread.join(10)
