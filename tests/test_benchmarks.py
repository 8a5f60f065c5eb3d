"""The benchmarks that can run without a real ComfyUI run to the end against
the transcript server. They print ratios and goals; nothing here reads a
timing (speed is judged by the benchmarks, never by a timed test). What this
catches is a benchmark that no longer runs: watch_latency.py once waited
forever on a recipe the confinement rules refused."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv, last_words", [
    (["watch_latency.py", "--edits", "1"], "goal: at most 200 ms"),
    (["cli_overhead.py", "-n", "1", "--skip", "compile"], "goal: at most +150 ms"),
    (["client_overhead.py", "--runs", "2"], ""),
    (["sweep_order.py", "--repeat", "1"], ""),
])
def test_it_runs_to_the_end(argv, last_words):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / argv[0]), *argv[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert last_words in done.stdout.strip().splitlines()[-1], done.stdout[-2000:]
