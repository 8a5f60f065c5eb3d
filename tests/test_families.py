"""What users run besides the two-character Flux picture (issue 6): SDXL and
SD1.5 checkpoints, Flux from one checkpoint, N characters, prompt-only
characters, stacked LoRAs, img2img and painted masks, each lowered to nodes
that exist in the recorded catalogue."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from compiler import compile_file
from compiler.check.catalogue import check_graph
from compiler.comfy.object_info import Catalogue
from compiler.errors import RecipeError
from compiler.cli.main import main
from compiler.ir.graph import Link

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT.parent / "shared/comfyui/object_info.json"
DATA = ROOT / "tests/data"


def write(folder: Path, text: str, name: str = "r.yaml") -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def of(graph, class_type):
    return [n for n in graph if n.class_type == class_type]


@pytest.fixture(scope="module")
def catalogue():
    if not CATALOGUE.exists():
        pytest.skip("../shared/comfyui/object_info.json is not beside the checkout")
    return Catalogue.from_file(str(CATALOGUE))


def test_stacked_loras_chain_into_one_hook_group(tmp_path, catalogue):
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: tiny-sd15.safetensors}
        characters:
          a:
            lora:
              - {file: tiny-sd15-char-a.safetensors, strength: 0.8}
              - {file: tiny-sd15-char-b.safetensors, strength: {model: 0.4}}
              - {file: broken-lora.safetensors, strength: 0}
            strength: {model: 0.7, clip: 0.9}
            prompt: a woman
            region: left
          b: {prompt: a man, region: right}
        scene: a park
        """)
    recipe, graph = compile_file(path)
    hooks = of(graph, "CreateHookLora")
    assert [h.id for h in hooks] == ["char.a.lora", "char.a.lora.2"]          # the zero one is left out
    assert graph["char.a.lora.2"].input("prev_hooks") == Link("char.a.lora", 0)
    assert (graph["char.a.lora.2"].input("strength_model"), graph["char.a.lora.2"].input("strength_clip")) == (0.4, 0.9)
    assert graph["char.a.cond"].input("hooks") == Link("char.a.lora.2", 0)     # the whole stack: one group
    assert graph["char.b.cond"].input("hooks") is None                         # prompt-only character
    check_graph(graph, catalogue, recipe.locate)


def test_stacked_loras_in_global_mode_chain_loraloaders(tmp_path):
    path = write(tmp_path, """\
        model: {family: sdxl, checkpoint: x.safetensors}
        lora_mode: global
        characters:
          a: {lora: [{file: one.safetensors}, {file: two.safetensors}], prompt: a, region: left}
          b: {lora: three.safetensors, prompt: b, region: right}
        """)
    _, graph = compile_file(path)
    assert [n.id for n in of(graph, "LoraLoader")] == ["char.a.lora", "char.a.lora.2", "char.b.lora"]
    assert graph["sampler"].input("model") == Link("char.b.lora", 0)


def test_flux_from_one_checkpoint(tmp_path):
    path = write(tmp_path, """\
        model: {family: flux, checkpoint: flux1-dev-fp8.safetensors}
        characters: {a: {prompt: a woman}}
        """)
    _, graph = compile_file(path)
    assert graph["model.checkpoint"].class_type == "CheckpointLoaderSimple"
    assert "model.unet" not in graph and graph["model.sampling"].input("model") == Link("model.checkpoint", 0)
    assert graph["decode"].input("vae") == Link("model.checkpoint", 2)


