"""`recipe import` (issue 13): editor workflows read as the front end reads them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.check.catalogue import Catalogue
from compiler.comfy.workflow import from_ui

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "import"
CATALOGUE = ROOT.parent / "shared" / "comfyui" / "object_info.json"


@pytest.fixture(scope="module")
def catalogue():
    if not CATALOGUE.exists():
        pytest.skip("../shared/comfyui/object_info.json is not beside the checkout")
    return Catalogue.from_file(str(CATALOGUE))


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_from_ui_does_what_the_front_end_does(catalogue):
    api = from_ui(fixture("ui-reroute-primitive-bypass.json"), catalogue)
    assert sorted(api, key=int) == ["1", "4", "5", "6", "7", "9", "10"]    # no notes, reroute, primitive, muted, bypassed
    ks = api["7"]["inputs"]
    assert ks["seed"] == 777 and ks["steps"] == 20 and ks["sampler_name"] == "euler_ancestral"   # "randomize" skipped
    assert ks["model"] == ["1", 0]                          # through the bypassed LoraLoader
    assert api["4"]["inputs"]["clip"] == ["1", 1]           # through the Reroute and the bypassed LoraLoader
    assert api["4"]["_meta"]["title"] == "Positive"
