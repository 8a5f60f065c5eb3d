"""`recipe probe`: the mask math, the metrics, and the whole command over real
sockets against the transcript server, which makes latents and images that
depend on the submitted graph (latent_fn / image_fn), so every number the
probe reports is one this file put there."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compiler.cli.main import main
from compiler.lower import PROBE, lower
from compiler.probe.heatmap import layout
from compiler.probe.masks import character_masks, feather, resize
from compiler.probe.metrics import measure, read_latent
from compiler.probe.renders import compile_render, plan, strength_overrides
from compiler.resolve.passes import resolve_file

try:
    from . import comfy_replay as replay
except ImportError:   # tests/ is not a package: pytest puts it on sys.path instead
    import comfy_replay as replay

ROOT = Path(__file__).resolve().parents[1]
SD15 = str(ROOT / "recipes/sd15-duo.yaml")
SCENARIO = "11-success-sd15-checkpoint-two-characters-cfg6"


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# --- masks: the graph's own mask nodes, done as ComfyUI does them ------------------------

def test_feather_keeps_comfyuis_minus_zero_quirk():
    out = feather(np.ones((1, 6), np.float32), left=2, top=0, right=3, bottom=0)
    # left ramps 1/2, 2/2; right's x = 0 hits column -0 == 0 (×1/3), then -1 ×2/3, -2 ×3/3.
    assert out[0].tolist() == pytest.approx([0.5 / 3, 1.0, 1.0, 1.0, 1.0, 2 / 3])


def test_two_column_masks_ramp_across_the_seam_and_sum_to_one():
    recipe = resolve_file(SD15)                     # 256x256, feather 8: a = left, b = InvertMask(a)
    masks = character_masks(recipe, lower(recipe, PROBE))
    a, b = masks["a"], masks["b"]
    assert a.shape == b.shape == (256, 256)
    assert np.allclose(a + b, 1.0)
    row = a[100]
    assert row[0] == pytest.approx(1 / 8)           # FeatherMask's right loop scales column 0
    assert (row[1:126] == 1).all() and (row[132:] == 0).all()
    assert row[126:132].tolist() == pytest.approx([7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8])
    latent = resize(a, 32, 32)[5]                   # what the sampler sees: bilinear to the latent
    assert (latent[:16] == 1).all() and latent[16] == pytest.approx(0.125) and (latent[17:] == 0).all()


def test_full_region_is_all_ones_and_a_painted_mask_is_scaled_bilinear(tmp_path):
    Image.fromarray(np.where(np.arange(16) < 8, 255, 0).astype(np.uint8)[None].repeat(16, 0)) \
        .save(tmp_path / "left.png")
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: tiny-sd15.safetensors}
        canvas: {width: 64, height: 64}
        characters:
          a: {prompt: a, lora: a.safetensors, region: {mask: left.png, channel: red}}
          b: {prompt: b, region: full}
        """)
    recipe = resolve_file(path)
    masks = character_masks(recipe, lower(recipe, PROBE))
    assert (masks["b"] == 1).all()
    row = masks["a"][10]
    assert (row[:30] == 1).all() and (row[34:] == 0).all()
    assert row[30:34].tolist() == pytest.approx([0.875, 0.625, 0.375, 0.125])


def test_resize_is_torch_bilinear_without_align_corners():
    row = np.array([[0.0, 1.0, 2.0, 3.0]], np.float32)
    assert resize(row, 1, 2)[0].tolist() == pytest.approx([0.5, 2.5])
    assert resize(row[:, :2], 1, 4)[0].tolist() == pytest.approx([0.0, 0.25, 0.75, 1.0])


# --- metrics ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,encode", [
    ("F32", lambda a: a.astype("<f4").tobytes()),
    ("F16", lambda a: a.astype("<f2").tobytes()),
    ("BF16", lambda a: (a.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes())])
def test_read_latent_reads_savelatent_files(dtype, encode):
    values = np.arange(2 * 4 * 3 * 5, dtype=np.float32).reshape(2, 4, 3, 5) / 8
    data = replay.latent_bytes(encode(values), values.shape, dtype, metadata={"prompt": "{}"})
    assert np.array_equal(read_latent(data), values)


