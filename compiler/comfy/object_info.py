"""A server's node catalogue (GET /object_info), as data: node classes, their
inputs in either combo style (the old list style and V3's COMBO), outputs.

Checking a graph against it is a stage of its own (check/catalogue.py);
the editor workflow (comfy/workflow.py) reads it for input order and widgets.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from compiler.errors import Location, RecipeError
from compiler.ir.nodes import MODEL_FILE_LISTS

__all__ = ["Catalogue", "combo_options"]


class Catalogue:
    def __init__(self, info: Dict[str, Any], origin: str = "object_info", scope: str = "the full catalogue"):
        if not isinstance(info, dict):
            raise RecipeError("the node catalogue is not a JSON object", Location(origin))
        self.info = info
        self.origin = origin
        self.scope = scope   # what `info` covers: all of the server's classes, or some (run.json says which)
        self.hash = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: str) -> "Catalogue":
        try:
            return cls(json.loads(Path(path).read_text("utf-8")), path)
        except FileNotFoundError:
            raise RecipeError("node catalogue file not found", Location(path)) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecipeError(f"cannot read the node catalogue: {exc}", Location(path)) from None

    def node(self, class_type: str) -> Optional[dict]:
        return self.info.get(class_type)

    def input_spec(self, class_type: str, name: str) -> Optional[list]:
        spec = self.info.get(class_type, {}).get("input", {})
        return spec.get("required", {}).get(name) or spec.get("optional", {}).get(name)

    def outputs(self, class_type: str) -> List[str]:
        return list(self.info.get(class_type, {}).get("output", []))

    def model_files(self, kind: str) -> List[str]:
        """Every file of one kind ("LoRA", "checkpoint"...: ir/nodes.py
        MODEL_FILE_LISTS) that this catalogue lists, in its order, once each."""
        out: List[str] = []
        for class_type, name in MODEL_FILE_LISTS[kind]:
            spec = self.input_spec(class_type, name) if self.node(class_type) else None
            for option in (combo_options(spec) or []) if spec else []:
                if isinstance(option, str) and option not in out:
                    out.append(option)
        return out


def combo_options(spec: list) -> Optional[List[Any]]:
    """The allowed values of a combo input in either style, else None."""
    if spec and isinstance(spec[0], list):
        return spec[0]
    if spec and spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1].get("options", [])
    return None
