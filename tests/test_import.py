"""`recipe import` (issue 13): graphs, editor workflows and PNGs back to recipes.

Round trips are exact up to node ids: `canonical` is the multiset of content
signatures (class, constants, and the signatures of what each input reads),
so two graphs are equal exactly when they are the same DAG under some renaming.
Hand-wired sources (tests/import/, in the styles users share) are compared by
what the picture depends on: files, LoRAs, prompts, sampler, size, and each
region's mask rasterised here, pixel by pixel, by an evaluator of ComfyUI's
mask nodes written independently of the importer's symbolic one.
"""
from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import pytest

from compiler import compile_file
from compiler.comfy.object_info import Catalogue
from compiler.cli.main import main
from compiler.comfy.workflow import from_ui, to_ui
from compiler.errors import RecipeError
from compiler.ir.graph import Graph

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "import"
CATALOGUE = ROOT.parent / "shared" / "comfyui" / "object_info.json"
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
PRESETS = sorted(p.stem for p in (ROOT / "recipes" / "presets").glob("*.yaml"))


@pytest.fixture(scope="module")
def catalogue():
    if not CATALOGUE.exists():
        pytest.skip("../shared/comfyui/object_info.json is not beside the checkout")
    return Catalogue.from_file(str(CATALOGUE))


