"""The leak probe: the mask math, the metrics, and the run step's latents."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compiler.lower import PROBE, lower
from compiler.probe.masks import character_masks, feather, resize
from compiler.probe.metrics import measure, read_latent
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
