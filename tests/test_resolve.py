"""Focused behaviour of resolve and lower: presets, --set, triggers, feathering,
Flux variants, the cfg-1 negative, scene folding, masks, and the LoRA modes."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler import compile_file
from compiler.ir.graph import Link
from compiler.resolve.passes import resolve_file

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = "recipes/portrait.yaml"

FLUX_MODEL = """\
model:
  family: flux
  unet: flux1-dev-fp8_e4m3fn.safetensors
  text_encoders: [t5xxl_fp8_e4m3fn.safetensors, clip_l.safetensors]
  vae: ae.safetensors
"""


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def nodes_of(graph, class_type: str) -> list:
    return [n for n in graph if n.class_type == class_type]


def duo(folder: Path, *, canvas: str = "{width: 896, height: 896}", regions=("left", "right"),
        scene: str = "two women in a cafe", extra: str = "") -> str:
    """A two-character Flux recipe with LoRAs, for the lowering tests."""
    return write(folder, "duo.yaml", FLUX_MODEL + textwrap.dedent(f"""\
        canvas: {canvas}
        characters:
          roxy:
            lora: roxygirl04.safetensors
            trigger: roxygirl04
            strength: 0.8
            prompt: a woman in a red coat
            region: {regions[0]}
          celeste:
            lora: celestesh-01.safetensors
            strength: {{model: 0.7, clip: 0.9}}
            prompt: a woman in a blue coat
            region: {regions[1]}
        scene: {scene}
        negative: blurry, extra fingers
        """) + extra)


# -- extends: / --preset ---------------------------------------------------------

@pytest.fixture
def presets(tmp_path):
    write(tmp_path, "presets/p1.yaml", """\
        sampler: {steps: 10, seed: 1, scheduler: beta}
        canvas: {width: 768, height: 768}
        guidance: 2.0
        """)
    write(tmp_path, "presets/p2.yaml", """\
        sampler: {steps: 20}
        canvas: {width: 1024}
        """)
    write(tmp_path, "presets/unseed.yaml", """\
        sampler: {seed: null}
        """)
    return tmp_path


def chars(text: str = "") -> str:
    return "characters:\n  roxy:\n    prompt: a woman\n" + text


def test_later_preset_wins_and_mappings_merge_key_by_key(presets):
    r = resolve_file(write(presets, "r.yaml", "extends: [p1, p2]\n" + FLUX_MODEL + chars()))
    assert r.sampler.steps == 20            # p2 over p1
    assert r.sampler.seed == 1              # only p1 says it
    assert r.sampler.scheduler == "beta"
    assert (r.canvas.width, r.canvas.height) == (1024, 768)
    assert r.guidance == 2.0


def test_recipe_wins_over_every_preset(presets):
    r = resolve_file(write(presets, "r.yaml", "extends: [p1, p2]\n" + FLUX_MODEL + chars()
                           + "sampler: {steps: 30}\ncanvas: {height: 512}\n"))
    assert (r.sampler.steps, r.sampler.seed) == (30, 1)
    assert (r.canvas.width, r.canvas.height) == (1024, 512)


def test_null_removes_an_inherited_value_and_the_family_default_returns(presets):
    r = resolve_file(write(presets, "r.yaml", "extends: [p1, p2]\n" + FLUX_MODEL + chars()
                           + "sampler: {scheduler: null}\nguidance: null\n"))
    assert r.sampler.scheduler == "simple"  # flux default, not p1's beta
    assert r.guidance == 3.5                # flux dev default, not p1's 2.0
    assert r.sampler.steps == 20


def test_null_in_a_later_preset_removes_an_earlier_presets_value(presets):
    r = resolve_file(write(presets, "r.yaml", "extends: [p1, unseed]\n" + FLUX_MODEL + chars()))
    assert r.sampler.seed == 0 and r.sampler.steps == 10


def test_each_value_is_located_in_the_file_that_supplied_it(presets):
    path = write(presets, "r.yaml", "extends: [p1, p2]\n" + FLUX_MODEL + chars() + "sampler: {seed: 9}\n")
    r = resolve_file(path)
    assert Path(r.locate("sampler.steps").file).resolve() == presets / "presets/p2.yaml"
    assert Path(r.locate("canvas.height").file).resolve() == presets / "presets/p1.yaml"
    seed = r.locate("sampler.seed")
    assert (seed.file, seed.line) == (path, 10)


def test_cli_preset_wins_over_the_file():
    r = resolve_file(PORTRAIT, presets=["speed"])
    assert (r.canvas.width, r.sampler.steps) == (768, 18)   # the file says 896 and 24
    r = resolve_file(PORTRAIT, presets=["speed", "schnell"])
    assert (r.canvas.width, r.sampler.steps, r.model.variant) == (768, 4, "schnell")


def test_set_wins_over_cli_preset():
    r = resolve_file(PORTRAIT, ["sampler.steps=7"], presets=["speed"])
    assert r.sampler.steps == 7


# -- --set ------------------------------------------------------------------------

def test_set_a_list():
    r = resolve_file(PORTRAIT, ["model.text_encoders=[t5-other.safetensors, clip_l-other.safetensors]"])
    assert r.model.text_encoders == ("t5-other.safetensors", "clip_l-other.safetensors")


def test_set_null_removes_the_value(tmp_path):
    r = resolve_file(write(tmp_path, "r.yaml", FLUX_MODEL + chars() + "guidance: 2.0\nsampler: {seed: 5}\n"),
                     ["guidance=null", "sampler.seed=null"])
    assert (r.guidance, r.sampler.seed) == (3.5, 0)


def test_set_null_removes_a_lora():
    recipe, graph = compile_file(PORTRAIT, ["characters.roxy.lora=null"])
    assert recipe.characters[0].lora is None
    assert "char.roxy.lora" not in graph and graph["char.roxy.cond"].input("hooks") is None
    assert "char.celeste.lora" in graph


def test_set_strength_shorthand():
    r = resolve_file(PORTRAIT, ["characters.roxy.strength=0.5"])
    roxy = r.characters[0]
    assert (roxy.loras[0].strength_model, roxy.loras[0].strength_clip) == (0.5, 0.5)


def test_set_one_half_of_a_shorthand_strength(tmp_path):
    path = duo(tmp_path)    # roxy has `strength: 0.8`
    roxy = resolve_file(path, ["characters.roxy.strength.model=0.3"]).characters[0]
    assert (roxy.loras[0].strength_model, roxy.loras[0].strength_clip) == (0.3, 0.8)


def test_set_a_key_the_file_does_not_have():
    roxy = resolve_file(PORTRAIT, ["characters.roxy.name=Roxy Q"]).characters[0]
    assert roxy.name == "Roxy Q"


# -- triggers ---------------------------------------------------------------------

@pytest.mark.parametrize("prompt, trigger, expected", [
    ("a woman", "rx01", "rx01, a woman"),
    ("{{ trigger }}, a woman", "rx01", "rx01, a woman"),
    ("portrait of rx01 smiling", "rx01", "portrait of rx01 smiling"),
    ("portrait of RX01 smiling", "rx01", "portrait of RX01 smiling"),
    ("a rx012 woman", "rx01", "rx01, a rx012 woman"),
    ("celestesh-01 in blue", "celestesh-01", "celestesh-01 in blue"),
    ("a woman", "", "a woman"),
    ("{{ '' }}", "rx01", "rx01"),
])
def test_trigger_is_put_first_only_when_the_template_leaves_it_out(tmp_path, prompt, trigger, expected):
    path = write(tmp_path, "r.yaml", FLUX_MODEL + "characters:\n  roxy:\n"
                 f"    trigger: {trigger!r}\n    prompt: {prompt!r}\n")
    assert resolve_file(path).characters[0].prompt == expected


# -- regions and masks ---------------------------------------------------------------

@pytest.mark.parametrize("size, feather", [(896, 48), (768, 32), (1216, 88)])
def test_default_feather_follows_the_canvas(tmp_path, size, feather):
    recipe, graph = compile_file(duo(tmp_path, canvas=f"{{width: {size}, height: {size}}}"))
    assert [c.region.feather for c in recipe.characters] == [feather, feather]
    assert graph["char.roxy.mask.feather"].input("right") == feather
    solid = graph["char.roxy.mask.solid"]
    assert solid.input("width") == size // 2 + feather // 2   # the box widened by half the feather


def test_explicit_feathers_win_over_the_default(tmp_path):
    path = duo(tmp_path, canvas="{width: 896, height: 896, feather: 16}",
               regions=("left", "{columns: 2, index: 1, feather: 0}"))
    recipe, graph = compile_file(path)
    assert [c.region.feather for c in recipe.characters] == [16, 0]
    assert graph["char.roxy.mask.feather"].input("right") == 16
    assert "char.celeste.mask.feather" not in graph        # feather 0: a hard edge


@pytest.mark.parametrize("regions", [("left", "right"), ("top", "bottom"),
                                     ("{box: [0, 0, 0.5, 0.5]}", "{box: [400, 300, 624, 468]}"),
                                     ("{columns: [3, 2], index: 0}", "{columns: [3, 2], index: 1}")])
def test_masks_are_exactly_canvas_sized(tmp_path, regions):
    recipe, graph = compile_file(duo(tmp_path, canvas="{width: 1024, height: 768}", regions=regions))
    canvas = graph["canvas.mask"]
    assert canvas.class_type == "SolidMask" and canvas.input("value") == 0.0
    assert (canvas.input("width"), canvas.input("height")) == (1024, 768)
    comps = nodes_of(graph, "MaskComposite")
    # Every layout here places at least roxy's box by compositing: with none, the loop checks nothing.
    assert "char.roxy.mask" in [c.id for c in comps]
    for comp in comps:
        assert comp.input("destination") == Link("canvas.mask", 0)
        solid = graph[comp.id + ".solid"]
        assert comp.input("x") + solid.input("width") <= 1024
        assert comp.input("y") + solid.input("height") <= 768


def test_two_halves_share_one_mask_through_invert(tmp_path):
    _, graph = compile_file(duo(tmp_path))
    assert graph["char.celeste.mask"].class_type == "InvertMask"
    assert graph["char.celeste.mask"].input("mask") == Link("char.roxy.mask", 0)


def test_scene_is_folded_into_character_prompts_when_regions_cover_the_canvas(tmp_path):
    _, graph = compile_file(duo(tmp_path))
    assert "scene.text" not in graph
    assert graph["char.roxy.text"].input("text") == "roxygirl04, a woman in a red coat, two women in a cafe"
    assert graph["char.celeste.text"].input("text") == "a woman in a blue coat, two women in a cafe"
    assert graph["char.roxy.cond"].class_type == "PairConditioningSetProperties"


def test_scene_is_its_own_cond_when_regions_leave_a_gap(tmp_path):
    path = duo(tmp_path, regions=("{box: [0, 0, 0.25, 1]}", "{box: [0.75, 0, 0.25, 1]}"))
    _, graph = compile_file(path)
    scene = graph["scene.text"]
    assert (scene.class_type, scene.input("text")) == ("CLIPTextEncode", "two women in a cafe")
    assert graph["char.roxy.text"].input("text") == "roxygirl04, a woman in a red coat"
    first = graph["char.roxy.cond"]
    assert first.class_type == "PairConditioningSetPropertiesAndCombine"
    assert first.input("positive") == Link("scene.text", 0)


def test_boxes_that_tile_the_canvas_fold_the_scene(tmp_path):
    path = duo(tmp_path, regions=("{box: [0, 0, 0.5, 1]}", "{box: [0.5, 0, 0.5, 1]}"))
    _, graph = compile_file(path)
    assert "scene.text" not in graph


# -- Flux variants, guidance, negative --------------------------------------------------

def test_schnell_has_no_flux_guidance_and_no_model_sampling_flux():
    for presets in (["schnell"], ["schnell", "hires"]):
        recipe, graph = compile_file(PORTRAIT, presets=presets)
        assert recipe.model.variant == "schnell" and recipe.guidance is None
        assert not nodes_of(graph, "FluxGuidance")
        assert not nodes_of(graph, "ModelSamplingFlux")
        assert graph["sampler"].input("model") == Link("model.unet", 0)


@pytest.mark.parametrize("variant", ["dev", "srpo"])
def test_dev_and_srpo_have_flux_guidance_and_model_sampling_flux(variant):
    _, graph = compile_file(PORTRAIT, [f"model.variant={variant}"])
    assert [n.input("guidance") for n in nodes_of(graph, "FluxGuidance")] == [3.5]
    assert graph["sampler"].input("positive") == Link("guidance", 0)
    assert graph["sampler"].input("model") == Link("model.sampling", 0)


@pytest.mark.parametrize("regions", [("left", "right"), ("{box: [0, 0, 0.25, 1]}", "{box: [0.75, 0, 0.25, 1]}")])
def test_cfg_1_negative_is_a_zero_out_of_an_existing_encode(tmp_path, regions):
    _, graph = compile_file(duo(tmp_path, regions=regions))
    negative = graph["negative"]
    assert negative.class_type == "ConditioningZeroOut"
    source = negative.input("conditioning").node
    assert graph[source].class_type == "CLIPTextEncode"
    users = [n.id for n in graph for _, v in n.inputs if v == Link(source, 0) and n.id != "negative"]
    assert users, f"{source} exists only to feed the negative"
    assert not [n for n in nodes_of(graph, "CLIPTextEncode") if "blurry" in n.input("text")]


def test_cfg_above_1_encodes_the_negative_text(tmp_path):
    _, graph = compile_file(duo(tmp_path), ["sampler.cfg=5.5"])
    negative = graph["negative"]
    assert (negative.class_type, negative.input("text")) == ("CLIPTextEncode", "blurry, extra fingers")
    assert negative.input("clip") == Link("model.clip", 0)     # no character's LoRA in the negative


# -- LoRA modes ---------------------------------------------------------------------------

def test_hooks_mode_makes_one_hook_group_per_character_with_a_lora(tmp_path):
    _, graph = compile_file(duo(tmp_path))
    assert [n.id for n in nodes_of(graph, "CreateHookLora")] == ["char.roxy.lora", "char.celeste.lora"]
    for cid in ("roxy", "celeste"):
        assert graph[f"char.{cid}.cond"].input("hooks") == Link(f"char.{cid}.lora", 0)
    assert not nodes_of(graph, "LoraLoader")


def test_zero_strength_lora_emits_nothing(tmp_path):
    _, graph = compile_file(duo(tmp_path), ["characters.roxy.strength=0"])
    assert "char.roxy.lora" not in graph and "char.roxy.clip" not in graph
    assert graph["char.roxy.cond"].input("hooks") is None
    assert graph["char.roxy.text"].input("clip") == Link("model.clip", 0)


def test_zero_clip_strength_skips_set_clip_hooks(tmp_path):
    _, graph = compile_file(duo(tmp_path), ["characters.roxy.strength.clip=0"])
    assert graph["char.roxy.lora"].input("strength_model") == 0.8
    assert "char.roxy.clip" not in graph
    assert graph["char.roxy.cond"].input("hooks") == Link("char.roxy.lora", 0)


def test_global_mode_chains_lora_loaders_and_emits_no_hook_nodes(tmp_path):
    _, graph = compile_file(duo(tmp_path, extra="lora_mode: global\n"))
    first, second = graph["char.roxy.lora"], graph["char.celeste.lora"]
    assert (first.class_type, second.class_type) == ("LoraLoader", "LoraLoader")
    assert (first.input("model"), first.input("clip")) == (Link("model.unet", 0), Link("model.clip", 0))
    assert (second.input("model"), second.input("clip")) == (Link("char.roxy.lora", 0), Link("char.roxy.lora", 1))
    assert (first.input("strength_model"), first.input("strength_clip")) == (0.8, 0.8)
    assert graph["model.sampling"].input("model") == Link("char.celeste.lora", 0)
    for text in ("char.roxy.text", "char.celeste.text"):
        assert graph[text].input("clip") == Link("char.celeste.lora", 1)
    for kind in ("CreateHookLora", "SetClipHooks"):
        assert not nodes_of(graph, kind)
    assert not [n.id for n in graph if n.input("hooks") is not None]


def test_global_mode_with_hires_upscales_with_the_lora_model(tmp_path):
    path = duo(tmp_path, extra="lora_mode: global\nhires: {scale: 1.5}\n")
    _, graph = compile_file(path)
    assert graph["hires.sampling"].input("model") == Link("char.celeste.lora", 0)


# -- YAML keys -------------------------------------------------------------------------------

def test_yaml_boolean_words_as_keys_keep_their_text(tmp_path):
    # YAML 1.1 reads `no:` as False and `on:` as True; a key keeps its text.
    path = write(tmp_path, "r.yaml", FLUX_MODEL + textwrap.dedent("""\
        vars: {on: stage lights}
        characters:
          no:
            prompt: "a mime, {{ vars.on }}"
        """))
    recipe = resolve_file(path)
    assert [c.id for c in recipe.characters] == ["no"]
    assert recipe.characters[0].prompt == "a mime, stage lights"


SD15_NO_CANVAS = """\
model: {family: sd15, checkpoint: tiny-sd15.safetensors}
characters:
  a: {prompt: a woman, region: full}
