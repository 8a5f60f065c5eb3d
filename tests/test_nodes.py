"""ir/nodes.py: the one table of facts about node classes."""
from __future__ import annotations

import json
from pathlib import Path

from compiler.ir.nodes import GLOBAL_LORAS, HOOKED_LORAS, LORA_CLASSES, NODE_CLASSES, STAGES, is_heavy, purpose

GOLDEN = Path(__file__).resolve().parent / "golden"


def test_every_stage_is_known_and_lora_kinds_do_not_overlap():
    assert {c.stage for c in NODE_CLASSES.values()} <= set(STAGES)
    assert not GLOBAL_LORAS & HOOKED_LORAS and LORA_CLASSES == GLOBAL_LORAS | HOOKED_LORAS
    assert GLOBAL_LORAS == {"LoraLoader", "LoraLoaderModelOnly"}
    assert HOOKED_LORAS == {"CreateHookLora", "CreateHookLoraModelOnly"}


def test_the_golden_graphs_loaders_and_loras_are_heavy_and_nothing_else():
    classes = {n["class_type"] for p in GOLDEN.glob("*.api.json") for n in json.loads(p.read_text()).values()}
    assert classes, "no golden graphs to read"
    heavy = {c for c in classes if is_heavy(c)}
    assert heavy == {c for c in classes if "Loader" in c or c in LORA_CLASSES or c == "LoadImage"}
    assert purpose("KSampler") == "sample" and purpose("MaskComposite") == "prepare"
