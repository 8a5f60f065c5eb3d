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
from compiler.run.catalogues import CatalogueProvider, ClassCatalogues

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


# -- ClassCatalogues: per server, per class, on disk, for a one-off `recipe run` ---------------

def class_fetches(srv) -> list:
    return [r.path.rsplit("/", 1)[1] for r in srv.requests if r.path.startswith("/object_info/")]


def test_only_the_classes_the_graph_uses_are_fetched_and_kept(comfy_server, tmp_path):
    srv, graph = comfy_server(SCENARIO), sd15(tmp_path)
    used = sorted({node.class_type for node in graph})
    first = ClassCatalogues(ComfyClient(srv.url), tmp_path / "cache").for_graphs([graph])
    assert sorted(class_fetches(srv)) == used and fetches(srv) == 0
    assert sorted(first.info) == used and absent_from(graph, first) == []
    assert first.info == {c: srv.object_info[c] for c in used} and "node classes the graph uses" in first.scope
    warm = ClassCatalogues(ComfyClient(srv.url), tmp_path / "cache")   # the next process, on disk
    again = warm.for_graphs([graph])
    assert warm.fetches == 0 and len(class_fetches(srv)) == len(used) and again.hash == first.hash


def test_kept_entries_expire(comfy_server, tmp_path):
    srv, graph = comfy_server(SCENARIO), sd15(tmp_path)
    ClassCatalogues(ComfyClient(srv.url), tmp_path / "cache").for_graphs([graph])
    stale = ClassCatalogues(ComfyClient(srv.url), tmp_path / "cache", max_age=0.0)
    stale.for_graphs([graph])
    assert stale.fetches == len({node.class_type for node in graph})


def test_a_file_added_on_the_server_is_seen_at_once(comfy_server, tmp_path):
    srv = comfy_server(SCENARIO)
    ClassCatalogues(ComfyClient(srv.url), tmp_path / "cache").for_graphs([sd15(tmp_path)])
    srv.add_model("loras", "new.safetensors")
    before = len(class_fetches(srv))
    provider = ClassCatalogues(ComfyClient(srv.url), tmp_path / "cache")
    missing = sd15(tmp_path, "new.safetensors")
    catalogue = provider.for_graphs([missing])   # kept entries lack it: that class is asked for once more
    assert absent_from(missing, catalogue) == []
    assert class_fetches(srv)[before:] == ["CreateHookLora"]


def test_an_unknown_class_is_asked_for_once_more_then_reported(comfy_server, tmp_path):
    srv, graph = comfy_server(SCENARIO), sd15(tmp_path)
    info = dict(srv.object_info)
    del info["KSampler"]
    srv.set_object_info(info)
    provider = ClassCatalogues(ComfyClient(srv.url), tmp_path / "cache")
    catalogue = provider.for_graphs([graph])   # fetched just now: reported at once
    assert ("sampler", "KSampler") in absent_from(graph, catalogue)
    assert class_fetches(srv).count("KSampler") == 1
    provider.for_graphs([graph])               # later: asked again once, still missing
    assert class_fetches(srv).count("KSampler") == 2
    assert not list((tmp_path / "cache").rglob("KSampler.json"))   # an absence is never kept


def test_run_json_records_the_hash_of_the_entries_checked_against(comfy_server, tmp_path):
    from compiler.run.steps import run_recipe
    srv = comfy_server(SCENARIO)
    path = tmp_path / "duo.yaml"
    shutil.copy(ROOT / "recipes/sd15-duo.yaml", tmp_path)   # a recipe extends only files beside it
    path.write_text("extends: sd15-duo.yaml\n", encoding="utf-8")
    recipe = resolve_file(str(path))
    graph = lower(recipe)
    client = ComfyClient(srv.url)
    provider = ClassCatalogues(client, tmp_path / "cache")
    record = run_recipe(recipe, graph, client, tmp_path / "out", catalogues=provider)
    rec = json.loads((record.folder / "run.json").read_text())
    assert rec["status"] == "success" and fetches(srv) == 0
    assert rec["object_info_hash"] == provider.current.hash
    assert rec["object_info_scope"] == provider.current.scope and "not the full catalogue" in rec["object_info_scope"]