"""


def test_family_defaults_are_not_shared_with_resolved_documents(tmp_path):
    """Changing one resolved document's canvas must not change the next recipe's defaults."""
    first = resolve_file(write(tmp_path, "one.yaml", SD15_NO_CANVAS))
    assert first.document["canvas"] == {"width": 512, "height": 512}
    first.document["canvas"]["width"] = 64
    first.document["sampler"]["steps"] = 1
    second = resolve_file(write(tmp_path, "two.yaml", SD15_NO_CANVAS))
    assert (second.canvas.width, second.canvas.height) == (512, 512)
    assert second.document["canvas"] == {"width": 512, "height": 512}
    assert second.sampler.steps == 25


def test_constant_tables_are_read_only_and_shorthand_is_copied(tmp_path):
    from compiler.check.cost import UNITS
    from compiler.ir.families import FAMILIES
    for table in (FAMILIES, FAMILIES["sd15"].defaults, FAMILIES["sd15"].defaults["canvas"],
                  FAMILIES["flux"].variants, FAMILIES["flux"].variants["schnell"].defaults, UNITS):
        with pytest.raises(TypeError):
            table["width"] = 64
    text = SD15_NO_CANVAS.replace("region: full", "region: left")
    first = resolve_file(write(tmp_path, "one.yaml", text))
    first.document["characters"]["a"]["region"]["columns"].append(5)
    second = resolve_file(write(tmp_path, "two.yaml", text))
    assert second.document["characters"]["a"]["region"]["columns"] == [1, 1]


def test_an_indexed_key_set_with_set_is_located_at_set(capsys):
    """`characters.roxy.lora[1]` has the list `characters.roxy.lora` as its parent, which --set wrote."""
    from compiler.cli.main import main
    twice = "characters.roxy.lora=[{file: roxygirl04.safetensors}, {file: roxygirl04.safetensors}]"
    recipe = resolve_file(PORTRAIT, [twice])
    where = recipe.locate("characters.roxy.lora[1]")
    assert (where.file, where.key_path) == ("--set", "characters.roxy.lora[1]")
    assert recipe.locate("characters.roxy.prompt").file == PORTRAIT
    assert recipe.locate("characters.nobody[2].x").file == PORTRAIT   # nearest located parent: characters
    assert main(["check", PORTRAIT, "--set", twice]) == 2
    err = capsys.readouterr().err
    assert "error: --set characters.roxy.lora[1]: LoRA `roxygirl04.safetensors` is applied twice" in err
