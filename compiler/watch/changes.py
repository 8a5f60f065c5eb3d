"""What wakes the watch loop: filesystem events where `watchfiles` is
installed, else a plain poll.

`FileEvents.wait(timeout)` returns as soon as one of the watched files may
have changed (or after `timeout`, the loop's poll interval, so polling goes on
underneath); the loop then looks at the files itself (loop.snapshot), so an
event is only a wake-up call, never trusted for what changed. Events come from a thread that watches the files' folders (not
recursively; editors save through a temporary file beside the target, and
the rename is what counts) and keeps only events for the watched paths.
Where there is no watchfiles, or it cannot watch (e.g. no inotify
instances left), `wait` just sleeps the poll interval, as before.
"""
from __future__ import annotations

import os
import threading
import time
from typing import FrozenSet, Optional, Sequence

__all__ = ["FileEvents"]


class FileEvents:
    def __init__(self, use_events: bool = True):
        self._wake, self._stop = threading.Event(), threading.Event()
        self._files: FrozenSet[str] = frozenset()
        self._thread: Optional[threading.Thread] = None
        self._watchfiles = _watchfiles() if use_events else None
        self.failed: Optional[str] = None   # why events stopped, if they did: polling then

    @property
    def kind(self) -> str:
        return "events" if self._watchfiles is not None and self.failed is None else "polling"

    def watch(self, files: Sequence[str]) -> None:
        """Watch these files from now on (their folders; restarted when the set changes)."""
        wanted = frozenset(os.path.abspath(f) for f in files)
        if wanted == self._files and (self._thread is not None or self.kind == "polling"):
            return
        self.close()
        self._files, self._stop = wanted, threading.Event()
        if self.kind == "events":
            self._thread = threading.Thread(target=self._run, args=(wanted, self._stop), daemon=True,
                                            name="recipe-watch-events")
            self._thread.start()

    def wait(self, timeout: float, stop: Optional[threading.Event] = None) -> bool:
        """Block until an event, `stop`, or `timeout` (when polling nothing
        wakes it early but `stop`). True on an event."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            if self._wake.wait(min(left, 0.1)):   # slices of 0.1 s: `stop` is seen soon
                self._wake.clear()
                return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    def _run(self, files: FrozenSet[str], stop: threading.Event) -> None:
        folders = sorted({os.path.dirname(f) for f in files if os.path.isdir(os.path.dirname(f))})
        try:
            # step: end a batch 5 ms after its last event (watchfiles' default waits 50 ms,
            # and up to 1.6 s); the loop checks the write is complete itself.
            for _ in self._watchfiles.watch(*folders, stop_event=stop, debounce=200, step=5, recursive=False,
                                            rust_timeout=500, yield_on_timeout=False,
                                            watch_filter=lambda _change, path: os.path.abspath(path) in files):
                self._wake.set()
        except Exception as exc:   # the OS refused (inotify limits, a folder gone): fall back to polling
            if not stop.is_set():
                self.failed = f"{type(exc).__name__}: {exc}"
                self._wake.set()


def _watchfiles():
    try:
        import watchfiles
    except ImportError:
        return None
    return watchfiles
