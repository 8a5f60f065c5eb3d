"""Properties of every graph the compiler makes, over generated valid recipes.

Hypothesis builds recipes as plain dicts (Flux dev/schnell/SRPO, SD1.5, SDXL; one to
four characters with or without a LoRA, zero strengths included; regions from
shorthand, columns, rows and boxes; cfg 1 or 5.5; hook or global LoRAs; hires on or
off; prompts with unicode and templates), writes them as YAML, compiles them and checks:

- every link names an existing node and an output whose type (object_info.json) fits
  the input's declared type, and the whole graph passes `catalogue.check_graph`;
- the graph has no cycle;
- every node's origin is located by `recipe.locate()` at the key that was written
  for it (or at its nearest written parent; only never-written keys have no line);
- compiling twice gives the same bytes; the resolved YAML recompiles to them;
- at cfg 1 the negative text is never encoded: `negative` is a ConditioningZeroOut
  of an encode that exists anyway;
- in hooks mode there is one CreateHookLora per character whose LoRA has a non-zero
  strength, and none with both strengths zero; global mode has no hook nodes;
- the canvas mask is exactly canvas-sized.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler import resolve_file, to_graph
from compiler.check.catalogue import check_graph
from compiler.comfy.object_info import Catalogue
from compiler.resolve.written import resolved_yaml
from compiler.errors import RecipeError
from compiler.ir.graph import Link

OBJECT_INFO = Path(__file__).resolve().parents[2] / "shared" / "comfyui" / "object_info.json"

FLUX_UNET = {"dev": "tiny-flux-dev-fp8_e4m3fn.safetensors", "srpo": "tiny-flux-dev-fp8_e4m3fn.safetensors",
             "schnell": "tiny-flux-schnell-fp8_e4m3fn.safetensors"}
LORAS = {"flux": ["tiny-char-a.safetensors", "tiny-char-b.safetensors"],
         "sd": ["tiny-sd15-char-a.safetensors", "tiny-sd15-char-b.safetensors"]}
IDS = ["roxy", "celeste", "a", "b2", "mira-k", "the_kid"]
NEGATIVE_MARK = "negmark"
MARKERS = ("{{", "{%", "{#", "%}", "}}", "#}")


@pytest.fixture(scope="module")
def catalogue():
    if not OBJECT_INFO.exists():
        pytest.skip(f"node catalogue {OBJECT_INFO} is absent (it comes from the shared ComfyUI recordings)")
    return Catalogue.from_file(str(OBJECT_INFO))


# -- strategies ------------------------------------------------------------------

plain_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp", "Co", "Cn")), min_size=1, max_size=30,
).filter(lambda s: s.strip() and not any(m in s for m in MARKERS))

prompt_text = st.one_of(
    plain_text,
    plain_text.map(lambda s: "{{ trigger }}, " + s),
    plain_text.map(lambda s: s + ", {{ vars.light }}"),
    plain_text.map(lambda s: "{{ name }} " + s),
)

strength = st.one_of(st.none(), st.sampled_from([0, 0.0, 0.5, 1, -0.75, 1.25]),
                     st.fixed_dictionaries({}, optional={"model": st.sampled_from([0, 0.7, 1.0]),
                                                         "clip": st.sampled_from([0, 0.9, -1.0])}))


@st.composite
def regions(draw, n: int, width: int, height: int):
    """A region (or None: the default) for each of n characters."""
    kind = draw(st.sampled_from(["auto", "named", "columns", "rows", "boxes", "mixed"]))
    if kind == "auto":
        return [None] * n
    if kind == "named":
        if n == 2:
            return list(draw(st.sampled_from([("left", "right"), ("top", "bottom"), ("right", "left")])))
        return [draw(st.sampled_from(["full", "left", "top", "bottom", "right"])) for _ in range(n)]
    if kind in ("columns", "rows"):
        ratios = draw(st.one_of(st.just(n), st.lists(st.integers(1, 4), min_size=n, max_size=n)))
        order = draw(st.permutations(range(n)))
        return [{kind: ratios, "index": i} for i in order]
    out = []
    for _ in range(n):
        if kind == "mixed" and draw(st.booleans()):
            out.append(draw(st.sampled_from(["left", "right", "top", "bottom", "full"])))
            continue
        if draw(st.booleans()):   # fractions on an exact 1/8 grid
            x, y = draw(st.integers(0, 6)), draw(st.integers(0, 6))
            w, h = draw(st.integers(1, 8 - x)), draw(st.integers(1, 8 - y))
            box = {"box": [x / 8, y / 8, w / 8, h / 8]}
            if draw(st.booleans()):
                box["units"] = "fraction"
        else:                     # pixels on the latent grid
            x, y = draw(st.integers(0, width // 16 - 1)) * 16, draw(st.integers(0, height // 16 - 1)) * 16
            w = draw(st.integers(1, (width - x) // 16)) * 16
            h = draw(st.integers(1, (height - y) // 16)) * 16
            box = {"box": [x, y, w, h], "units": "px"}
        if draw(st.booleans()):
            box["feather"] = draw(st.sampled_from([0, 8, 24]))
        out.append(box)
    return out


@st.composite
def recipes(draw):
    family, variant = draw(st.sampled_from([("flux", "dev"), ("flux", "schnell"), ("flux", "srpo"),
                                            ("sd15", None), ("sdxl", None)]))
    if family == "flux":
        model = {"family": "flux", "variant": variant, "unet": FLUX_UNET[variant],
                 "text_encoders": draw(st.permutations(["tiny-t5xxl_fp8_e4m3fn.safetensors",
                                                        "tiny-clip_l.safetensors"])),
                 "vae": "tiny-flux-ae.safetensors"}
        if variant == "dev" and draw(st.booleans()):
            del model["variant"]
        loras = LORAS["flux"]
    else:
        model = {"family": family, "checkpoint": "tiny-sd15.safetensors"}
        loras = LORAS["sd"]
    width, height = draw(st.integers(16, 96)) * 16, draw(st.integers(16, 96)) * 16
    n = draw(st.integers(1, 4))
    ids = draw(st.lists(st.sampled_from(IDS), min_size=n, max_size=n, unique=True))
    where = draw(regions(n, width, height))
    characters = {}
    for i, cid in enumerate(ids):
        char = {"prompt": draw(prompt_text)}
        if draw(st.booleans()):
            char["lora"] = draw(st.sampled_from(loras))
            s = draw(strength)
            if s is not None:
                char["strength"] = s
        if draw(st.booleans()):
            char["trigger"] = draw(st.sampled_from(["rx01", "celestesh-01", "ÿvaine"]))
        if draw(st.booleans()):
            char["name"] = draw(plain_text)
        if where[i] is not None:
            char["region"] = where[i]
        characters[cid] = char
    doc = {"version": 1, "vars": {"light": draw(plain_text)}, "model": model,
           "canvas": {"width": width, "height": height}, "characters": characters,
           "sampler": {"cfg": draw(st.sampled_from([1, 1.0, 5.5])),
                       "steps": draw(st.integers(1, 30)), "seed": draw(st.integers(0, 2**64 - 1)),
                       "name": draw(st.sampled_from(["euler", "dpmpp_2m", "euler_ancestral"])),
                       "scheduler": draw(st.sampled_from(["simple", "karras", "normal", "beta"]))}}
    if draw(st.booleans()):
        doc["lora_mode"] = draw(st.sampled_from(["hooks", "global", "refine"]))
        if doc["lora_mode"] == "refine" and draw(st.booleans()):
            doc["refine"] = draw(st.fixed_dictionaries({}, optional={
                "base": st.sampled_from(["none", "hooks"]), "margin": st.sampled_from([0, 8, 40]),
                "denoise": st.sampled_from([0.35, 1]), "steps": st.integers(1, 12)}))
    if draw(st.booleans()):
        doc["scene"] = draw(plain_text)
    if draw(st.booleans()):
        doc["negative"] = NEGATIVE_MARK + " " + draw(plain_text)
    if draw(st.booleans()):
        doc["hires"] = draw(st.one_of(st.just({}), st.fixed_dictionaries(
            {"scale": st.sampled_from([1.17, 1.5, 2]), "denoise": st.sampled_from([0.3, 0.55])})))
    if draw(st.booleans()) and family == "flux" and variant != "schnell":
        doc["guidance"] = draw(st.sampled_from([2.5, 3.5, 4]))
    return doc


# -- helpers ---------------------------------------------------------------------------

def _types_fit(got: str, want) -> bool:
    if isinstance(want, list) or want in ("COMBO", "*") or got == "*":
        return True
    return bool(set(got.split(",")) & set(want.split(",")))


def _assert_links(graph, cat: Catalogue) -> None:
    for node_id, name, link in graph.links():
        assert link.node in graph, f"{node_id}.{name} links to missing node {link.node}"
        outputs = cat.outputs(graph[link.node].class_type)
        assert 0 <= link.index < len(outputs), f"{node_id}.{name} -> {link.node}[{link.index}] of {outputs}"
        spec = cat.input_spec(graph[node_id].class_type, name)
        assert spec is not None, f"{graph[node_id].class_type} has no input {name}"
        assert _types_fit(outputs[link.index], spec[0]), \
            f"{node_id}.{name} wants {spec[0]}, {link.node}[{link.index}] gives {outputs[link.index]}"


def _assert_acyclic(graph) -> None:
    deps = {n.id: {v.node for _, v in n.inputs if isinstance(v, Link)} for n in graph}
    state: dict = {}

    def visit(node_id, trail):
        if state.get(node_id) == "done":
            return
        assert state.get(node_id) != "open", f"cycle: {' -> '.join(trail + [node_id])}"
        state[node_id] = "open"
        for dep in deps.get(node_id, ()):
            visit(dep, trail + [node_id])
        state[node_id] = "done"

    for node_id in deps:
        visit(node_id, [])


def _written_prefix(doc: dict, origin: str) -> list:
    """The longest prefix of the dotted `origin` that exists as keys in `doc`."""
    node, found = doc, []
    for part in origin.split("."):
        if not (isinstance(node, dict) and part in node):
            break
        found.append(part)
        node = node[part]
    return found


def _assert_origins(recipe, graph, doc: dict, path: Path) -> None:
    lines = path.read_text("utf-8").splitlines()
    for node in graph:
        assert node.origin, f"node {node.id} has no origin"
        loc = recipe.locate(node.origin)
        assert loc.file == str(path), f"{node.id}: {loc}"
        assert loc.key_path == node.origin
        written = _written_prefix(doc, node.origin)
        if not written:
            assert loc.line == 0, f"{node.id}: origin {node.origin} was never written but located at {loc}"
            continue
        assert 1 <= loc.line <= len(lines), f"{node.id}: {loc} is outside the file"
        text = lines[loc.line - 1][loc.col - 1:]
        key = written[-1]
        assert text.startswith((f"{key}:", f"'{key}':", f'"{key}":')), \
            f"{node.id} (origin {node.origin}) located at {loc}, whose text is {text!r}, not key `{key}`"


def _refine_refusal(message: str) -> bool:
    return "too small to refine" in message or "no character has a `lora`" in message


def _assert_refine(recipe, graph, expected: int) -> None:
    """Pass 2: one crop -> LoRA -> sampler -> masked composite per character
    with a LoRA, chained, at the same x/y, inside the canvas, on the latent grid."""
    composites = [n for n in graph if n.class_type == "LatentCompositeMasked"]
    assert len(composites) == expected
    grid = 16 if recipe.model.family == "flux" else 8
    for comp in composites:
        cid = comp.id.split(".")[1]
        crop = graph[f"char.{cid}.refine.crop"]
        x, y, w, h = (crop.input(k) for k in ("x", "y", "width", "height"))
        assert (comp.input("x"), comp.input("y")) == (x, y) and comp.input("resize_source") is False
        assert x % grid == 0 and y % grid == 0 and w >= 64 and h >= 64
        assert x + w <= recipe.canvas.width and y + h <= recipe.canvas.height
        assert graph[comp.input("source").node].class_type == "KSampler"
        sampler = graph[comp.input("source").node]
        assert sampler.input("denoise") == recipe.refine.denoise and sampler.input("steps") == recipe.refine.steps
        model = graph[sampler.input("model").node]
        while model.class_type != "LoraLoader":   # ModelSamplingFlux sized to the crop, on dev/srpo
            assert model.class_type == "ModelSamplingFlux" and (model.input("width"), model.input("height")) == (w, h)
            model = graph[model.input("model").node]
        mask = comp.input("mask")
        if mask is not None:
            cut = graph[mask.node]
            assert cut.class_type == "CropMask" and [cut.input(k) for k in ("x", "y", "width", "height")] == [x, y, w, h]
    if composites:
        assert graph["decode"].input("samples").node in {c.id for c in composites} | {"hires.sampler"}


def _has_lora(char: dict) -> bool:
    s = char.get("strength", 1.0)
    s = {"model": s, "clip": s} if isinstance(s, (int, float)) else {"model": s.get("model", 1.0),
                                                                    "clip": s.get("clip", 1.0)}
    return bool(char.get("lora")) and (s["model"] != 0 or s["clip"] != 0)


_counter = itertools.count()


def compile_file(path: str):
    """Resolve and lower, without the advisor that compiler.compile_file runs:
    generated recipes include ones it refuses (regions leaving part of the
    canvas to no one without a scene), and this property is about lowering."""
    recipe = resolve_file(path)
    return recipe, to_graph(recipe)


# -- the property ------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=recipes())
def test_generated_recipes_compile_to_sound_graphs(doc, tmp_path_factory, catalogue):
    folder = tmp_path_factory.mktemp("prop")
    path = folder / f"gen{next(_counter)}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")

    try:
        recipe, graph = compile_file(str(path))
    except RecipeError as exc:   # refine's own refusals are tested in tests/bad; not a sound graph to check
        assume(doc.get("lora_mode") != "refine" or not _refine_refusal(str(exc)))
        raise
    text = graph.to_json()
    assert json.loads(text) == graph.to_api()

    _assert_links(graph, catalogue)
    check_graph(graph, catalogue, recipe.locate)
    _assert_acyclic(graph)
    _assert_origins(recipe, graph, doc, path)

    # Deterministic, and the resolved recipe is a fixed point.
    assert compile_file(str(path))[1].to_json() == text
    resolved = folder / "resolved.yaml"
    resolved.write_text(resolved_yaml(recipe), encoding="utf-8")
    assert compile_file(str(resolved))[1].to_json() == text

    nodes = list(graph)
    encodes = [n for n in nodes if n.class_type == "CLIPTextEncode"]
    if recipe.sampler.cfg == 1:
        neg = graph["negative"]
        assert neg.class_type == "ConditioningZeroOut"
        source = neg.input("conditioning")
        assert source.node in graph and graph[source.node].class_type == "CLIPTextEncode"
        assert not any(NEGATIVE_MARK in n.input("text") for n in encodes), "negative encoded at cfg 1"
    else:
        assert graph["negative"].class_type == "CLIPTextEncode"
        assert graph["negative"].input("text") == recipe.negative

    hooks = [n for n in nodes if n.class_type == "CreateHookLora"]
    mode = doc.get("lora_mode", "hooks")
    expected = sum(_has_lora(c) for c in doc["characters"].values())
    if mode == "refine":
        _assert_refine(recipe, graph, expected)
        mode = "hooks" if recipe.refine.base == "hooks" else "none"
        expected = expected if mode == "hooks" else 0
    if mode == "hooks":
        assert len(hooks) == expected
        assert all(n.input("strength_model") != 0 or n.input("strength_clip") != 0 for n in hooks)
        used = {n.input("hooks").node for n in nodes if isinstance(n.input("hooks"), Link)}
        assert used == {n.id for n in hooks}, "each hook group is attached to exactly one Pair node"
        assert not any(n.class_type == "LoraLoader" and ".refine." not in n.id for n in nodes)
    elif mode == "none":
        assert not hooks and not any(n.class_type == "SetClipHooks" for n in nodes)
    else:
        assert not hooks and not any(n.class_type == "SetClipHooks" for n in nodes)
        assert sum(n.class_type == "LoraLoader" for n in nodes) == expected

    if "canvas.mask" in graph:
        m = graph["canvas.mask"]
        assert (m.input("width"), m.input("height")) == (recipe.canvas.width, recipe.canvas.height)
