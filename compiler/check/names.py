"""Model names as users write them: `roxygirl04.safetensors` for the file a
server lists as `characters/roxygirl04.safetensors` (on a Windows server,
`characters\\roxygirl04.safetensors`).

A step between resolve and lowering, given the server's catalogue (so that
resolve/ never needs comfy/): every model file the recipe names that the
server does not list as written, but whose base name matches exactly one
file the server lists, becomes that full name, in the Recipe and in the
document written back as recipe.resolved.yaml, so the graph carries it too.
Each such match is a notice. Two or more matches are an error listing them.
A name with no match is left alone: the catalogue check reports it, with a
did-you-mean that looks into subfolders.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Dict, Iterator, List, Tuple

from compiler.check.advise import Finding
from compiler.comfy.object_info import Catalogue
from compiler.errors import CatalogueError, RecipeError
from compiler.ir.frozen import thaw
from compiler.ir.recipe import Recipe
from compiler.source import key_path

__all__ = ["match_names", "basename"]


def basename(name: str) -> str:
    """The file name without its subfolders, in either separator style."""
    return re.split(r"[\\/]", str(name))[-1]


def match_names(recipe: Recipe, catalogue: Catalogue) -> Tuple[Recipe, Tuple[Finding, ...]]:
    """The recipe with each model name as the server lists it, and a notice per
    name changed. Raises CatalogueError for names that match several files."""
    renames: Dict[Tuple[str, ...], str] = {}
    notices: List[Finding] = []
    problems: List[RecipeError] = []
    for path, kind, name in _model_names(recipe):
        options = catalogue.model_files(kind)
        if not options or name in options:
            continue
        found = [o for o in options if basename(o) == basename(name) and o != name]
        where = recipe.locate(key_path(path))
        if len(found) == 1:
            renames[path] = found[0]
            notices.append(Finding("note", "model-subfolder", f"{kind} `{name}` is `{found[0]}` on the server",
                                   where))
        elif len(found) > 1:
            problems.append(RecipeError(f"{kind} `{name}` matches {len(found)} files on the server: "
                                        + ", ".join(f"`{f}`" for f in found), where,
                                        "write the full name of the one you mean"))
    if problems:
        raise CatalogueError(problems)
    return (_renamed(recipe, renames) if renames else recipe), tuple(notices)


def _model_names(recipe: Recipe) -> Iterator[Tuple[Tuple, str, str]]:
    """(document path, kind, name) for every model file the recipe names."""
    m = recipe.model
    for field, kind in (("unet", "diffusion model"), ("vae", "VAE"), ("checkpoint", "checkpoint")):
        if getattr(m, field):
            yield ("model", field), kind, getattr(m, field)
    for i, name in enumerate(m.text_encoders):
        yield ("model", "text_encoders", i), "text encoder", name
    for c in recipe.characters:
        for i, lora in enumerate(c.loras):
            yield _lora_path(recipe, c.id, i), "LoRA", lora.file


def _lora_path(recipe: Recipe, cid: str, i: int) -> Tuple:
    """Where the document holds a character's i-th LoRA: `lora: file`, or a stack's item."""
    written = (recipe.document.get("characters") or {}).get(cid, {}).get("lora")
    return ("characters", cid, "lora") if isinstance(written, str) else ("characters", cid, "lora", i, "file")


def _renamed(recipe: Recipe, renames: Dict[Tuple, str]) -> Recipe:
    doc = thaw(recipe.document)
    for path, full in renames.items():
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = full
    m = recipe.model
    model = dataclasses.replace(
        m, unet=renames.get(("model", "unet"), m.unet), vae=renames.get(("model", "vae"), m.vae),
        checkpoint=renames.get(("model", "checkpoint"), m.checkpoint),
        text_encoders=tuple(renames.get(("model", "text_encoders", i), t) for i, t in enumerate(m.text_encoders)))
    characters = tuple(dataclasses.replace(c, loras=tuple(
        dataclasses.replace(lora, file=renames.get(_lora_path(recipe, c.id, i), lora.file))
        for i, lora in enumerate(c.loras))) for c in recipe.characters)
    return dataclasses.replace(recipe, model=model, characters=characters, document=doc)
