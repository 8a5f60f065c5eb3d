"""A starter recipe from what a server has (`recipe init`): its checkpoint or
UNet, text encoders and VAE, and two of its LoRAs as the two characters,
with the model family guessed from the file names. The text is commented
YAML that compiles as it stands and fits that server's catalogue.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import List, Mapping, Optional, Sequence, Tuple

from compiler.comfy.object_info import Catalogue
from compiler.errors import RunError
from compiler.ir.families import FAMILIES

__all__ = ["Choice", "choose", "starter_recipe"]

# The starter's kinds of file, as ir/nodes.py MODEL_FILE_LISTS names them.
_LISTS: Mapping[str, str] = MappingProxyType({
    "unet": "diffusion model", "checkpoint": "checkpoint", "text_encoder": "text encoder", "vae": "VAE",
    "lora": "LoRA"})
# A file name that says which family it is for.
_TAGS: Mapping[str, str] = MappingProxyType({
    "sdxl": r"sdxl|(^|[^a-z])xl([^a-z]|$)|pony|illustrious|noob",
    "sd15": r"sd-?1[._-]?5|sd15|(^|[^a-z])v1-5",
    "flux": r"flux|schnell|srpo",
})
_NOT_A_FILE = frozenset({"pixel_space"})   # VAELoader's built-in option
# A .gguf UNet or text encoder cannot take hook LoRAs (the advisor refuses it): no starter uses one.


@dataclass(frozen=True)
class Choice:
    family: str
    variant: Optional[str]
    model: Mapping[str, object]        # the recipe's `model:` keys besides family
    loras: Tuple[str, ...]             # at most two, one per character
    others: Mapping[str, Tuple[str, ...]]   # what else the server has, for comments


def _files(catalogue: Catalogue, kind: str) -> List[str]:
    return [f for f in catalogue.model_files(_LISTS[kind])
            if f not in _NOT_A_FILE and not (kind in ("unet", "text_encoder") and f.lower().endswith(".gguf"))]


def _tagged(name: str, family: str) -> bool:
    return re.search(_TAGS[family], name.lower()) is not None


def _family_of_checkpoint(name: str) -> str:
    return "sdxl" if _tagged(name, "sdxl") else "sd15"


def _flux_model(unets: Sequence[str], encoders: Sequence[str], vaes: Sequence[str]) -> Optional[dict]:
    """UNet, T5 and CLIP-L encoders and a VAE, if the server has all four;
    a dev UNet before a schnell one."""
    t5 = [e for e in encoders if "t5" in e.lower()]
    clip = [e for e in encoders if "clip_l" in e.lower() or "clip-l" in e.lower()]
    unet = sorted(unets, key=lambda u: ("schnell" in u.lower(), u))
    if not (unet and t5 and clip and vaes):
        return None
    vae = next((v for v in vaes if re.search(r"(^|[^a-z])ae\.|flux", v.lower())), vaes[0])
    return {"unet": unet[0], "text_encoders": [t5[0], clip[0]], "vae": vae}


def choose(catalogue: Catalogue) -> Choice:
    """The family and files of the starter. The family with the most LoRAs
    named for it wins; Flux when it is a tie and the server can run Flux."""
    have = {kind: _files(catalogue, kind) for kind in _LISTS}
    flux = _flux_model(have["unet"], have["text_encoder"], have["vae"])
    candidates = ([("flux", flux)] if flux else []) + \
        [(_family_of_checkpoint(c), {"checkpoint": c}) for c in have["checkpoint"]]
    if not candidates:
        raise RunError(f"{catalogue.origin} lists no checkpoint and no complete Flux set (UNet, T5 and "
                       f"CLIP-L text encoders, VAE): copy a model into ComfyUI's models/ folder first")
    score = lambda fam: sum(_tagged(l, fam) for l in have["lora"])   # noqa: E731
    family, model = max(candidates, key=lambda c: (score(c[0]), c[0] == "flux"))
    fitting = [l for l in have["lora"] if _tagged(l, family)] + \
        [l for l in have["lora"] if not any(_tagged(l, f) for f in _TAGS)]
    variant = ("schnell" if "schnell" in str(model.get("unet", "")).lower() else None) if family == "flux" else None
    used = {str(v) for v in model.values() if isinstance(v, str)} | set(model.get("text_encoders", []))
    others = {k: tuple(f for f in have[k] if f not in used and f not in fitting[:2]) for k in _LISTS}
    return Choice(family, variant, model, tuple(fitting[:2]), MappingProxyType(others))


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)   # a JSON string is a YAML string


def _trigger(lora: str) -> str:
    return re.split(r"[\\/]", lora)[-1].rsplit(".", 1)[0]


def _also(label: str, names: Sequence[str], indent: str = "  ") -> List[str]:
    if not names:
        return []
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return [f"{indent}# other {label} on the server: {shown}"]


def starter_recipe(catalogue: Catalogue, name: str, schema: str) -> str:
    """The commented starter recipe. `schema`: where the recipe schema is,
    for the first line's yaml-language-server modeline."""
    c = choose(catalogue)
    family = FAMILIES[c.family]
    size = family.defaults["canvas"]["width"]
    lines = [f"# yaml-language-server: $schema={schema}",
             f"# A starter recipe from what {catalogue.origin} has. Change the prompts, then:",
             f"#   recipe check {name}.yaml                  (the advisor's checks, no server needed)",
             f"#   recipe run {name}.yaml --server HOST:PORT",
             "version: 1", f"name: {name}", "", "model:",
             f"  family: {c.family:<24}# guessed from the file names"]
    lines += [f"  variant: {c.variant}"] if c.variant else []
    for key, value in c.model.items():
        lines.append(f"  {key}: " + (f"[{', '.join(map(_q, value))}]" if isinstance(value, list) else _q(value)))
    for kind, label in (("checkpoint", "checkpoints"), ("unet", "diffusion models"), ("vae", "VAEs")):
        lines += _also(label, c.others.get(kind, ()))
    lines += ["", f"canvas: {{width: {size}, height: {size}}}   # a multiple of {family.size_multiple}", ""]
    lines += _characters(c)
    lines += ["", 'scene: "two people side by side, photographic, sharp focus"']
    if family.defaults["sampler"]["cfg"] == 1.0:
        lines.append("# No negative: at cfg 1 the sampler never evaluates it. Steer with `guidance`.")
    else:
        lines.append(f"negative: {_q(family.defaults['negative'])}")
    lines += ["", "sampler:", "  seed: 1                   # steps, cfg, sampler and scheduler: the family's defaults", ""]
    return "\n".join(lines)


def _characters(c: Choice) -> List[str]:
    lines = ["# Each character's LoRA acts only inside its region (left and right halves here).", "characters:"]
    for cid, region, i in (("a", "left", 0), ("b", "right", 1)):
        lines += [f"  {cid}:"]
        if i < len(c.loras):
            lines += [f"    lora: {_q(c.loras[i])}",
                      f"    trigger: {_q(_trigger(c.loras[i]))}   # a guess from the file name: "
                      "write the word the LoRA was trained on",
                      "    strength: {model: 0.8, clip: 0.9}"]
        else:
            lines += ["    # lora: FILE            (the server lists no LoRA for this character)"]
        prompt = "{{ trigger }}, " if i < len(c.loras) else ""
        lines += [f'    prompt: "{prompt}25yo woman, three-quarter headshot, soft daylight"', f"    region: {region}"]
    return lines + _also("LoRAs", c.others.get("lora", ()))
