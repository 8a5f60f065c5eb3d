"""Characters from the conds of pass 1: which cond is a region and which the
scene, each region's LoRA stack, mask, prompt, trigger and id."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from compiler.comfy.importer.conds import Entry
from compiler.comfy.importer.graph import Walk
from compiler.comfy.importer.masks import NotBoxes, Painted, evaluate, region_of
from compiler.comfy.importer.models import LoraUse, hook_loras, stem
from compiler.ir import regions
from compiler.ir.recipe import Box

__all__ = ["Draft", "split_entries", "hook_stack", "assign_global", "place", "region_values", "shorthand", "box_of",
           "name_all", "server_name", "common_scene"]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_UPLOADED = re.compile(r"^[0-9a-f]{12}-(.+)$")     # the compiler's content-derived upload name


@dataclass
class Draft:
    entry: Entry
    loras: List[Tuple[LoraUse, float, float]] = field(default_factory=list)   # (use, model, clip)
    spec: Optional[dict] = None         # full-form region without the feather; None: not mapped
    feather: int = 0
    twin: Optional[dict] = None         # the split half this region inverts
    id: str = ""
    prompt: str = ""
    trigger: str = ""
    bare: Optional[str] = None          # the prompt its refine repaint encodes (no scene folded in)

    @property
    def boxed(self) -> bool:
        return bool(self.spec) and not ({"full", "mask"} & set(self.spec))


def split_entries(positive: List[Entry]) -> Tuple[List[Entry], List[Entry]]:
    """(regions, scene prompts): a cond with a mask or hooks, or one that came
    in as a Set Props node's new cond, is a character's."""
    chars = [e for e in positive if e.new or e.mask is not None or e.hooks]
    return chars, [e for e in positive if e not in chars]


def hook_stack(walk: Walk, e: Entry) -> List[Tuple[LoraUse, float, float]]:
    """A hooked region's LoRAs: the hook group on its cond (model part) and on
    its clip (text-encoder part) must be the same one stack."""
    groups = list(dict.fromkeys(e.hooks))
    sh = e.clip.set_hooks
    te = sh.get("hooks") if sh is not None else None
    where = e.props or e.encode
    if len(groups) > 1:
        walk.problem(where, "two hook groups on one region: a recipe gives each character one LoRA stack")
    model = groups[0] if groups else None
    if te is not None and model is not None and te != model:
        walk.problem(sh, "its hooks are not the ones on the region's cond: a recipe gives a character one LoRA "
                         "stack for the text encoder and the model")
    group = model if model is not None else te
    if group is None:
        return []
    if sh is not None and walk.value(sh, "apply_to_conds", True):
        walk.note("each region's LoRAs become one hook group shared by its positive and negative (SetClipHooks "
                  "apply_to_conds false, the hooks on the Pair node), not hooks on the clip")
    out = [(u, u.model if model is not None else 0.0, u.clip if te is not None else 0.0)
           for u in hook_loras(walk, group)]
    if model is None:
        walk.note(f"{e.encode.label}: its hooks reach only the text encoder (apply_to_conds false, none on the "
                  "cond): strength.model 0")
    if te is None and any(u.clip for u, _, _ in out):
        walk.note(f"{e.encode.label}: no SetClipHooks, so the LoRA's text-encoder part is not applied: strength.clip 0")
    return out


def assign_global(drafts: List[Draft], chain: Tuple[LoraUse, ...]) -> None:
    """Give each LoRA of a global LoraLoader chain to a character: the one the
    compiler's hint names, else the one whose trigger matches its file, else
    the next character in order (the compiler chains them character by character)."""
    owner: Optional[int] = None
    for use in chain:
        hinted = _hinted_char(use.node.hint)
        pick = next((i for i, d in enumerate(drafts) if hinted and _hinted_char(d.entry.encode.hint) == hinted), None)
        if pick is None:
            pick = next((i for i, d in enumerate(drafts) if _matches(_first_token(d.entry.text), use.file)), None)
        if pick is None:
            free = [i for i, d in enumerate(drafts) if not d.loras and (owner is None or i > owner)]
            pick = free[0] if free else (owner if owner is not None else len(drafts) - 1)
        drafts[pick].loras.append((use, use.model, use.clip))
        owner = pick


def place(walk: Walk, d: Draft, width: int, height: int) -> None:
    """The draft's region, from its mask."""
    ref = d.entry.mask
    if ref is None:
        d.spec = {"full": True}
        return
    try:
        mask = evaluate(walk, ref)
        if isinstance(mask, Painted):
            d.spec = {"mask": server_name(walk, mask.name), "channel": mask.channel}
            if not mask.scaled:
                walk.note(f"the painted mask {mask.name} is scaled to the canvas (MaskToImage, ImageScale, ImageToMask)")
            return
        guess = region_of(mask, width, height, regions.default_feather(width, height))
    except NotBoxes as exc:
        walk.problem(exc.node or walk.node(ref), exc.reason)
        return
    d.spec, d.feather, d.twin = guess.spec, guess.feather, guess.complement_of


