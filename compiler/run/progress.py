"""Showing a run as it happens: on a terminal, one live status line per stage
(load, encode, prepare, sample with its bar, decode, save), replaced in
place; with --verbose on a terminal, a line per node and a progress bar per
sampler; one plain line per node otherwise (logs, CI, pipes, --plain).

Both reporters get the same calls from run.py, so what is shown never
depends on where the output goes, only how.
"""
from __future__ import annotations

import shutil
import sys
from typing import Optional, TextIO

from compiler.ir.graph import Graph
from compiler.ir.nodes import purpose

__all__ = ["Reporter", "StageReporter", "make_reporter", "purpose"]


class Reporter:
    """Plain mode: one line per node, per milestone."""

    def __init__(self, graph: Graph, stream: TextIO):
        self.graph, self.stream = graph, stream

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def label(self, node_id: str) -> str:
        node = self.graph.nodes.get(node_id)
        if node is None or node.origin in ("", node_id):
            return node_id
        return f"{node_id} ({node.origin})"

    def node(self, node_id: str) -> None:
        node = self.graph.nodes.get(node_id)
        self.say(f"  {purpose(node.class_type) if node else 'run':<8} {self.label(node_id)}")

    def cached(self, nodes: list) -> None:
        if nodes:
            self.say(f"  cached   {len(nodes)} nodes: {', '.join(nodes)}")

    def progress(self, node_id: str, value: int, maximum: int) -> None:
        if value == maximum or value == 1 or value % max(1, maximum // 4) == 0:
            self.say(f"  {'':<8} {node_id} — step {value}/{maximum}")

    def done(self) -> None:
        pass


class BarReporter(Reporter):
    """Verbose terminal mode: a tqdm bar per sampler, node lines above it."""

    def __init__(self, graph: Graph, stream: TextIO):
        super().__init__(graph, stream)
        self._bar = None
        self._bar_node: Optional[str] = None

    def say(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            super().say(text)

    def progress(self, node_id: str, value: int, maximum: int) -> None:
        from tqdm import tqdm
        if self._bar_node != node_id:
            self.done()
            # A terminal that reports 0 columns (some multiplexers, `script`)
            # would make tqdm draw nothing; fall back to a sane width.
            width = shutil.get_terminal_size((100, 20)).columns
            self._bar = tqdm(total=maximum, desc=f"{node_id} — step", file=self.stream,
                             unit="step", ncols=width, leave=True)
            self._bar_node = node_id
        self._bar.n = value
        self._bar.set_description(f"{node_id} — step {value}/{maximum}", refresh=False)
        self._bar.refresh()

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._bar_node = None, None


class StageReporter(Reporter):
    """Terminal mode: one status line, redrawn in place, that names the stage
    running now and its node; the sampler's steps as a bar. Other lines
    (run folder, timings, saved files) print above it as usual."""

    BAR = 24

    def __init__(self, graph: Graph, stream: TextIO):
        super().__init__(graph, stream)
        self._line = ""
        self._seen = 0

    def _draw(self, text: str) -> None:
        # One screen line at most: a wrapped line cannot be replaced with \r.
        width = shutil.get_terminal_size((100, 20)).columns or 100
        text = text if len(text) < width else text[:width - 2] + "…"
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self._line = text

    def say(self, text: str) -> None:
        if self._line:
            self.stream.write("\r\x1b[2K")
        print(text, file=self.stream, flush=True)
        if self._line:
            self._draw(self._line)

    def node(self, node_id: str) -> None:
        self._seen += 1
        node = self.graph.nodes.get(node_id)
        stage = purpose(node.class_type) if node else "run"
        self._draw(f"{stage:<8} {self.label(node_id)}  [{self._seen}/{len(self.graph.nodes)} nodes]")

    def cached(self, nodes: list) -> None:
        self._seen += len(nodes)
        if nodes:
            self._draw(f"{'cached':<8} {len(nodes)} nodes from the server's cache")

    def progress(self, node_id: str, value: int, maximum: int) -> None:
        filled = self.BAR * value // maximum if maximum > 0 else 0
        self._draw(f"{'sample':<8} {'█' * filled}{'·' * (self.BAR - filled)} step {value}/{maximum}  "
                   f"{self.label(node_id)}")

    def done(self) -> None:
        if self._line:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
        self._line = ""


def make_reporter(graph: Graph, stream: Optional[TextIO] = None, plain: Optional[bool] = None,
                  verbose: bool = False) -> Reporter:
    """Plain lines off a terminal (or with plain=True); on one, the status
    line, or with `verbose` a line per node and tqdm's bars."""
    stream = stream or sys.stderr   # looked up per call: tests and callers swap sys.stderr
    tty = stream.isatty() if hasattr(stream, "isatty") else False
    if plain if plain is not None else not tty:
        return Reporter(graph, stream)
    return BarReporter(graph, stream) if verbose else StageReporter(graph, stream)