def canonical(api: dict) -> collections.Counter:
    """The graph up to node ids (numbers compared as numbers: 7 == 7.0)."""
    def norm(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    clean = {k: {**n, "inputs": {name: norm(v) for name, v in n["inputs"].items()}} for k, n in api.items()}
    return collections.Counter(Graph.from_api(clean).signatures().values())


def run_import(capsys, *argv):
    rc = main(["import", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def imported_graph(capsys, tmp_path, source, *extra) -> dict:
    out = tmp_path / "imported.yaml"
    rc, _, err = run_import(capsys, source, "-o", out, *extra)
    assert rc == 0, err
    return compile_file(str(out))[1].to_api()


# -- round trips: the compiler's own graphs -------------------------------------------

CASES = [(r.name, p) for r in RECIPES for p in [None] + PRESETS]


@pytest.mark.parametrize("recipe_file,preset", CASES, ids=[f"{r}+{p}" if p else r for r, p in CASES])
def test_every_example_and_preset_round_trips(recipe_file, preset, tmp_path, capsys):
    try:
        _, graph = compile_file(str(ROOT / "recipes" / recipe_file), presets=[preset] if preset else [])
    except RecipeError:
        pytest.skip(f"{preset} does not apply to {recipe_file}")
    source = tmp_path / "graph.api.json"
    source.write_text(graph.to_json())
    assert canonical(imported_graph(capsys, tmp_path, source)) == canonical(graph.to_api())


@pytest.mark.parametrize("golden", sorted(p.name for p in (ROOT / "tests" / "golden").glob("*.api.json")))
def test_every_golden_and_its_editor_export_round_trip(golden, catalogue, tmp_path, capsys):
    api = json.loads((ROOT / "tests" / "golden" / golden).read_text())
    assert canonical(imported_graph(capsys, tmp_path, ROOT / "tests" / "golden" / golden)) == canonical(api)
    ui = tmp_path / "workflow.json"
    ui.write_text(json.dumps(to_ui(Graph.from_api(api), catalogue)))
    assert canonical(imported_graph(capsys, tmp_path, ui, "--object-info", CATALOGUE)) == canonical(api)


def _png(path: Path, **chunks) -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, json.dumps(value))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


REGIONS = {   # two characters' regions, on a 1024x1024 Flux canvas
    "rows": ("top", "bottom"),
    "rows 3:2, feather 40": ("{rows: [3, 2], index: 0, feather: 40}", "{rows: [3, 2], index: 1, feather: 40}"),
    "boxes as fractions": ("{box: [0.1, 0.1, 0.4, 0.5]}", "{box: [0.5, 0.3, 0.4, 0.6]}"),
    "boxes in px, feathers 16 and 0": ("{box: [64, 64, 320, 640], units: px, feather: 16}",
                                        "{box: [448, 0, 576, 1024], units: px, feather: 0}"),
    "columns 2:1:1": ("{columns: [2, 1, 1], index: 0}", "{columns: [2, 1, 1], index: 2}"),
    "one feather each": ("{columns: 2, index: 0, feather: 24}", "{columns: 2, index: 1, feather: 96}"),
    "full and a box": ("full", "{box: [0.6, 0.6, 0.3, 0.3]}"),
    "feather wider than the region": ("{columns: 2, index: 0, feather: 600}", "{columns: 2, index: 1, feather: 600}"),
}


@pytest.mark.parametrize("case", sorted(REGIONS))
def test_every_region_form_round_trips(case, tmp_path, capsys):
    a, b = REGIONS[case]
    (tmp_path / "r.yaml").write_text(
        "model: {family: flux, unet: u.safetensors, text_encoders: [t5.safetensors, l.safetensors], vae: ae.safetensors}\n"
        "characters:\n"
        f"  a: {{lora: a.safetensors, prompt: alpha, region: {a}}}\n"
        f"  b: {{lora: b.safetensors, prompt: beta, region: {b}}}\n"
        "scene: a room\n")
    _, graph = compile_file(str(tmp_path / "r.yaml"))
    (tmp_path / "graph.api.json").write_text(graph.to_json())
    assert canonical(imported_graph(capsys, tmp_path, tmp_path / "graph.api.json", "--partial")) == \
        canonical(graph.to_api())


def test_img2img_and_painted_masks_round_trip_with_their_files_beside_the_recipe(tmp_path, capsys):
    for name in ("photo.png", "left-mask.png"):
        shutil.copy(ROOT / "tests" / "data" / name, tmp_path / name)
    (tmp_path / "r.yaml").write_text(
        "model: {family: sd15, checkpoint: tiny-sd15.safetensors}\n"
        "image: {file: photo.png, resize: stretch}\n"
        "canvas: {width: 256, height: 192}\n"
        "output: {batch_size: 2}\n"
        "characters:\n"
        "  a: {lora: a.safetensors, prompt: a cat, region: {mask: left-mask.png, channel: red}}\n"
        "  b: {prompt: a dog, region: right}\n"
        "scene: a sofa\n")
    _, graph = compile_file(str(tmp_path / "r.yaml"))
    (tmp_path / "graph.api.json").write_text(graph.to_json())
    got = imported_graph(capsys, tmp_path, tmp_path / "graph.api.json")
    assert canonical(got) == canonical(graph.to_api())
    assert "file: photo.png" in (tmp_path / "imported.yaml").read_text()


def test_png_prompt_chunk_is_what_ran_and_needs_no_catalogue(catalogue, tmp_path, capsys):
    _, graph = compile_file(str(ROOT / "recipes" / "sd15-duo.yaml"))
    api = graph.to_api()
    workflow = to_ui(graph, catalogue)
    workflow["nodes"][0]["widgets_values"] = ["something-else.safetensors"]   # prompt wins over workflow
    png = _png(tmp_path / "ComfyUI_00001_.png", prompt=api, workflow=workflow)
    assert canonical(imported_graph(capsys, tmp_path, png)) == canonical(api)


def test_png_with_only_a_workflow_chunk_needs_the_catalogue(catalogue, tmp_path, capsys):
    _, graph = compile_file(str(ROOT / "recipes" / "sd15-duo.yaml"))
    png = _png(tmp_path / "wf.png", workflow=to_ui(graph, catalogue))
    rc, _, err = run_import(capsys, png)
    assert rc == 2 and "needs the node catalogue" in err and len(err.splitlines()) == 1
    assert canonical(imported_graph(capsys, tmp_path, png, "--object-info", CATALOGUE)) == canonical(graph.to_api())


# -- hand-wired workflows ----------------------------------------------------------------

def rasterise(api: dict, ref, memo=None) -> list:
    """A mask input, pixel by pixel, as ComfyUI's nodes compute it (comfy_extras/nodes_mask.py)."""
    memo = {} if memo is None else memo
    if ref[0] not in memo:
        memo[ref[0]] = _rasterise(api, api[ref[0]], memo)
    return memo[ref[0]]


def _rasterise(api: dict, node: dict, memo: dict) -> list:
    i, kind = node["inputs"], node["class_type"]
    if kind == "SolidMask":
        return [[float(i["value"])] * i["width"] for _ in range(i["height"])]
    if kind == "InvertMask":
        return [[1.0 - v for v in row] for row in rasterise(api, i["mask"], memo)]
    if kind == "FeatherMask":
        m = [list(row) for row in rasterise(api, i["mask"], memo)]
        h, w = len(m), len(m[0])
        left, right, top, bottom = min(i["left"], w), min(i["right"], w), min(i["top"], h), min(i["bottom"], h)
        for row in m:
            for x in range(left):
                row[x] *= (x + 1.0) / left
            for x in range(right):
                row[-x] *= (x + 1) / right           # sic: -0 is column 0
        for y in range(top):
            m[y] = [v * (y + 1.0) / top for v in m[y]]
        for y in range(bottom):
            m[-y] = [v * (y + 1) / bottom for v in m[-y]]
        return m
    if kind == "MaskComposite":
        out = [list(row) for row in rasterise(api, i["destination"], memo)]
        src, x, y = rasterise(api, i["source"], memo), i["x"], i["y"]
        sign = {"add": 1, "subtract": -1}[i["operation"]]
        for dy, srow in enumerate(src[:max(0, len(out) - y)]):
            row = out[y + dy]
            part = srow[:max(0, len(row) - x)]
            row[x:x + len(part)] = [min(1.0, max(0.0, a + sign * b)) for a, b in zip(row[x:x + len(part)], part)]
        return out
    raise AssertionError(f"no rasteriser for {kind}")


def region_mask(api: dict, text_start: str):
    """The mask on the cond of the prompt that starts with `text_start`."""
    encode = next(k for k, n in api.items() if n["class_type"] == "CLIPTextEncode"
                  and n["inputs"]["text"].startswith(text_start))
    for n in api.values():
        fed = [v for k, v in n["inputs"].items() if k in ("positive_NEW", "conditioning", "cond_NEW")]
        if [encode, 0] in fed and "mask" in n["inputs"]:
            return rasterise(api, n["inputs"]["mask"])
    return None


def max_difference(a: list, b: list) -> float:
    assert (len(a), len(a[0])) == (len(b), len(b[0]))
    return max((abs(p - q) for ra, rb in zip(a, b) if ra != rb for p, q in zip(ra, rb)), default=0.0)


def facts(api: dict) -> dict:
    """What the picture depends on, apart from the prompts and masks."""
    of = lambda *kinds: [n["inputs"] for n in api.values() if n["class_type"] in kinds]  # noqa: E731
    sampler = next(s for s in of("KSampler") if api[s["latent_image"][0]]["class_type"].startswith("Empty"))
    files = {v for n in api.values() for k, v in n["inputs"].items()
             if k in ("unet_name", "ckpt_name", "vae_name", "clip_name1", "clip_name2")}
    loras = sorted((n["lora_name"], float(n["strength_model"]), float(n["strength_clip"]))
                   for n in of("LoraLoader", "CreateHookLora"))
    latent = api[sampler["latent_image"][0]]["inputs"]
    return {"files": files, "loras": loras, "size": (latent["width"], latent["height"]),
            "sampler": tuple(float(sampler[k]) if k == "cfg" else sampler[k]
                             for k in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"))}


def texts(api: dict) -> set:
    return {n["inputs"]["text"] for n in api.values() if n["class_type"] == "CLIPTextEncode"}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


SCENE = "two women on a park bench, autumn, 35mm photo"
ROXY = "roxygirl04, woman with red hair, green jacket, smiling"
CELESTE = "celestesh-01, woman with silver hair, white shirt, calm"


def test_the_seed_shape_imports_to_the_same_picture(tmp_path, capsys):
    source = fixture("seed-hooks-split.api.json")
    got = imported_graph(capsys, tmp_path, FIXTURES / "seed-hooks-split.api.json")
    assert facts(got) == facts(source)
    assert facts(got)["sampler"] == (123456789, 35, 1.0, "euler", "beta", 1.0) and facts(got)["size"] == (1216, 1216)
    # rewrites: the scene is folded into each prompt, the empty negative at cfg 1 is a ConditioningZeroOut
    assert texts(got) == {f"{ROXY}, {SCENE}", f"{CELESTE}, {SCENE}"}
    assert any(n["class_type"] == "ConditioningZeroOut" for n in got.values())
    for prompt in (ROXY, CELESTE):
        assert max_difference(region_mask(got, prompt), region_mask(source, prompt)) <= 1 / 255
    written = (tmp_path / "imported.yaml").read_text()
    assert written.startswith("# Imported by `recipe import` from ") and "folded into each character" in written
    assert "trigger: roxygirl04" in written and "guidance: 3.5" in written


def test_a_custom_mask_node_is_listed_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "r.yaml"
    rc, _, err = run_import(capsys, FIXTURES / "seed-custom-mask.api.json", "-o", out)
    assert rc == 2 and not out.exists()
    assert err.splitlines()[0] == (f"error: {FIXTURES / 'seed-custom-mask.api.json'}: node 15 (CustomGradientMask): "
                                   "not mapped: a mask from CustomGradientMask, which the importer cannot evaluate "
                                   "(no server runs during import); a recipe region is a box, a split or a painted "
                                   "mask file")
    assert "--partial" in err.splitlines()[-1]


def test_partial_writes_what_maps_and_comments_the_rest(tmp_path, capsys):
    out = tmp_path / "r.yaml"
    rc, _, err = run_import(capsys, FIXTURES / "seed-custom-mask.api.json", "-o", out, "--partial")
    assert rc == 0, err
    text = out.read_text()
    assert "# --partial: not mapped from" in text and "#   node 15 (CustomGradientMask): not mapped:" in text
    recipe, _ = compile_file(str(out))
    assert [c.lora for c in recipe.characters] == ["roxygirl04.safetensors", "celestesh-01.safetensors"]


def test_a_gguf_unet_with_hook_loras_gets_the_advisors_explanation(tmp_path, capsys):
    rc, _, err = run_import(capsys, FIXTURES / "seed-gguf-hooks.api.json", "-o", tmp_path / "r.yaml")
    assert rc == 2 and not (tmp_path / "r.yaml").exists()
    assert "model.unet: a GGUF model cannot be used with hook LoRAs" in err and "lora_mode: refine" in err


def test_one_lora_injected_twice_names_both_nodes(tmp_path, capsys):
    rc, _, err = run_import(capsys, FIXTURES / "seed-lora-twice.api.json", "--partial", "-o", tmp_path / "r.yaml")
    assert rc == 2 and not (tmp_path / "r.yaml").exists()
    first = err.splitlines()[0]
    assert "node 25 (LoraLoader): LoRA injected twice: `roxygirl04.safetensors`" in first
    assert "node 4 (CreateHookLora)" in first


def test_ksampler_advanced_over_its_whole_schedule_is_a_ksampler(tmp_path, capsys):
    api = fixture("seed-hooks-split.api.json")
    ks = api["22"]["inputs"]
    api["22"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "add_noise": "enable", "noise_seed": ks["seed"], "steps": 35, "cfg": 1.0, "sampler_name": "euler",
        "scheduler": "beta", "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable",
        **{k: ks[k] for k in ("model", "positive", "negative", "latent_image")}}}
    (tmp_path / "wf.json").write_text(json.dumps(api))
    got = imported_graph(capsys, tmp_path, tmp_path / "wf.json")
    assert facts(got) == facts(fixture("seed-hooks-split.api.json"))
    api["22"]["inputs"]["end_at_step"] = 20
    (tmp_path / "wf.json").write_text(json.dumps(api))
    rc, _, err = run_import(capsys, tmp_path / "wf.json")
    assert rc == 2 and "node 22 (KSamplerAdvanced): not mapped: KSamplerAdvanced from step 0 to 20 of 35" in err


def test_a_node_the_catalogue_lacks_is_named(catalogue, capsys):
    rc, _, err = run_import(capsys, FIXTURES / "bad-unknown-class.api.json", "--object-info", CATALOGUE)
    assert rc == 2
    assert err.splitlines()[0] == (f"error: {FIXTURES / 'bad-unknown-class.api.json'}: node 12 (FancyUpscaleSampler): "
                                   f"unknown node class: not in the node catalogue of {CATALOGUE}")


def test_a_loraloader_chain_with_setmask_regions(tmp_path, capsys):
    source = fixture("loraloader-setmask.api.json")
    got = imported_graph(capsys, tmp_path, FIXTURES / "loraloader-setmask.api.json")
    assert facts(got) == facts(source)
    scene = "rainy street, evening, watercolor"
    assert texts(got) == {f"alice_v2, girl in a yellow raincoat, {scene}", f"bobby, boy with a red umbrella, {scene}",
                          "lowres, blurry, extra limbs"}
    for prompt in ("alice_v2", "bobby"):
        assert max_difference(region_mask(got, prompt), region_mask(source, prompt)) <= 1 / 255
    written = (tmp_path / "imported.yaml").read_text()
    assert "lora_mode: global" in written and "trigger: bobby" in written


def test_an_sdxl_checkpoint_workflow_with_a_hires_pass(tmp_path, capsys):
    source = fixture("sdxl-checkpoint-hires.api.json")
    got = imported_graph(capsys, tmp_path, FIXTURES / "sdxl-checkpoint-hires.api.json")
    assert facts(got) == facts(source)
    assert texts(got) == texts(source)
    hires = [n["inputs"] for n in got.values() if n["class_type"] == "KSampler"
             and got[n["inputs"]["latent_image"][0]]["class_type"] == "LatentUpscaleBy"]
    assert [(h["steps"], h["denoise"]) for h in hires] == [(15, 0.45)]
    assert "family: sdxl" in (tmp_path / "imported.yaml").read_text()


def test_a_plain_flux_workflow_with_clip_text_encode_flux_and_a_model_only_lora(tmp_path, capsys):
    source = fixture("flux-simple-lora.api.json")
    got = imported_graph(capsys, tmp_path, FIXTURES / "flux-simple-lora.api.json")
    assert {k: v for k, v in facts(got).items() if k != "loras"} == {k: v for k, v in facts(source).items() if k != "loras"}
    assert facts(got)["loras"] == [("Flux/mjv6-style.safetensors", 0.85, 0.0)]
    assert texts(got) == {"a cat astronaut floating above the earth, cinematic"}
    assert [n["inputs"]["guidance"] for n in got.values() if n["class_type"] == "FluxGuidance"] == [3.5]
    written = (tmp_path / "imported.yaml").read_text()
    for rewrite in ("CLIPTextEncodeFlux becomes", "EmptySD3LatentImage", "ModelSamplingFlux is added",
                    "LoraLoaderModelOnly becomes LoraLoader"):
        assert rewrite in written


@pytest.mark.parametrize("change,line", [
    ({"17": {"strength": 0.8}}, "node 17 (PairConditioningSetPropertiesAndCombine): not mapped: region strength 0.8: "
                                "a recipe's regions have strength 1"),
    ({"21": {"max_shift": 1.0}}, "node 21 (ModelSamplingFlux): not mapped: shifts other than max 1.15, base 0.5"),
    ({"6": {"schedule_clip": True}}, "node 6 (SetClipHooks): not mapped: schedule_clip"),
])
def test_what_a_recipe_cannot_say_is_one_line_per_node(change, line, tmp_path, capsys):
    api = fixture("seed-hooks-split.api.json")
    for node_id, inputs in change.items():
        api[node_id]["inputs"].update(inputs)
    (tmp_path / "wf.json").write_text(json.dumps(api))
    rc, out, err = run_import(capsys, tmp_path / "wf.json")
    assert (rc, out) == (2, "") and err.splitlines()[0].startswith(f"error: {tmp_path / 'wf.json'}: {line}")


def test_a_painted_mask_region_points_at_the_same_file(tmp_path, capsys):
    api = fixture("loraloader-setmask.api.json")
    api["22"] = {"class_type": "LoadImageMask", "inputs": {"image": "left-mask.png", "channel": "red"}}
    api["23"] = {"class_type": "InvertMask", "inputs": {"mask": ["22", 0]}}
    (tmp_path / "wf.json").write_text(json.dumps(api))
    shutil.copy(ROOT / "tests" / "data" / "left-mask.png", tmp_path / "left-mask.png")
    got = imported_graph(capsys, tmp_path, tmp_path / "wf.json", "--partial")
    loads = [n["inputs"] for n in got.values() if n["class_type"] == "LoadImageMask"]
    assert [load["image"].split("-", 1)[1] for load in loads] == ["left-mask.png"]
    assert "mask: left-mask.png" in (tmp_path / "imported.yaml").read_text()


# -- editor workflows ---------------------------------------------------------------------

def test_from_ui_does_what_the_front_end_does(catalogue):
    api = from_ui(fixture("ui-reroute-primitive-bypass.json"), catalogue)
    assert sorted(api, key=int) == ["1", "4", "5", "6", "7", "9", "10"]    # no notes, reroute, primitive, muted, bypassed
    ks = api["7"]["inputs"]
    assert ks["seed"] == 777 and ks["steps"] == 20 and ks["sampler_name"] == "euler_ancestral"   # "randomize" skipped
    assert ks["model"] == ["1", 0]                          # through the bypassed LoraLoader
    assert api["4"]["inputs"]["clip"] == ["1", 1]           # through the Reroute and the bypassed LoraLoader
    assert api["4"]["_meta"]["title"] == "Positive"


def test_an_editor_workflow_imports_with_a_catalogue_and_says_why_not_without(catalogue, tmp_path, capsys):
    source = FIXTURES / "ui-reroute-primitive-bypass.json"
    rc, _, err = run_import(capsys, source)
    assert rc == 2 and err == (f"error: {source}: an editor (UI) workflow needs the node catalogue to read its widget "
                               "values: pass --object-info PATH or --server HOST:PORT (an API graph or a PNG needs "
                               "neither)\n")
    got = imported_graph(capsys, tmp_path, source, "--object-info", CATALOGUE)
    assert canonical(got) == canonical(from_ui(fixture("ui-reroute-primitive-bypass.json"), catalogue))


# -- bad input: one clear line, exit 2 ----------------------------------------------------

def _no_chunks(tmp_path: Path) -> Path:
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    return tmp_path / "plain.png"


BAD = {
    "bad-not-json.json": "the file is not JSON (line 1 column 2: Expecting property name enclosed in double "
                         "quotes) and not a PNG",
    "plain.png": "a PNG without a `prompt` or `workflow` text chunk: not saved by ComfyUI, or saved with "
                 "--disable-metadata",
    "bad-cycle.api.json": "the graph has a cycle: node 1 (VAEDecode) -> node 2 (KSampler) -> node 1 (VAEDecode)",
    "bad-dangling.api.json": "node 3 (KSampler): input `model` links to node 99, which is not in the graph "
                             "(a dangling link)",
    "bad-unknown-class.api.json": "node 12 (FancyUpscaleSampler): not mapped: the picture should come from a "
                                  "KSampler here; the importer does not read `FancyUpscaleSampler`",
    "missing.json": "file not found",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_clear_line(name, tmp_path, capsys):
    source = _no_chunks(tmp_path) if name == "plain.png" else FIXTURES / name
    rc, out, err = run_import(capsys, source, "-o", tmp_path / "r.yaml")
    assert (rc, out) == (2, "") and not (tmp_path / "r.yaml").exists()
    assert err == f"error: {source}: {BAD[name]}\n"


def test_odd_graphs_raise_only_our_own_errors():
    """Inputs deleted, values of the wrong type, links to the wrong node or
    slot: an import either maps, or says what is wrong; nothing else escapes."""
    import copy
    import random
    from compiler.comfy.importer import import_graph
    sources = [fixture(p.name) for p in sorted(FIXTURES.glob("*.api.json"))]
    rnd = random.Random(13)
    values = [None, "x", 3, -1, 2.5, True, [], {}, ["nope", 0], 0]
    for _ in range(300):
        api = copy.deepcopy(rnd.choice(sources))
        node = api[rnd.choice(list(api))]
        if node["inputs"]:
            name = rnd.choice(list(node["inputs"]))
            node["inputs"][name] = rnd.choice(values + [[rnd.choice(list(api)), rnd.randint(0, 2)]])
        try:
            import_graph(api, "odd.json")
        except RecipeError:
            pass