def region_values(drafts: List[Draft], width: int, height: int) -> Optional[int]:
    """Each draft's region as the recipe writes it; returns canvas.feather when
    every boxed region shares one that is not the default."""
    default = regions.default_feather(width, height)
    feathers = {d.feather for d in drafts if d.boxed}
    common = feathers.pop() if len(feathers) == 1 else default
    for d in drafts:
        if d.spec is None:
            continue
        value = dict(d.spec)
        if d.boxed and d.feather != common:
            value["feather"] = d.feather
        d.spec = value
    return common if common != default else None


def shorthand(spec: dict):
    names = {("columns", 0): "left", ("columns", 1): "right", ("rows", 0): "top", ("rows", 1): "bottom"}
    if spec == {"full": True}:
        return "full"
    for axis in ("columns", "rows"):
        if set(spec) == {axis, "index"} and spec[axis] == [1, 1]:
            return names[(axis, spec["index"])]
        if axis in spec and len(set(spec[axis])) == 1 and spec[axis][0] == 1:
            return {**spec, axis: len(spec[axis])}
    return spec


def box_of(d: Draft, width: int, height: int) -> Optional[Box]:
    if d.spec is None or "mask" in d.spec:
        return None
    return regions.region_box(regions.expand_region(d.spec), width, height)


def common_scene(texts: List[str]) -> str:
    """The longest `, `-separated tail every prompt shares, leaving each its own head."""
    parts = [t.split(", ") for t in texts]
    n = 0
    while all(len(p) > n + 1 for p in parts) and len({tuple(p[len(p) - n - 1:]) for p in parts}) == 1:
        n += 1
    return ", ".join(parts[0][len(parts[0]) - n:]) if n else ""


def _first_token(text: str) -> str:
    return text.split(",", 1)[0].strip()


def _matches(token: str, file: str) -> bool:
    s, t = stem(file).lower(), token.lower()
    return bool(t) and (s == t or (len(t) >= 3 and s.startswith(t) and s[len(t)] in "-_. "))


def _hinted_char(hint: str) -> str:
    parts = hint.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "characters" else ""


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:32]
    return s if _ID.match(s or "") else ""


def name_all(drafts: List[Draft]) -> None:
    """Trigger (the prompt's first token when it names one of its LoRAs) and a
    readable id: the compiler's own (from its hints), else the trigger or the
    LoRA's name, else char1, char2, ..."""
    taken: Dict[str, int] = {}
    for i, d in enumerate(drafts):
        token = _first_token(d.prompt)
        d.trigger = token if any(_matches(token, u.file) for u, _, _ in d.loras) else ""
        base = _hinted_char(d.entry.encode.hint) if _ID.match(_hinted_char(d.entry.encode.hint) or "") else ""
        base = base or _slug(d.trigger) or (_slug(stem(d.loras[0][0].file)) if d.loras else "") or f"char{i + 1}"
        n = taken.get(base, 0)
        taken[base] = n + 1
        d.id = base if n == 0 else f"{base[:29]}-{n + 1}"


def server_name(walk: Walk, name: str) -> str:
    """The local file a server-side input name stands for: the compiler
    uploads `photo.png` as `<sha256[:12]>-photo.png`."""
    m = _UPLOADED.match(name.replace("\\", "/").rsplit("/", 1)[-1])
    local = m.group(1) if m else name
    walk.note(f"put {local} beside the recipe: it is uploaded from there" +
              (f" (the server has it as {name})" if local != name else ""))
    return local