def test_three_characters_in_columns_with_prompt_only_middle(tmp_path, catalogue):
    path = write(tmp_path, """\
        model: {family: flux, unet: tiny-flux-dev-fp8_e4m3fn.safetensors, vae: tiny-flux-ae.safetensors,
                text_encoders: [tiny-t5xxl_fp8_e4m3fn.safetensors, tiny-clip_l.safetensors]}
        canvas: {width: 1152, height: 768}
        characters:
          a: {lora: tiny-char-a.safetensors, prompt: a, region: {columns: 3, index: 0}}
          b: {prompt: b, region: {columns: 3, index: 1}}
          c: {lora: tiny-char-b.safetensors, prompt: c, region: {columns: 3, index: 2}}
        scene: three friends
        """)
    recipe, graph = compile_file(path)
    masks = [graph[f"char.{c}.mask.solid"] for c in "abc"]
    assert all(m.input("height") == 768 for m in masks)
    assert "scene.text" not in graph          # the columns cover the canvas: the scene is folded
    assert all("three friends" in graph[f"char.{c}.text"].input("text") for c in "abc")
    check_graph(graph, catalogue, recipe.locate)


def test_img2img_loads_scales_and_encodes_the_image(tmp_path, catalogue):
    (tmp_path / "photo.png").write_bytes((DATA / "photo.png").read_bytes())
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: tiny-sd15.safetensors}
        canvas: {width: 256, height: 256}
        image: {file: photo.png}
        characters: {a: {prompt: a portrait}}
        """)
    recipe, graph = compile_file(path)
    name = recipe.image.name
    assert name.endswith("-photo.png") and len(name) == len("123456789abc-photo.png")
    assert graph["image.load"].input("image") == name
    assert (graph["image.scale"].input("width"), graph["image.scale"].input("height")) == (256, 256)
    assert graph["latent"].class_type == "VAEEncode"
    assert graph["sampler"].input("denoise") == 0.6          # img2img default: the image matters
    check_graph(graph, catalogue, recipe.locate)              # the upload name is not in the list yet


def test_painted_mask_region_is_scaled_to_the_canvas(tmp_path, catalogue):
    (tmp_path / "left.png").write_bytes((DATA / "left-mask.png").read_bytes())
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: tiny-sd15.safetensors}
        canvas: {width: 512, height: 384}
        characters:
          a: {prompt: a, region: {mask: left.png, channel: red}}
          b: {prompt: b, region: right}
        scene: a room
        """)
    recipe, graph = compile_file(path)
    assert graph["char.a.mask.load"].class_type == "LoadImageMask"
    assert (graph["char.a.mask.scale"].input("width"), graph["char.a.mask.scale"].input("height")) == (512, 384)
    assert graph["char.a.cond"].input("mask") == Link("char.a.mask", 0)
    assert "scene.text" in graph          # a painted shape's coverage is unknown: the scene stays
    check_graph(graph, catalogue, recipe.locate)


def test_missing_image_is_a_recipe_error(tmp_path, capsys):
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: x.safetensors}
        image: {file: nowhere.png}
        characters: {a: {prompt: a}}
        """)
    assert main(["compile", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:9 image.file: file `nowhere.png` not found" in err


def test_resolved_recipe_with_an_image_recompiles_from_elsewhere(tmp_path):
    from compiler.resolve.written import resolved_yaml
    (tmp_path / "photo.png").write_bytes((DATA / "photo.png").read_bytes())
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: x.safetensors}
        image: {file: photo.png}
        characters: {a: {prompt: a}}
        """)
    recipe, graph = compile_file(path)
    elsewhere = tmp_path / "run" / "recipe.resolved.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(resolved_yaml(recipe))
    # The image is outside the run folder: a resolved recipe is confined like any other.
    with pytest.raises(RecipeError, match="outside the recipe's folder"):
        compile_file(str(elsewhere))
    assert compile_file(str(elsewhere), allow=[str(tmp_path)])[1].to_json() == graph.to_json()