@pytest.mark.parametrize("data,reason", [
    (b"\x01", "too short"), (b"\xff" * 16, "header runs past"),
    (replay.latent_bytes(b"\0" * 12, (1, 1, 1, 4), "I8"), "dtype I8"),
    (replay.latent_bytes(b"\0" * 12, (1, 1, 2, 2)), "shape [1, 1, 2, 2] and 3 values"),
    (replay.latent_bytes(b"\0" * 16, (1, 1, 2, 2))[:-4], "cut short (12 of 16 bytes)")])
def test_read_latent_says_why_a_file_is_not_a_latent(data, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        read_latent(data)


def test_measure_effect_leak_share_beyond_the_feather():
    a = np.array([[1, 1, 0.5, 0, 0]] * 2, np.float32)
    masks = {"a": a, "b": 1 - a}
    delta = np.array([[2, 2, 9, 0.5, 0.5]] * 2, np.float32)
    m = measure(delta, masks, "a")
    assert m["effect"] == 2 and m["mean"]["b"] == 0.5 and m["leak"]["b"] == 0.25   # the 9 is in the seam
    assert m["share"] == pytest.approx(8 / 28) and m["pixels"] == 4
    zero = measure(np.where(a == 1, 0, 1).astype(np.float32), masks, "a")
    assert zero["effect"] == 0 and zero["leak"] == {"b": None} and zero["mean"]["b"] == 1
    assert measure(np.zeros_like(a), masks, "a")["share"] is None


# --- the run step collects SaveLatent's latents ----------------------------------------

def test_a_run_downloads_latents_beside_the_images(comfy_server, tmp_path):
    from compiler.comfy.client import ComfyClient
    from compiler.run.steps import run_recipe
    srv = comfy_server(SCENARIO)
    recipe = resolve_file(SD15)
    record = run_recipe(recipe, lower(recipe, PROBE), ComfyClient(srv.url), tmp_path / "out")
    assert [(o["kind"], o["file"], o["node"]) for o in record.data["outputs"]] == [
        ("image", "sd15-duo-5-01.png", "save"), ("latent", "sd15-duo-5-01.latent", "probe.latent")]
    latent = record.data["outputs"][1]["server_file"]
    assert latent["subfolder"] == "latents/recipe" and latent["filename"].startswith("sd15-duo_")
    assert read_latent((record.folder / "sd15-duo-5-01.latent").read_bytes()).shape == (1, 4, 8, 8)
    entry = ComfyClient(srv.url).history(record.data["prompt_id"])
    assert entry["outputs"]["probe.latent"] == {"latents": [latent]}


# --- the renders ---------------------------------------------------------------------------

def test_overrides_put_every_lora_but_one_at_zero_and_keep_stack_strengths(tmp_path):
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: tiny-sd15.safetensors}
        canvas: {width: 256, height: 256}
        characters:
          a: {prompt: a, lora: a.safetensors, strength: {model: 0.7, clip: 0.9}, region: left}
          b:
            prompt: b
            region: right
            lora: [{file: b1.safetensors, strength: 0.5}, {file: b2.safetensors}]
        """)
    recipe = resolve_file(path)
    strengths = lambda r: {c.id: [(x.strength_model, x.strength_clip) for x in c.loras] for c in r.characters}
    renders = plan(recipe, steps=3)
    assert [r.name for r in renders] == ["baseline", "char-a", "char-b"]
    got = {r.name: compile_render(path, r.overrides, ()) for r in renders}
    assert strengths(got["baseline"][0]) == {"a": [(0, 0)], "b": [(0, 0), (0, 0)]}
    assert strengths(got["char-a"][0]) == {"a": [(0.7, 0.9)], "b": [(0, 0), (0, 0)]}
    assert strengths(got["char-b"][0]) == {"a": [(0, 0)], "b": [(0.5, 0.5), (1.0, 1.0)]}
    assert all(rec.sampler.steps == 3 for rec, _ in got.values())
    assert list(got["baseline"][1].nodes) == list(got["char-b"][1].nodes)   # zero LoRAs kept: one structure
    on = compile_render(path, strength_overrides(recipe, "b", 15), ())[0]
    assert strengths(on) == {"a": [(0, 0)], "b": [(15, 15), (15, 15)]}


# --- the command, over real sockets ---------------------------------------------------------

def _strength(graph: dict, cid: str) -> float:
    return graph.get(f"char.{cid}.lora", {}).get("inputs", {}).get("strength_model", 0)


def fake_latent(graph: dict) -> bytes:
    """SD1.5 at 256²: [1, 4, 32, 32]. a's LoRA: +1 on a's 16 columns, +0.5 on the
    seam column, -0.1 beyond it (the leak); b's LoRA: +2 on b's side and the seam."""
    lat = np.random.default_rng(0).normal(size=(1, 4, 32, 32)).astype(np.float32)
    if _strength(graph, "a"):
        lat[..., :16] += 1.0
        lat[..., 16] += 0.5
        lat[..., 17:] -= 0.1
    if _strength(graph, "b"):
        lat[..., 16:] += 2.0
    return replay.latent_bytes(lat.tobytes(), lat.shape)


def fake_image(graph: dict) -> Image.Image:
    """64x64; a's LoRA brightens its half by 51/255 = 0.2; b's changes nothing."""
    img = np.full((64, 64, 3), 100, np.uint8)
    if _strength(graph, "a"):
        img[:, :32] += 51
    return Image.fromarray(img)


def test_probe_measures_what_the_server_rendered(comfy_server, capsys, tmp_path):
    srv = comfy_server(SCENARIO, latent_fn=fake_latent, image_fn=fake_image)
    code = main(["probe", SD15, "--server", srv.url, "--out", str(tmp_path / "out"), "--plain", "--strength", "15"])
    out, err = capsys.readouterr()
    assert code == 0, err
    [folder] = (tmp_path / "out" / "sd15-duo").glob("probe-*")
    data = json.loads((folder / "probe.json").read_text())
    a, b = data["characters"]["a"], data["characters"]["b"]
    assert a["latent"]["effect"] == pytest.approx(1.0) and a["latent"]["leak"]["b"] == pytest.approx(0.1)
    assert a["latent"]["share"] == pytest.approx(16 / (16 + 0.5 + 1.5))   # the seam counts against it
    assert b["latent"]["effect"] == pytest.approx(2.0) and b["latent"]["leak"]["a"] == 0
    assert b["latent"]["share"] == pytest.approx(15 / 16)   # b's mask is 1 from column 17 on
    assert a["image"]["effect"] == pytest.approx(0.2) and a["image"]["leak"]["b"] == 0
    assert b["image"]["effect"] == 0 and b["image"]["leak"]["a"] is None
    assert data["lora_mode"] == "hooks" and data["strength"] == 15 and data["seed"] == 5
    assert data["renders"] == {"baseline": "baseline", "a": "char-a", "b": "char-b"}
    lines = out.splitlines()
    assert lines[0].split() == ["character", "mode", "latent", "effect", "latent", "leak", "share", "image",
                                "effect", "image", "leak"]
    assert lines[1].split() == ["a", "hooks", "1", "b", "0.1", "88.9%", "0.2", "b", "0"]
    assert lines[2].split() == ["b", "hooks", "2", "a", "0", "93.8%", "0", "n/a:", "no", "effect"]
    assert [line for line in err.splitlines() if line.startswith("probe ")] == [
        "probe 1/3: baseline — every LoRA at 0", "probe 2/3: char-a — only a's LoRA on",
        "probe 3/3: char-b — only b's LoRA on"]
    _check_run_folders(folder, srv)
    _check_heatmap(folder, data)


def _check_run_folders(folder: Path, srv) -> None:
    graphs = {}
    for name in ("baseline", "char-a", "char-b"):
        rec = json.loads((folder / name / "run.json").read_text())
        assert rec["status"] == "success" and rec["seed"] == 5
        kinds = sorted((o["kind"], o["file"]) for o in rec["outputs"])
        assert kinds == [("image", "sd15-duo-5-01.png"), ("latent", "sd15-duo-5-01.latent")]
        assert read_latent((folder / name / "sd15-duo-5-01.latent").read_bytes()).shape == (1, 4, 32, 32)
        graphs[name] = json.loads((folder / name / "graph.api.json").read_text())
    assert list(graphs["baseline"]) == list(graphs["char-a"]) == list(graphs["char-b"])
    assert {_strength(graphs["baseline"], c) for c in "ab"} == {0}
    assert (_strength(graphs["char-a"], "a"), _strength(graphs["char-a"], "b")) == (15, 0)
    assert graphs["char-a"]["probe.latent"]["inputs"]["filename_prefix"] == "latents/recipe/sd15-duo"
    posted = [r.body["prompt"] for r in srv.requests if r.method == "POST" and r.path == "/prompt"]
    assert [_strength(p, "b") for p in posted] == [0, 0, 15]


def _check_heatmap(folder: Path, data: dict) -> None:
    sheet = Image.open(folder / "probe.png").convert("RGB")
    assert sheet.size == layout(64, 64, 2)[:2]
    panels = data["heatmap"]["panels"]
    assert [p["character"] for p in panels] == ["a", "b"]
    lum = lambda box, x0, x1: np.asarray(sheet.crop((box[0] + x0, box[1] + 40, box[0] + x1, box[1] + 200)),
                                        np.float32).mean()
    a_tile, b_tile = panels[0]["latent_tile"], panels[1]["latent_tile"]
    assert a_tile[2] == 256   # 32 latent columns x 8, outlines aside
    assert lum(a_tile, 20, 110) > 200 and lum(a_tile, 150, 240) < 120       # a changed its half
    assert lum(b_tile, 20, 110) < 60 and lum(b_tile, 150, 240) > 200        # b only its own


def test_probe_without_any_lora_is_an_error_at_characters(comfy_server, capsys, tmp_path):
    srv = comfy_server(SCENARIO)
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: tiny-sd15.safetensors}
        canvas: {width: 256, height: 256}
        characters:
          a: {prompt: a, region: left}
          b: {prompt: b, region: right}
        """)
    assert main(["probe", path, "--server", srv.url, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {path}:3:1 characters: no character has a LoRA, so the probe has "
                                "nothing to measure (give a character a `lora:`)"]
    assert not (tmp_path / "out").exists() and not [r for r in srv.requests if r.path == "/prompt"]


@pytest.mark.parametrize("args,line", [
    (["--strength", "25"], "error: --strength: 25 is out of range: LoRA strengths go from -20 to 20"),
    (["--steps", "0"], "error: --steps: 0 steps: a render needs at least 1")])
def test_probe_refuses_bad_options(comfy_server, capsys, tmp_path, args, line):
    srv = comfy_server(SCENARIO)
    assert main(["probe", SD15, "--server", srv.url, "--out", str(tmp_path / "out"), *args]) == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_probe_completes_model_names_from_the_servers_subfolders(comfy_server, capsys, tmp_path):
    """A LoRA the server keeps in a subfolder is named by its base name in the
    recipe: the probe's renders carry the full name, as a run's do."""
    srv = comfy_server(SCENARIO, latent_fn=fake_latent, image_fn=fake_image)
    srv.add_model("loras", "characters/celeste-v2.safetensors")
    code = main(["probe", SD15, "--server", srv.url, "--out", str(tmp_path / "out"), "--plain", "--strength", "15",
                 "--set", "characters.b.lora=celeste-v2.safetensors"])
    _, err = capsys.readouterr()
    assert code == 0, err
    posted = [r.body["prompt"] for r in srv.requests if r.method == "POST" and r.path == "/prompt"]
    assert len(posted) == 3
    assert {g["char.b.lora"]["inputs"]["lora_name"] for g in posted} == {"characters/celeste-v2.safetensors"}
