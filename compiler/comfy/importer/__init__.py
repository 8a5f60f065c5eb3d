"""`recipe import`: a ComfyUI graph (API format, editor workflow, or a PNG
ComfyUI saved) -> a recipe document, and a line for every node it cannot map.

    imported = import_file("workflow.json", catalogue=None)
    imported.document      # the recipe as plain data (prompts literal)
    imported.problems      # node by node, what did not map
    imported.notes         # what the compiler will do differently, and why it is the same picture

The walk starts at the SaveImage and reads the lowering's shapes backwards
(read.py -> graph.py -> shape.py -> conds/models/masks -> characters, passes
-> document.py). Imports only errors, ir/ and comfy/.

A graph the compiler made compiles back to the same graph, up to node ids.
A hand-wired one compiles to the same picture: the same files, LoRAs,
strengths, prompts, sampler and size, and masks within 1/255, but the
compiler writes some things its own way. These rewrites are the compiler's,
always made, and each is named in a note when the source differs:

- A negative prompt at cfg 1 is never evaluated: it becomes ConditioningZeroOut
  of an encode that exists anyway, and its text is dropped.
- When the regions cover the canvas, the scene text is folded into each
  character's prompt (`prompt, scene`) instead of a cond of its own: one
  forward pass less per step.
- Each region's LoRAs are one HookGroup shared by its positive and negative
  (SetClipHooks apply_to_conds=False, hooks on the Pair node), where the
  source may hook the clip (apply_to_conds=True) or the positive only.
- Regions are PairConditioningSetProperties[AndCombine] nodes, which set the
  mask on the negative too; ConditioningSetMask + ConditioningCombine become that.
- The second half of a two-way split is InvertMask of the first half's mask.
- Flux dev gets ModelSamplingFlux for the canvas size (ComfyUI's built-in
  shift is the one for 1024x1024), and the hires pass and each refine repaint
  get their own, for their size; Flux's latent is EmptySD3LatentImage;
  CLIPTextEncodeFlux with one text becomes CLIPTextEncode + FluxGuidance.
- LoRAs at strength 0 emit nothing; LoraLoaderModelOnly becomes LoraLoader at
  strength.clip 0; a hook LoRA without SetClipHooks has strength.clip 0.
- A painted mask is scaled to the canvas (MaskToImage, ImageScale, ImageToMask);
  LoadImage's mask output is LoadImageMask's alpha channel.
- Global LoRAs are merged character by character, in the characters' order.
- A single prompt with LoRAs and no regions becomes one character over the
  whole canvas; a PreviewImage becomes SaveImage; KSamplerAdvanced over its
  whole schedule becomes KSampler at denoise 1; a picture to encode is scaled
  to the canvas with lanczos.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from compiler.comfy.importer.document import build_document
from compiler.comfy.importer.graph import ImportProblems, Problem, SourceGraph, Walk
from compiler.comfy.importer.read import png_text_chunks, read_source
from compiler.comfy.importer.shape import read_shape

__all__ = ["Imported", "import_file", "import_graph", "ImportProblems", "Problem", "png_text_chunks",
           "recipe_name"]


@dataclass
class Imported:
    source: str
    kind: str                   # what SOURCE was: "API graph", "editor workflow", "PNG (its prompt chunk)"
    document: dict
    problems: List[Problem]     # not mapped: --partial writes the rest
    fatal: List[Problem]        # cannot be a recipe at all (a LoRA injected twice)
    notes: List[str]
    nodes: int

    def lines(self, problems: Optional[List[Problem]] = None) -> List[str]:
        return [p.line(self.source) for p in (self.problems if problems is None else problems)]


def import_file(path: str, catalogue: Any = None, name: Optional[str] = None) -> Imported:
    api, kind = read_source(path, catalogue)
    return import_graph(api, path, kind, catalogue, name)


def import_graph(api: Any, source: str, kind: str = "API graph", catalogue: Any = None,
                 name: Optional[str] = None) -> Imported:
    graph = SourceGraph(api, source)
    # ComfyUI refuses a whole prompt that names a node type it lacks, so every node is checked
    walk = Walk(graph, problems=_not_in_catalogue(graph, catalogue) if catalogue is not None else [])
    shape = read_shape(walk)
    doc = build_document(walk, shape, name or recipe_name(source))
    problems = walk.problems + walk.leftovers(shape.output.id)
    return Imported(source, kind, doc, sorted(problems, key=_order), sorted(walk.fatal, key=_order),
                    list(walk.notes), len(graph.nodes))


def _not_in_catalogue(graph: SourceGraph, catalogue: Any) -> List[Problem]:
    return [Problem(n, graph.nodes[n].class_type, f"not in the node catalogue of "
                    f"{getattr(catalogue, 'origin', 'the server')}", "unknown node class") for n in graph.order
            if catalogue.node(graph.nodes[n].class_type) is None]


def _order(p: Problem):
    return (int(p.node) if p.node.isdigit() else float("inf"), p.node, p.message)


def recipe_name(source: str) -> str:
    """A recipe name (letters, digits, . - _) from a file name."""
    stem = Path(source).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-.") or "recipe"
