"""Showing a run as it happens: a progress bar per sampler on a terminal,
one plain line per node otherwise (logs, CI, pipes).

Both reporters get the same calls from run.py, so what is shown never
depends on where the output goes, only how.
"""
from __future__ import annotations

import shutil
import sys
from typing import Optional, TextIO

from compiler.ir.graph import Graph
from compiler.ir.nodes import purpose

__all__ = ["Reporter", "make_reporter", "purpose"]


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
    """Terminal mode: a tqdm bar per sampler, node lines above it."""

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


def make_reporter(graph: Graph, stream: Optional[TextIO] = None, plain: Optional[bool] = None) -> Reporter:
    stream = stream or sys.stderr   # looked up per call: tests and callers swap sys.stderr
    tty = stream.isatty() if hasattr(stream, "isatty") else False
    return Reporter(graph, stream) if (plain if plain is not None else not tty) else BarReporter(graph, stream)
