"""`variants:` and `sweep:`: checked with their own piece of the schema, taken
out of every resolved recipe, expanded into labelled jobs, and ordered so
consecutive prompts share the most of ComfyUI's cache."""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from compiler.cli.main import main
from compiler.resolve.written import resolved_yaml
from compiler.errors import RecipeError
from compiler.lower import lower
from compiler.ab.order import Footprint, footprint, greedy_order, nearest, order_cost
from compiler.resolve.passes import resolve_file
from compiler.resolve.schema import load_schema
from compiler.ab.variants import plan_jobs, resolve_job, set_item, short_name

ROOT = Path(__file__).resolve().parents[1]
SD15 = ROOT / "recipes" / "sd15-duo.yaml"

AB = f"""\
extends: sd15-duo.yaml
name: duo
vars: {{light: soft daylight}}
characters:
  a: {{prompt: "{{{{ trigger }}}}, 25yo woman, {{{{ vars.light }}}}"}}
variants:
  softer: {{vars: {{light: soft clamshell lighting}}}}
  draft: {{sampler: {{steps: 2}}, negative: null}}
sweep:
  sampler.seed: [1, 2, 3]
  vars.light: [rembrandt, window light from camera left]
"""


def write(tmp_path: Path, text: str, name: str = "duo.yaml") -> str:
    path = tmp_path / name
    shutil.copy(SD15, tmp_path / "sd15-duo.yaml")   # a recipe extends only files beside it
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_sweep_expands_to_six_labelled_jobs_over_two_axes(tmp_path):
    plan = plan_jobs(write(tmp_path, AB), sweep=True)
    assert [(a.key, a.label, a.values) for a in plan.axes] == [
        ("sampler.seed", "seed", ("1", "2", "3")),
        ("vars.light", "light", ("rembrandt", "window light from camera left"))]
    assert [j.label for j in plan.jobs] == [
        "seed=1 / light=rembrandt", "seed=1 / light=window light from camera left",
        "seed=2 / light=rembrandt", "seed=2 / light=window light from camera left",
        "seed=3 / light=rembrandt", "seed=3 / light=window light from camera left"]
    assert plan.jobs[3].overrides == ("sampler.seed=2", "vars.light=window light from camera left")


def test_each_job_resolves_without_variants_or_sweep_and_round_trips(tmp_path):
    path = write(tmp_path, AB)
    for job in plan_jobs(path, ["base", "softer"], sweep=True).jobs:
        recipe = resolve_job(path, job)
        assert "variants" not in recipe.document and "sweep" not in recipe.document
        text = resolved_yaml(recipe)
        assert "variants" not in yaml.safe_load(text) and "sweep" not in yaml.safe_load(text)
        again = tmp_path / "again.yaml"
        again.write_text(text)
        assert lower(resolve_file(str(again))).to_json() == lower(recipe).to_json()


def test_a_job_compiles_like_the_same_set_options(tmp_path):
    path = write(tmp_path, AB)
    job = plan_jobs(path, sweep=True).jobs[4]
    by_hand = resolve_file(path, ["sampler.seed=3", "vars.light=rembrandt"])
    assert lower(resolve_job(path, job)).to_json() == lower(by_hand).to_json()
    assert resolve_job(path, job).document["characters"]["a"]["prompt"] == "roxygirl04, 25yo woman, rembrandt"


def test_variants_merge_like_presets_and_null_removes(tmp_path):
    path = write(tmp_path, AB)
    plan = plan_jobs(path, ["base", "draft", "softer"])
    assert [j.label for j in plan.jobs] == ["base", "draft", "softer"]
    base, draft, softer = (resolve_job(path, j).document for j in plan.jobs)
    assert draft["sampler"]["steps"] == 2 and draft["sampler"]["cfg"] == base["sampler"]["cfg"]
    assert draft["negative"] == "blurry, lowres, bad anatomy" != base["negative"]   # null: the family default
    assert softer["vars"]["light"] == "soft clamshell lighting"


def test_variants_times_sweep(tmp_path):
    plan = plan_jobs(write(tmp_path, AB), ["softer", "draft"], sweep=True)
    assert len(plan.jobs) == 12 and [a.label for a in plan.axes] == ["variant", "seed", "light"]
    assert plan.jobs[0].label == "softer / seed=1 / light=rembrandt"
    # the sweep's light wins over the variant's: it is applied after it
    assert resolve_job(str(tmp_path / "duo.yaml"), plan.jobs[0]).document["vars"]["light"] == "rembrandt"


def test_a_plain_run_ignores_them_and_compiles_as_without(tmp_path, capsys):
    with_ab = write(tmp_path, AB)
    without = write(tmp_path, AB.split("variants:")[0], "plain.yaml")
    assert main(["compile", with_ab, "-o", str(tmp_path / "a.json")]) == 0
    assert main(["compile", without, "-o", str(tmp_path / "b.json")]) == 0
    a, b = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    assert a == b


@pytest.mark.parametrize("piece,message", [
    ("sweep: {sampler.seed: 3}", "duo.yaml:3:9 sweep.sampler.seed: must be a list, not an integer"),
    ("sweep: {sampler..seed: [1]}", "duo.yaml:3:9 sweep.sampler..seed: name `sampler..seed` is not allowed"),
    ("sweep: {sampler.seed: []}", "duo.yaml:3:9 sweep.sampler.seed: must have at least 1 items, not 0"),
    ("variants: {softer: 5}", "duo.yaml:3:12 variants.softer: must be a mapping, not an integer"),
    ("variants: [a, b]", "duo.yaml:3:1 variants: must be a mapping, not a list"),
])
def test_bad_pieces_are_located(tmp_path, piece, message):
    path = write(tmp_path, f"extends: sd15-duo.yaml\nname: duo\n{piece}\n")
    with pytest.raises(RecipeError) as err:
        resolve_file(path)
    assert message in str(err.value).replace(str(tmp_path) + "/", "")


