"""Stage 3, resolve: merged YAML document -> frozen `Recipe`.

    RESOLVE_PASSES = (apply_overrides, strip_variants, check_schema, expand_shorthand,
                      fill_defaults, check_size, render_templates, place_regions,
                      attach_inputs, check_family, check_refine)

(`extends:` and --preset were merged before, by presets.py; `variants:` and
`sweep:` are checked and set aside by aside.py, for `recipe run --sweep`;
attach_inputs, the pass that reads files, is inputs.py.)

Each pass takes and returns the document (a plain dict) and may read the
`Context`; errors are collected per pass and raised once. After the passes the
document is in full form, and `build` turns it into dataclasses. The same
document, written as YAML, compiles to the identical graph.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from types import MappingProxyType
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from compiler.ir import regions
from compiler.errors import Location, RecipeError, SchemaError
from compiler.ir.families import FAMILIES
from compiler.ir.frozen import thaw
from compiler.resolve.access import Roots
from compiler.resolve.inputs import attach_inputs
from compiler.resolve.loader import load_text
from compiler.resolve.presets import load_with_presets
from compiler.ir.recipe import Canvas, Character, Hires, Lora, Model, Output, Recipe, Refine, Region, Sampler
from compiler.resolve.schema import validate
from compiler.source import Path, SourceMap, key_path, parse_key_path
from compiler.resolve.aside import strip_variants
from compiler.resolve.substitute import substitute
from compiler.resolve.requirements import check_family, check_refine, check_size

__all__ = ["resolve_file", "resolve_loaded", "resolve_document", "RESOLVE_PASSES", "Context"]


@dataclass
class Context:
    source: SourceMap
    file: str
    overrides: Sequence[str] = ()
    boxes: Dict[str, Any] = field(default_factory=dict)
    files: Dict[str, Any] = field(default_factory=dict)     # key path -> InputFile
    roots: Optional[Roots] = None                          # what it may read (None: the file's own folder)

    def loc(self, *path) -> Location:
        return self.source.locate(tuple(path))


def resolve_file(path: str, overrides: Sequence[str] = (), presets: Sequence[str] = (),
                 display: str | None = None, allow: Sequence[str] = ()) -> Recipe:
    """Load, presets, then the resolve passes (`compiler.pipeline` is the
    driver that goes on to lower and advise). `allow`: see resolve/access.py."""
    display = display or str(path)
    roots = Roots.of(path, allow)
    doc, source = load_with_presets(path, display, on_top=presets, roots=roots)
    return resolve_loaded(doc, source, display, overrides, roots=roots)


def resolve_loaded(doc: dict, source: SourceMap, file: str, overrides: Sequence[str] = (),
                   roots: Optional[Roots] = None) -> Recipe:
    """The resolve passes over a loaded, preset-merged document. `doc` and
    `source` are changed in place: pass copies of anything shared. `roots`:
    the folders its images and masks may come from (default: its own)."""
    doc.setdefault("name", _stem_name(file))
    return resolve_document(doc, Context(source, file, overrides, roots=roots or Roots.of(file)))


def _stem_name(file: str) -> str:
    stem = FsPath(file).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-.") or "recipe"


def resolve_document(doc: dict, ctx: Context) -> Recipe:
    for step in RESOLVE_PASSES:
        doc = step(doc, ctx)
    return build(doc, ctx)


# -- pass: --set overrides ---------------------------------------------------

def apply_overrides(doc: dict, ctx: Context) -> dict:
    for item in ctx.overrides:
        name, eq, raw = item.partition("=")
        where = Location("--set", 0, 0, name.strip())
        if not eq or not name.strip():
            raise RecipeError(f"`{item}` is not KEY=VALUE", Location("--set"))
        path = _override_path(name.strip(), where)
        value = _override_value(raw, where)
        _set_path(doc, path, value, where)
        ctx.source.drop(path)
        ctx.source.set(path, "--set", 0, 0)
    return doc


def _override_path(name: str, where: Location) -> Path:
    try:
        path = parse_key_path(name)
    except ValueError:
        path = ()
    if not path or any(p == "" for p in path):
        raise RecipeError(f"`{name}` is not a dotted key such as sampler.seed", where)
    if path[0] == "extends":   # merged before --set is applied: setting it would be silently ignored
        raise RecipeError("`extends` cannot be set with --set; use --preset NAME", where)
    return path


def _override_value(raw: str, where: Location) -> Any:
    if not raw.strip():
        return ""
    try:
        return load_text(raw, "--set")[0]
    except RecipeError as exc:   # the loader's bounds hold here too: digits, depth, tags
        words = f"the value `{raw}` is not valid YAML" if exc.message.startswith("invalid YAML") else exc.message
        raise RecipeError(words, where) from None


def _set_path(doc: dict, path: Path, value: Any, where: Location) -> None:
    node = doc
    for depth, part in enumerate(path[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        nxt = _expand_at(path[:depth + 1], nxt) if nxt is not None else {}
        if not isinstance(nxt, dict):
            raise RecipeError(f"cannot set a key inside `{key_path(path[:depth + 1])}`, which is not a mapping", where)
        node[part] = nxt
        node = nxt
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


# -- pass: schema ------------------------------------------------------------

def check_schema(doc: dict, ctx: Context) -> dict:
    validate(doc, ctx.source)
    return doc


# -- pass: shorthand -> full form (copier style: one shape for later passes) --

def _strength(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"model": value, "clip": value}
    return value


SHORTHAND: Mapping[Tuple[str, ...], Callable[[Any], Any]] = MappingProxyType({
    ("characters", "*", "strength"): _strength,
    ("characters", "*", "region"): regions.expand_region,
})


def _expand_at(path: Path, value: Any) -> Any:
    for pattern, fn in SHORTHAND.items():
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path)):
            return fn(value)
    return value


def expand_shorthand(doc: dict, ctx: Context) -> dict:
    chars = doc.get("characters") or {}
    for cid, char in chars.items():
        for key in ("strength", "region"):
            if key in char:
                char[key] = _expand_at(("characters", cid, key), char[key])
    return doc


# -- pass: defaults from the model family -------------------------------------

def _under(defaults: Any, value: Any) -> Any:
    """`value` with `defaults` filled in where it says nothing. What comes from
    `defaults` is a copy: the document must never share a dict with a table."""
    if isinstance(defaults, Mapping) and isinstance(value, Mapping):
        return {k: _under(defaults[k], value[k]) if k in defaults and k in value
                else (value[k] if k in value else thaw(defaults[k]))
                for k in list(defaults) + [k for k in value if k not in defaults]}
    return value


def fill_defaults(doc: dict, ctx: Context) -> dict:
    family = FAMILIES[doc["model"]["family"]]
    model = doc["model"]
    model.setdefault("variant", family.default_variant)
    variant = family.variants.get(model["variant"])
    defaults = _under(family.defaults, thaw(variant.defaults) if variant else {})
    if "image" in doc:   # img2img at denoise 1 would ignore the image entirely
        defaults = _under(defaults, {"sampler": {"denoise": 0.6}})
    doc = _under(defaults, doc)
    if family.loader == "split" and "checkpoint" not in model:
        model.setdefault("weight_dtype", "default")
        model.setdefault("text_encoder_device", "default")
    doc["output"] = _under({"prefix": f"recipe/{doc['name']}", "batch_size": 1}, doc.get("output", {}))
    if doc.get("hires") is not None:
        doc["hires"] = _under({"scale": 1.5, "denoise": 0.5, "steps": doc["sampler"]["steps"],
                               "upscale_method": "nearest-exact"}, doc["hires"])
    if doc.get("lora_mode") == "refine" or "refine" in doc:
        doc["refine"] = _under({"base": "none", "denoise": 0.5, "steps": doc["sampler"]["steps"]},
                               doc.get("refine") or {})
    chars = doc.setdefault("characters", {})
    for i, (cid, char) in enumerate(chars.items()):
        char.setdefault("name", cid)
        char.setdefault("trigger", "")
        char["strength"] = _under({"model": 1.0, "clip": 1.0}, char.get("strength", {}))
        char.setdefault("region", regions.auto_region(i, len(chars)))
    return doc


# -- pass: templates -----------------------------------------------------------

def _trigger_first(prompt: str, trigger: str) -> str:
    if trigger and not re.search(r"(?<!\w)" + re.escape(trigger) + r"(?!\w)", prompt, re.IGNORECASE):
        return f"{trigger}, {prompt}" if prompt else trigger
    return prompt


def render(text: str, context: Mapping[str, Any], where: Location) -> str:
    """templates.render, and jinja2 with it, only for text that can hold more
    than `{{ a.b }}` substitutions (substitute.py renders those, and text
    without a template, exactly as Jinja2 would: newlines normalised, stripped)."""
    done = substitute(text, context)
    if done is not None:
        return done
    from compiler.resolve.templates import render as jinja_render
    return jinja_render(text, context, where)


def render_templates(doc: dict, ctx: Context) -> dict:
    base = {"vars": doc.get("vars", {}), "canvas": dict(doc["canvas"]),
            "characters": {cid: {"name": c["name"], "trigger": c["trigger"]}
                           for cid, c in doc["characters"].items()}}
    written_scene = doc["scene"]
    for key in ("scene", "negative"):
        doc[key] = render(doc[key], base, ctx.loc(key))
    problems = []
    if not doc["characters"] and not doc["scene"]:
        problems.append(RecipeError("nothing to draw: no characters and no scene", ctx.loc("characters")))
    elif written_scene and not doc["scene"]:   # "" is the default; something written must say something
        problems.append(RecipeError("the scene renders to nothing (blank)", ctx.loc("scene")))
    for cid, char in doc["characters"].items():
        local = {**base, "id": cid, "name": char["name"], "trigger": char["trigger"]}
        text = render(char["prompt"], local, ctx.loc("characters", cid, "prompt"))
        char["prompt"] = _trigger_first(text, char["trigger"])
        if not char["prompt"].strip():   # the schema refuses "", but spaces or a template can render to it
            problems.append(RecipeError("the prompt renders to nothing (blank)", ctx.loc("characters", cid, "prompt")))
    if problems:
        raise SchemaError(problems)
    return doc


# -- pass: regions -> pixel boxes ----------------------------------------------

def place_regions(doc: dict, ctx: Context) -> dict:
    width, height = doc["canvas"]["width"], doc["canvas"]["height"]
    feather = doc["canvas"].get("feather", regions.default_feather(width, height))
    problems = []
    for cid, char in doc["characters"].items():
        region = char["region"]
        region.setdefault("feather", feather)
        box = regions.region_box(region, width, height)
        axis = next((a for a in ("columns", "rows") if a in region), None)
        if axis and region["index"] >= len(region[axis]):
            n = len(region[axis])
            problems.append(RecipeError(f"index {region['index']} is out of range for {n} {axis} "
                                        f"(use 0 to {n - 1})", ctx.loc("characters", cid, "region")))
        elif box is None:
            problems.append(RecipeError(f"region does not fit the {width}x{height} canvas",
                                        ctx.loc("characters", cid, "region")))
        ctx.boxes[cid] = box
    if problems:
        raise SchemaError(problems)
    return doc


RESOLVE_PASSES = (apply_overrides, strip_variants, check_schema, expand_shorthand, fill_defaults, check_size,
                  render_templates, place_regions, attach_inputs, check_family, check_refine)


# -- build the frozen Recipe ---------------------------------------------------

def build(doc: dict, ctx: Context) -> Recipe:
    m = doc["model"]
    unet = m.get("unet")
    model = Model(family=m["family"], variant=m["variant"], unet=unet,
                  unet_format="gguf" if unet and unet.lower().endswith(".gguf") else "safetensors",
                  weight_dtype=m.get("weight_dtype", "default"),
                  text_encoders=tuple(m.get("text_encoders", ())),
                  text_encoder_device=m.get("text_encoder_device", "default"),
                  vae=m.get("vae"), checkpoint=m.get("checkpoint"))
    chars = tuple(_character(cid, c, ctx) for cid, c in doc["characters"].items())
    s, h, o = doc["sampler"], doc.get("hires"), doc["output"]
    return Recipe(
        name=doc["name"], source=ctx.file, model=model,
        canvas=Canvas(doc["canvas"]["width"], doc["canvas"]["height"]),
        lora_mode=doc["lora_mode"], characters=chars, scene=doc["scene"], negative=doc["negative"],
        sampler=Sampler(s["name"], s["scheduler"], int(s["steps"]), float(s["cfg"]),
                        float(s["denoise"]), int(s["seed"])),
        guidance=None if doc.get("guidance") is None else float(doc["guidance"]),
        hires=Hires(float(h["scale"]), float(h["denoise"]), int(h["steps"]), h["upscale_method"]) if h else None,
        output=Output(o["prefix"], int(o["batch_size"])),
        refine=_refine(doc.get("refine")) if doc["lora_mode"] == "refine" else None,
        cond_area=_COND_AREA[(doc.get("regions") or {}).get("area", "default")],
        image=ctx.files.get("image.file"), image_resize=(doc.get("image") or {}).get("resize", "crop"),
        document=doc, locations={key_path(p): ctx.source.locate(p) for p in ctx.source.paths()},
    )


_COND_AREA = {"default": "default", "mask-bounds": "mask bounds"}   # recipe word -> ConditioningSetMask's


def _refine(r: dict) -> Refine:
    return Refine(base=r["base"], margin=None if r.get("margin") is None else int(r["margin"]),
                  denoise=float(r["denoise"]), steps=int(r["steps"]))


def _loras(c: dict) -> tuple:
    """`lora: file` and `lora: [{file, strength}]` as one shape: a stack."""
    raw = c.get("lora")
    items = [] if raw is None else ([{"file": raw}] if isinstance(raw, str) else raw)
    out = []
    for item in items:
        st = _strength(item.get("strength", c["strength"]))
        st = {**c["strength"], **st} if isinstance(st, dict) else c["strength"]
        out.append(Lora(item["file"], float(st["model"]), float(st["clip"])))
    return tuple(out)


def _character(cid: str, c: dict, ctx: Context) -> Character:
    region = c["region"]
    kind = next(k for k in ("columns", "rows", "box", "full", "mask") if k in region)
    return Character(
        id=cid, name=c["name"], loras=_loras(c),
        trigger=c["trigger"], prompt=c["prompt"],
        region=Region(kind=kind, box=ctx.boxes[cid], feather=int(region["feather"]),
                      spec=tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in region.items())),
                      mask=ctx.files.get(f"characters.{cid}.region.mask"), channel=region.get("channel", "red")),
    )
