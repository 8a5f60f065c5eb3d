"""The cost estimate: it ranks lowerings the way REFERENCE F measured them, and
`recipe check --cost` compares presets and counts encodes a previous run cached."""
from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from compiler import compile_file
from compiler.cli.main import main
from compiler.check.cost import UNITS, estimate, hook_groups

ROOT = Path(__file__).resolve().parents[1]

# REFERENCE.md F, s/step at 128x128 for the same two-character scene.
MEASURED = {"3 groups": 4.4, "2 groups": 2.4, "global": 1.13, "none": 1.06}


def duo(folder: Path, name: str, *, regions=("left", "right"), loras=True, extra="") -> str:
    lora = ("    lora: {}\n", "") if loras else ("", "")
    text = textwrap.dedent("""\
        model:
          family: flux
          unet: flux1-dev-fp8_e4m3fn.safetensors
          text_encoders: [t5xxl_fp8_e4m3fn_scaled.safetensors, clip_l.safetensors]
          vae: ae.safetensors
        canvas: {{width: 128, height: 128}}
        characters:
          roxy:
        {roxy_lora}    prompt: a woman in a red coat
            region: {r0}
          celeste:
        {celeste_lora}    prompt: a woman in a blue coat
            region: {r1}
        scene: two women in a cafe
        sampler: {{steps: 20}}
        """).format(r0=regions[0], r1=regions[1],
                    roxy_lora=lora[0].format("roxygirl04.safetensors") if loras else "",
                    celeste_lora=lora[0].format("celestesh-01.safetensors") if loras else "") + extra
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def variants(tmp_path):
    gap = ("{box: [0, 0, 0.25, 1]}", "{box: [0.75, 0, 0.25, 1]}")
    paths = {"3 groups": duo(tmp_path, "three", regions=gap),
             "2 groups": duo(tmp_path, "two"),
             "global": duo(tmp_path, "global", extra="lora_mode: global\n"),
             "none": duo(tmp_path, "none", loras=False)}
    return {k: compile_file(p) for k, p in paths.items()}


def per_step(recipe, graph) -> float:
    est = estimate(recipe, graph)
    return est.sampling / est.steps


def test_the_variants_are_what_they_say(variants):
    assert {k: hook_groups(g) for k, (_, g) in variants.items()} == {
        "3 groups": 3, "2 groups": 2, "global": 1, "none": 1}
    assert "scene.text" in variants["3 groups"][1] and "scene.text" not in variants["2 groups"][1]
    assert [n.class_type for n in variants["global"][1] if "lora" in n.id] == ["LoraLoader", "LoraLoader"]


def test_per_step_cost_ranks_as_measured(variants):
    cost = {k: per_step(*v) for k, v in variants.items()}
    order = ["3 groups", "2 groups", "global", "none"]
    assert [cost[k] for k in order] == sorted(cost.values(), reverse=True)
    assert len(set(cost.values())) == 4, cost      # strictly


@pytest.mark.parametrize("variant", ["3 groups", "2 groups", "global"])
def test_per_step_ratios_are_near_the_measured_ones(variants, variant):
    estimated = per_step(*variants[variant]) / per_step(*variants["none"])
    measured = MEASURED[variant] / MEASURED["none"]
    assert 0.65 * measured <= estimated <= 1.35 * measured, (variant, estimated, measured)


def test_swap_and_merge_do_not_grow_with_the_canvas(tmp_path):
    small = compile_file(duo(tmp_path, "small"))
    big = compile_file(duo(tmp_path, "big"), ["canvas.width=1024", "canvas.height=1024"])
    s, b = estimate(*small), estimate(*big)
    assert s.swaps_per_step == b.swaps_per_step == 2
    assert s.merge == b.merge == 2 * UNITS["merge_hook"]
    # a 1024x1024 Flux pass is the unit
    assert b.units_per_step == pytest.approx(2 * (1.0 + UNITS["swap"]), rel=1e-9)
    # a cfg > 1 doubles the passes, not the swaps
    cfg = estimate(*compile_file(duo(tmp_path, "cfg"), ["canvas.width=1024", "canvas.height=1024",
                                                       "sampler.cfg=3.5", "negative=blurry"]))
    assert (cfg.passes_per_step, cfg.swaps_per_step) == (4, 2)
    assert cfg.units_per_step == pytest.approx(4 + 2 * UNITS["swap"])


def test_hires_pays_a_second_hook_merge(tmp_path):
    plain = estimate(*compile_file(duo(tmp_path, "plain")))
    hires = estimate(*compile_file(duo(tmp_path, "hires", extra="hires: {scale: 1.5}\n")))
    assert hires.merge == pytest.approx(2 * plain.merge)    # hook weights are dropped after each KSampler
    assert hires.hires > 0 and hires.total > plain.total


