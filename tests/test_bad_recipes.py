"""Bad recipes, one file each: what an artist gets told when a recipe is wrong.

A case is `tests/bad/<case>.err`, the exact stderr of

    recipe compile tests/bad/<case>.yaml [args]

run from the repository root, with beside it

    <case>.yaml    the recipe (absent for the "file does not exist" case)
    <case>.args    optional extra CLI arguments, one per line (`--set`, `sampler.steps=0`)
    <case>.xfail   optional: the message the compiler gives today is wrong or unhelpful;
                   this file says why, and <case>.err holds the message it *should* give.
                   The test is xfail(strict=True), so it turns red once the compiler is
                   fixed, as a reminder to delete the .xfail file.

Every case must exit with status 2 and print nothing on stdout. Adding a case is
adding files; nothing in this module changes. Presets used by the cases live in
tests/bad/presets/ (found by `extends: name` next to the recipe).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "bad"


def _cases():
    for err in sorted(BAD.glob("*.err")):
        case = err.stem
        xfail = err.with_suffix(".xfail")
        marks = []
        if xfail.exists():
            marks.append(pytest.mark.xfail(reason=xfail.read_text("utf-8").strip(), strict=True))
        yield pytest.param(case, id=case, marks=marks)


def _argv(case: str) -> list:
    args = BAD / f"{case}.args"
    extra = [line for line in args.read_text("utf-8").splitlines() if line] if args.exists() else []
    return ["compile", f"tests/bad/{case}.yaml", *extra]


def test_cases_are_complete():
    """Every recipe in tests/bad/ has its expected message, and every .args/.xfail a case."""
    stems = {p.stem for p in BAD.glob("*.err")}
    orphans = sorted(p.name for p in BAD.iterdir()
                     if p.is_file() and p.suffix in (".yaml", ".args", ".xfail") and p.stem not in stems)
    assert not orphans, f"files in tests/bad/ without a .err: {orphans}"
    assert len(stems) >= 30


@pytest.mark.parametrize("case", list(_cases()))
def test_bad_recipe(case, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RECIPE_DEBUG", raising=False)
    expected = (BAD / f"{case}.err").read_text("utf-8")
    code = main(_argv(case))
    out, err = capsys.readouterr()
    assert out == "", "a refused recipe must not print a graph"
    assert err == expected
    assert code == 2
