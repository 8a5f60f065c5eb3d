"""Resource bounds: the client's own work on any recipe under the size limit.

compile, check, resolve, validate, and run up to the submit (against the
test server) of a recipe built to be expensive end within 20 s of CPU and
about 1 GiB, checked in a subprocess under RLIMIT_CPU and RLIMIT_AS, not by
timing. The limits are the kernel's: a run that passes them is killed
(SIGXCPU) or gets MemoryError, which the CLI reports as an internal error.
glibc's per-thread arenas inflate virtual memory, so MALLOC_ARENA_MAX=2 and
the address-space cap has room over the 1 GiB the client may use.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT.parent / "shared/comfyui/object_info.json"
CPU_S = 20
ADDRESS_SPACE = (1 << 30) + (512 << 20)   # 1 GiB for the work, room for the interpreter's mappings
SCENARIO = "11-success-sd15-checkpoint-two-characters-cfg6"

HEAD = "model: {family: sd15, checkpoint: tiny-sd15.safetensors}\ncanvas: {width: 256, height: 256}\n"
LOOP = "{% for i in range(99990) %}{% endfor %}x"   # just under one render's budget


def _templates_at_budget() -> str:
    chars = "".join(f"  c{i}: {{prompt: '{LOOP}', region: {{box: [0, 0, 1, 1]}}}}\n" for i in range(8))
    return HEAD + f"scene: '{LOOP}'\nnegative: '{LOOP}'\ncharacters:\n{chars}"


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return HEAD + "vars:\n" + textwrap.indent("\n".join(lines), "  ") + "\ncharacters: {a: {prompt: a}}\n"


def _megabyte_of_vars() -> str:
    body = "".join(f"  v{i}: '{'x' * 16}'\n" for i in range(30000))
    return HEAD + "characters: {a: {prompt: '{{ vars.v1 }}'}}\nvars:\n" + body


def _deep_and_wide() -> str:
    value = "1"
    for _ in range(60):
        value = f"{{a: {value}, b: [1, 2, 3]}}"
    return HEAD + f"vars: {{deep: {value}}}\ncharacters: {{a: {{prompt: a}}}}\n" + "# " + "z" * 900_000 + "\n"


def _big_canvas() -> str:
    return ("model: {family: sd15, checkpoint: tiny-sd15.safetensors}\ncanvas: {width: 16384, height: 16384, feather: 8}\n"
            "characters:\n" + "".join(f"  c{i}: {{prompt: p{i}}}\n" for i in range(8)))


RECIPES = {"templates-at-budget": _templates_at_budget, "alias-bomb": _alias_bomb,
           "megabyte-of-vars": _megabyte_of_vars, "deep-and-wide": _deep_and_wide, "big-canvas": _big_canvas}

# Every command, one after the other in one process: the limits hold for all of them together.
DRIVER = """\
import sys
from compiler.cli.main import main
path, server, catalogue, out = sys.argv[1:5]
codes = [main(["compile", path, "-o", out + "/g.json"]), main(["check", path]), main(["resolve", path])]
if catalogue:
    codes.append(main(["validate", path, "--object-info", catalogue]))
codes.append(main(["run", path, "--server", server, "--out", out, "--plain", "--timeout", "5"]))
print("codes", *codes, file=sys.stderr)
"""


def _limits():
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_S, CPU_S + 1))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_client_work_is_bounded(name, comfy_server, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text(RECIPES[name](), encoding="utf-8")
    assert path.stat().st_size <= 1_000_000
    srv = comfy_server(SCENARIO)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONPATH": str(ROOT)}
    env.pop("RECIPE_DEBUG", None)
    done = subprocess.run([sys.executable, "-c", DRIVER, str(path), srv.url,
                           str(CATALOGUE) if CATALOGUE.exists() else "", str(tmp_path)],
                          env=env, preexec_fn=_limits, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"killed or failed ({done.returncode}): {done.stderr[-2000:]}"
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    codes = done.stderr.strip().splitlines()[-1].split()[1:]
    assert codes and all(c in ("0", "1", "2") for c in codes), done.stderr[-2000:]
    # the work was done, not refused early (but the alias bomb is refused by design)
    assert codes[0] == ("2" if name == "alias-bomb" else "0"), done.stderr[-2000:]
