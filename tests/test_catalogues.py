"""The catalogue provider that a run, a watch session or a sweep lane owns: one
GET /object_info, kept; asked again once when a graph needs a model file or node
class the held catalogue lacks. Real sockets, against tests/comfy_server.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from compiler.check.catalogue import absent_from
from compiler.comfy.client import ComfyClient
from compiler.lower import lower
from compiler.resolve.passes import resolve_file
from compiler.run.catalogues import CatalogueProvider

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "11-success-sd15-checkpoint-two-characters-cfg6"


def fetches(srv) -> int:
    return sum(1 for r in srv.requests if r.path == "/object_info")


def sd15(tmp_path, lora: str = "tiny-sd15-char-a.safetensors"):
    path = tmp_path / "duo.yaml"
    shutil.copy(ROOT / "recipes/sd15-duo.yaml", tmp_path)   # a recipe extends only files beside it
    path.write_text("extends: sd15-duo.yaml\n"
                    f"characters:\n  a: {{lora: {lora}}}\n", encoding="utf-8")
    return lower(resolve_file(str(path)))


def test_one_fetch_for_graphs_that_fit(comfy_server, tmp_path):
    srv = comfy_server(SCENARIO)
    provider = CatalogueProvider(ComfyClient(srv.url), tmp_path / "cache")
    graph = sd15(tmp_path)
    first = provider.for_graphs([graph])
    assert provider.for_graphs([graph]) is first and provider.get() is first
    assert fetches(srv) == 1 and provider.fetches == 1 and absent_from(graph, first) == []
    (kept,) = (tmp_path / "cache").glob("*/*.json")
    assert kept.name == f"{first.hash}.json" and json.loads(kept.read_text()) == first.info


def test_a_missing_file_asks_the_server_again_once(comfy_server, tmp_path):
    srv = comfy_server(SCENARIO)
    provider = CatalogueProvider(ComfyClient(srv.url))
    missing = sd15(tmp_path, "new.safetensors")
    held = provider.for_graphs([missing])          # just fetched: not fetched again at once
    assert fetches(srv) == 1 and ("char.a.lora", "new.safetensors") in absent_from(missing, held)
    again = provider.for_graphs([missing, missing])   # later: once, however many graphs miss it
    assert fetches(srv) == 2 and again is not held and provider.get() is again
    provider.for_graphs([sd15(tmp_path)])
    assert fetches(srv) == 2