def test_a_bad_value_names_the_job_and_points_into_the_sweep(tmp_path):
    path = write(tmp_path, f"extends: sd15-duo.yaml\nname: duo\nsweep:\n  sampler.steps: [4, 0]\n")
    plan = plan_jobs(path, sweep=True)
    resolve_job(path, plan.jobs[0])
    with pytest.raises(RecipeError) as err:
        resolve_job(path, plan.jobs[1])
    assert str(err.value) == f"{path}:4:22 sampler.steps: in job `steps=0`: must be ≥ 1, not 0"


def test_an_unknown_key_in_a_variant_points_at_the_variant(tmp_path):
    path = write(tmp_path, f"extends: sd15-duo.yaml\nname: duo\nvariants:\n  x: {{sampler: {{stpes: 3}}}}\n")
    with pytest.raises(RecipeError) as err:
        resolve_job(path, plan_jobs(path, ["x"]).jobs[0])
    assert str(err.value) == f"{path}:4:17 sampler.stpes: in job `x`: unknown key `stpes` (did you mean `steps`?)"


def test_cli_refuses_unknown_variant_and_missing_sweep_before_any_server(tmp_path, capsys, closed_port):
    path = write(tmp_path, AB)
    server = f"127.0.0.1:{closed_port}"
    assert main(["run", path, "--variant", "softr", "--server", server, "--out", str(tmp_path)]) == 2
    assert "no variant `softr` in the recipe (it has: base, softer, draft) (did you mean `softer`?)" \
        in capsys.readouterr().err
    plain = write(tmp_path, f"extends: sd15-duo.yaml\n", "plain.yaml")
    assert main(["run", plain, "--sweep", "--server", server, "--out", str(tmp_path)]) == 2
    assert "the recipe has no `sweep:`" in capsys.readouterr().err
    assert not (tmp_path / "duo").exists()


def test_schema_describes_every_new_field():
    props = load_schema()["properties"]
    for key in ("variants", "sweep"):
        assert props[key]["description"] and props[key]["additionalProperties"]["description"]


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
                 st.lists(st.one_of(st.text(), st.integers()), max_size=3)))
def test_set_items_read_back_as_the_value(value):
    key, text = set_item(("vars", "x"), value).split("=", 1)
    assert key == "vars.x" and yaml.safe_load(text) == value


def test_short_names():
    assert [short_name(k) for k in ("vars.light", "sampler.seed", "characters.roxy.strength.model",
                                    "guidance", "canvas.width")] == \
        ["light", "seed", "roxy.strength.model", "guidance", "canvas.width"]


# -- cache-aware order -------------------------------------------------------------------

def fp(all_: str, heavy: str = "") -> Footprint:
    return Footprint(tuple(all_), frozenset(all_), frozenset(heavy))


def test_loaders_and_loras_count_first():
    previous = fp("LMabc", heavy="LM")
    keeps_models, keeps_more_small = fp("LMxyz", heavy="LM"), fp("Nabcxy", heavy="N")
    assert nearest(previous, [1, 0], [keeps_models, keeps_more_small]) == 0


def test_greedy_order_beats_the_written_order_on_a_real_sweep(tmp_path):
    path = write(tmp_path, AB.replace("sweep:\n", "sweep:\n  characters.a.strength.model: [0.6, 0.8]\n"))
    plan = plan_jobs(path, sweep=True)
    prints = [footprint(lower(resolve_job(path, j))) for j in plan.jobs]
    order = greedy_order(prints)
    assert sorted(order) == list(range(12)) and order[0] == 0
    naive = order_cost(prints, range(12))
    assert order_cost(prints, order) < naive
    # the strength (a LoRA) changes once, not every other job
    strengths = [plan.jobs[i].coords[0][1] for i in order]
    assert sum(a != b for a, b in zip(strengths, strengths[1:])) == 1


def test_a_six_job_sweep_reads_each_file_once(tmp_path, monkeypatch):
    """The recipe, the recipe it extends and the --preset are each read from
    disk once; every job is resolved from copies of that one document."""
    import argparse
    import collections
    import os
    from compiler.cli.ab import compile_jobs
    path = write(tmp_path, AB)
    (tmp_path / "presets").mkdir()
    preset = write(tmp_path, "sampler: {cfg: 5.0}\n", "presets/calm.yaml")
    reads: collections.Counter = collections.Counter()
    import compiler.resolve.loader as loader
    read_regular = loader.read_regular

    def counting(path, limit):   # the loader's one read of a file (compiler/resolve/loader.py)
        reads[os.path.realpath(path)] += 1
        return read_regular(path, limit)

    monkeypatch.setattr(loader, "read_regular", counting)
    args = argparse.Namespace(file=path, variants=[], sweep=True, presets=["calm"], overrides=["sampler.steps=3"],
                              strict=False)
    plan, compiled = compile_jobs(args)
    assert len(compiled) == 6 and all(c.recipe.sampler.cfg == 5.0 for c in compiled)
    assert {c.recipe.sampler.seed for c in compiled} == {1, 2, 3}
    assert reads == {os.path.realpath(p): 1 for p in (path, tmp_path / "sd15-duo.yaml", preset)}
