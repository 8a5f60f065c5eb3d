"""What `recipe run` shows while it runs: on a terminal, one status line
redrawn in place; a line per node off a terminal, with --plain, and (with
tqdm's bars) with --verbose."""
from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.lower import lower
from compiler.resolve.passes import resolve_file
from compiler.run.progress import BarReporter, Reporter, StageReporter, make_reporter

ROOT = Path(__file__).resolve().parents[1]
GRAPH = lower(resolve_file(str(ROOT / "recipes" / "sd15-duo.yaml")))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_reporter_follows_where_the_output_goes():
    assert type(make_reporter(GRAPH, io.StringIO())) is Reporter
    assert type(make_reporter(GRAPH, Terminal())) is StageReporter
    assert type(make_reporter(GRAPH, Terminal(), verbose=True)) is BarReporter
    assert type(make_reporter(GRAPH, Terminal(), plain=True)) is Reporter


def test_the_status_line_is_replaced_in_place_and_other_lines_print_above_it():
    out = Terminal()
    r = StageReporter(GRAPH, out)
    r.say("run folder x")
    r.cached(["model.checkpoint"])
    for node in ("char.a.text", "char.b.text", "sampler"):
        r.node(node)
    for step in (1, 2, 3, 4):
        r.progress("sampler", step, 4)
    r.say("a line between")
    r.node("decode")
    r.done()
    text = out.getvalue()
    assert text.count("\n") == 2                              # only the two said lines end a line
    assert "\r\x1b[2Kencode   char.a.text (characters.a.prompt)  [2/19 nodes]" in text
    assert "\r\x1b[2Ksample   " + "█" * 24 + " step 4/4  sampler" in text
    assert "\r\x1b[2Ka line between\n\r\x1b[2Ksample" in text    # cleared, said, status redrawn
    assert text.endswith("\r\x1b[2K")                           # nothing left behind


def run_on_a_terminal(args: list, timeout: float = 60.0) -> str:
    """`recipe run ...` with stderr on a pseudo-terminal: what a user sees."""
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "run", *args], stdout=subprocess.DEVNULL,
                            stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 4096)
        except OSError:   # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout) == 0, b"".join(chunks)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_recipe_run_on_a_terminal_shows_one_status_line(comfy_server, tmp_path):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.01)
    common = [str(ROOT / "recipes" / "sd15-duo.yaml"), "--server", srv.url, "--out", str(tmp_path)]
    seen = run_on_a_terminal(common)
    lines = seen.replace("\r\n", "\n").split("\n")
    # No node or stage ever gets a line of its own: each is drawn over the last.
    assert not [l for l in lines if re.match(r"\s*(load|encode|prepare|sample|decode|save|cached)\s{2,}\S", l)
                and "\r" not in l and not l.startswith("  ")], lines
    assert "\x1b[2Ksample   " in seen and "step 4/4" in seen
    assert "saved " in seen and "where the time went" in seen
    fresh = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.01)
    plain = run_on_a_terminal([common[0], "--server", fresh.url, "--out", str(tmp_path), "--plain"])
    assert "\x1b[2K" not in plain and "\n  encode   char.b.lora (characters.b.lora)\r\n" in plain, plain