def test_run_uploads_the_image_before_queueing(comfy_server, tmp_path, capsys):
    (tmp_path / "photo.png").write_bytes((DATA / "photo.png").read_bytes())
    path = write(tmp_path, """\
        model: {family: sd15, checkpoint: tiny-sd15.safetensors}
        canvas: {width: 256, height: 256}
        image: {file: photo.png}
        characters: {a: {prompt: a portrait}}
        """)
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6")
    assert main(["run", path, "--server", srv.url, "--out", str(tmp_path / "out"), "--plain"]) == 0, \
        capsys.readouterr().err
    paths = [(r.method, r.path) for r in srv.requests]
    assert paths.index(("POST", "/upload/image")) < paths.index(("POST", "/prompt"))
    folder = Path(capsys.readouterr().out.strip())
    record = json.loads((folder / "run.json").read_text())
    assert record["uploads"][0]["server_name"].endswith("-photo.png")


# -- editor export (UI format) -----------------------------------------------------

@pytest.mark.parametrize("recipe_file", sorted(p.name for p in (ROOT / "recipes").glob("*.yaml")))
def test_ui_export_round_trips_every_example(recipe_file, catalogue, tmp_path, capsys):
    from compiler.comfy.workflow import from_ui
    out = tmp_path / "wf.json"
    assert main(["export", "--ui", str(ROOT / "recipes" / recipe_file), "--object-info", str(CATALOGUE),
                 "-o", str(out)]) == 0, capsys.readouterr().err
    workflow = json.loads(out.read_text())
    _, graph = compile_file(str(ROOT / "recipes" / recipe_file))
    api = graph.to_api()
    assert [n["title"] for n in workflow["nodes"]] == list(api)            # nodes one to one
    api_links = [(v[0], v[1], node_id, name) for node_id, n in api.items()
                 for name, v in n["inputs"].items() if isinstance(v, list)]
    assert len(workflow["links"]) == len(api_links)                      # links one to one
    back = from_ui(workflow, Catalogue.from_file(str(CATALOGUE)))
    # keyed by the editor's ids, not titles; our readable id is the title
    readable = {ui_id: node["_meta"]["title"] for ui_id, node in back.items()}
    for ui_id, node in back.items():
        node_id = readable[ui_id]
        assert node["class_type"] == api[node_id]["class_type"]
        inputs = {k: [readable[v[0]], v[1]] if isinstance(v, list) else v for k, v in node["inputs"].items()}
        assert {k: inputs[k] for k in api[node_id]["inputs"]} == api[node_id]["inputs"], node_id
        assert node["_meta"]["recipe_key"] == api[node_id]["_meta"]["recipe_key"]
    xs = {n["title"]: n["pos"][0] for n in workflow["nodes"]}
    assert xs["sampler"] > xs["latent"] and xs["save"] > xs["decode"]   # left to right by stage
    seed = next(n for n in workflow["nodes"] if n["title"] == "sampler")["widgets_values"][:2]
    assert seed[1] == "fixed"


def test_run_embeds_the_workflow_in_the_png(comfy_server, tmp_path, capsys):
    from PIL import Image
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6")
    assert main(["run", str(ROOT / "recipes/sd15-duo.yaml"), "--server", srv.url,
                 "--out", str(tmp_path / "out"), "--plain"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    png = next(folder.glob("*.png"))
    workflow = json.loads(Image.open(png).info["workflow"])
    assert {n["title"] for n in workflow["nodes"]} == set(json.loads((folder / "graph.api.json").read_text()))


def test_hires_on_flux_from_one_checkpoint_links_to_the_checkpoint(tmp_path):
    # The hires pass's own ModelSamplingFlux starts from the unshifted model,
    # whichever loader made it (it once pointed at a model.unet that was not there).
    path = write(tmp_path, """\
        model: {family: flux, checkpoint: tiny-flux-dev-fp8_e4m3fn.safetensors}
        characters:
          a: {lora: tiny-char-a.safetensors, prompt: a, region: left}
          b: {lora: tiny-char-b.safetensors, prompt: b, region: right}
        hires: {scale: 1.5}
        """)
    recipe, graph = compile_file(path)
    assert graph["hires.sampling"].input("model") == Link("model.checkpoint", 0)
    assert graph["hires.sampling"].input("model") == graph["model.sampling"].input("model")