def test_units_override(variants):
    recipe, graph = variants["2 groups"]
    est = estimate(recipe, graph, units={"swap": 0.0})
    assert est.units_per_step == pytest.approx(estimate(*variants["none"]).units_per_step * 2)


# -- recipe check --cost --------------------------------------------------------------------

def cost_lines(capsys, *argv) -> str:
    assert main(["check", *argv, "--cost"]) == 0
    return capsys.readouterr().out


def test_cost_compares_presets(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = cost_lines(capsys, "recipes/portrait.yaml", "--out", "/nonexistent")
    assert "cost estimate for recipes/portrait.yaml" in out
    ratios = dict(re.findall(r"^  (\w+) preset: (\d+\.\d\d)[x×] this recipe's cost", out, re.M))
    assert set(ratios) == {"hires", "refine", "schnell", "speed"}, out
    assert 0 < float(ratios["speed"]) < 1 < float(ratios["hires"])
    assert float(ratios["refine"]) > 0
    assert float(ratios["schnell"]) < float(ratios["speed"])     # 4 steps at 896 < 18 at 768
    only = cost_lines(capsys, "recipes/portrait.yaml", "--out", "/nonexistent", "--compare", "speed")
    assert re.findall(r"^  (\w+) preset:", only, re.M) == ["speed"]


def test_cost_counts_encodes_cached_by_the_latest_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out_dir = tmp_path / "out"
    args = ["recipes/portrait.yaml", "--out", str(out_dir), "--compare", "speed"]
    assert "text encodes 2 to run (0 cached on the server)" in cost_lines(capsys, *args)
    # A previous run of this recipe with roxy's prompt changed: celeste's encode is still cached.
    older = out_dir / "portrait" / "20260101-000000-aaaaaa"
    older.mkdir(parents=True)
    assert main(["compile", "recipes/portrait.yaml", "-o", str(older / "graph.api.json"),
                 "--set", "characters.roxy.prompt=someone else"]) == 0
    capsys.readouterr()
    assert "text encodes 1 to run (1 cached on the server)" in cost_lines(capsys, *args)
    # The latest run folder wins: this one ran the recipe as it is.
    newer = out_dir / "portrait" / "20260102-000000-bbbbbb"
    newer.mkdir()
    assert main(["compile", "recipes/portrait.yaml", "-o", str(newer / "graph.api.json")]) == 0
    capsys.readouterr()
    assert "text encodes 0 to run (2 cached on the server)" in cost_lines(capsys, *args)
    shutil.rmtree(newer)
    json.loads((older / "graph.api.json").read_text())      # untouched by check
    assert "text encodes 1 to run (1 cached on the server)" in cost_lines(capsys, *args)


# REFERENCE F: the 2-group lowering, without and with set_cond_area "mask bounds".
MASK_BOUNDS = {128: (2.4, 2.15), 512: ((9.1 + 12.2) / 2, 5.5)}


@pytest.mark.parametrize("size", sorted(MASK_BOUNDS))
def test_mask_bounds_cost_follows_the_crop_as_measured(tmp_path, size):
    sets = [f"canvas.width={size}", f"canvas.height={size}"]
    full = per_step(*compile_file(duo(tmp_path, f"full{size}"), sets))
    cropped = per_step(*compile_file(duo(tmp_path, f"bounds{size}", extra="regions: {area: mask-bounds}\n"), sets))
    default, bounds = MASK_BOUNDS[size]
    assert 0.65 * bounds / default <= cropped / full <= 1.35 * bounds / default, (size, cropped / full)
    assert cropped < full


def test_check_cost_shows_each_lowering_beside_its_measured_bleed(capsys, monkeypatch):
    from compiler.check.bleed import LOWERINGS, MEASURED
    monkeypatch.chdir(ROOT)
    out = cost_lines(capsys, "recipes/sd15-duo.yaml", "--out", "/nonexistent", "--compare", "speed",
                     "--set", "lora_mode=refine")
    table = out[out.index("separation against cost"):].splitlines()
    rows = {line.split()[0]: line for line in table[2:] if line.strip()}
    assert list(rows) == list(LOWERINGS)
    assert "(this recipe)" in rows["refine"] and rows["refine"].split()[3] == "1.00x"
    measured = MEASURED["sd15"]
    for name, (leak, share, png, effect) in measured.items():
        assert f"{100 * share:.1f}%" in rows[name] and f"{png:.2f}" in rows[name], rows[name]
        assert f"{effect / measured['hooks'][3]:.2f}x" in rows[name]
    assert "0 (none)" in rows["refine"]      # not one latent value changed outside A's mask
    cost = {name: float(line.split()[1 if "(this" not in line else 3].rstrip("x")) for name, line in rows.items()}
    assert cost["global"] < cost["hooks"]     # one pass a step, the LoRAs merged once
