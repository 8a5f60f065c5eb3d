"""Model names as users write them: `roxygirl04.safetensors` for a file the
server lists in a subfolder, in either separator style (`characters/x` on
Linux, `characters\\x` on Windows)."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from compiler import pipeline
from compiler.check.catalogue import check_graph
from compiler.cli.main import main
from compiler.comfy.object_info import Catalogue
from compiler.errors import CatalogueError
from compiler.resolve.written import resolved_yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = json.loads((ROOT.parent / "shared" / "comfyui" / "object_info.json").read_text())
PORTRAIT = str(ROOT / "recipes" / "portrait.yaml")
LORAS = ["characters/roxygirl04.safetensors", "characters\\celestesh-01.safetensors",
         "styles/film-grain-style.safetensors", "a/twin.safetensors", "b\\twin.safetensors",
         "characters/roxygirl05.safetensors"]
UNETS = ["flux\\SRPO-fp8_e4m3fn.safetensors"]


def with_files(loras=LORAS, unets=UNETS, text_encoders=("t5xxl_fp8_e4m3fn_scaled.safetensors", "clip_l.safetensors"),
               vaes=("ae.safetensors",)) -> Catalogue:
    info = copy.deepcopy(SHARED)
    for cls, name, options in (("LoraLoader", "lora_name", loras), ("CreateHookLora", "lora_name", loras),
                               ("UNETLoader", "unet_name", unets), ("DualCLIPLoader", "clip_name1", text_encoders),
                               ("DualCLIPLoader", "clip_name2", text_encoders), ("VAELoader", "vae_name", vaes)):
        spec = info[cls]["input"]["required"][name]
        if spec and isinstance(spec[0], list):
            spec[0] = list(options)
        else:
            spec[1]["options"] = list(options)
    return Catalogue(info, "test")


def test_a_unique_base_name_in_a_subfolder_resolves_in_both_separator_styles():
    done = pipeline.compile(PORTRAIT, catalogue=with_files())
    roxy, celeste = done.recipe.characters
    assert roxy.lora == "characters/roxygirl04.safetensors"
    assert celeste.lora == "characters\\celestesh-01.safetensors"
    assert done.recipe.model.unet == "flux\\SRPO-fp8_e4m3fn.safetensors"
    assert done.graph["char.roxy.lora"].input("lora_name") == "characters/roxygirl04.safetensors"
    assert done.graph["char.celeste.lora"].input("lora_name") == "characters\\celestesh-01.safetensors"
    assert done.graph["model.unet"].input("unet_name") == "flux\\SRPO-fp8_e4m3fn.safetensors"
    written = resolved_yaml(done.recipe)
    assert "lora: characters/roxygirl04.safetensors" in written and "unet: flux\\SRPO-fp8_e4m3fn" in written
    assert [n.format() for n in done.notices] == [
        f"note: {PORTRAIT}:14:3 model.unet: diffusion model `SRPO-fp8_e4m3fn.safetensors` is "
        "`flux\\SRPO-fp8_e4m3fn.safetensors` on the server",
        f"note: {PORTRAIT}:22:5 characters.roxy.lora: LoRA `roxygirl04.safetensors` is "
        "`characters/roxygirl04.safetensors` on the server",
        f"note: {PORTRAIT}:28:5 characters.celeste.lora: LoRA `celestesh-01.safetensors` is "
        "`characters\\celestesh-01.safetensors` on the server"]
    check_graph(done.graph, with_files(), done.recipe.locate)     # the graph fits that server
    again = pipeline.compile(PORTRAIT)                             # without a catalogue: as written
    assert again.recipe.characters[0].lora == "roxygirl04.safetensors" and not again.notices


def test_a_lora_stack_item_resolves_too():
    done = pipeline.compile(str(ROOT / "recipes" / "flux-trio.yaml"), catalogue=with_files())
    celeste = next(c for c in done.recipe.characters if c.id == "celeste")
    assert [l.file for l in celeste.loras] == ["characters\\celestesh-01.safetensors",
                                               "styles/film-grain-style.safetensors"]
    assert done.recipe.document["characters"]["celeste"]["lora"][1]["file"] == "styles/film-grain-style.safetensors"


def test_two_matches_are_an_error_listing_both():
    with pytest.raises(CatalogueError) as info:
        pipeline.compile(PORTRAIT, ["characters.roxy.lora=twin.safetensors"], catalogue=with_files())
    assert info.value.lines() == [
        "--set characters.roxy.lora: LoRA `twin.safetensors` matches 2 files on the server: "
        "`a/twin.safetensors`, `b\\twin.safetensors` (write the full name of the one you mean)"]


def test_a_name_the_server_lists_as_written_is_kept():
    loras = ["roxygirl04.safetensors", "old/roxygirl04.safetensors", "celestesh-01.safetensors"]
    done = pipeline.compile(PORTRAIT, catalogue=with_files(loras=loras, unets=["SRPO-fp8_e4m3fn.safetensors"]))
    assert [c.lora for c in done.recipe.characters] == ["roxygirl04.safetensors", "celestesh-01.safetensors"]
    assert not done.notices


def test_did_you_mean_looks_into_subfolders():
    done = pipeline.compile(PORTRAIT, ["characters.roxy.lora=roxygirl4.safetensors"], catalogue=with_files())
    with pytest.raises(CatalogueError) as info:
        check_graph(done.graph, with_files(), done.recipe.locate)
    assert ("LoRA file `roxygirl4.safetensors` is not on the server (did you mean "
            "`characters/roxygirl04.safetensors`?)") in "\n".join(info.value.lines())


def test_validate_completes_names_and_says_so(tmp_path, capsys):
    path = tmp_path / "object_info.json"
    path.write_text(json.dumps(with_files().info))
    assert main(["validate", PORTRAIT, "--object-info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "nodes fit the catalogue" in out
    assert "note: " in err and "`characters/roxygirl04.safetensors` on the server" in err


def test_run_completes_names_from_the_servers_catalogue(comfy_server, tmp_path, capsys):
    """The test server lists tiny-sd15-char-a.safetensors; the recipe names it
    with a subfolder the server does not have: it still resolves, by base name."""
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.005)
    code = main(["run", str(ROOT / "recipes" / "sd15-duo.yaml"), "--set", "characters.a.lora=x/tiny-sd15-char-a.safetensors",
                 "--server", srv.url, "--out", str(tmp_path / "out"), "--plain"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "LoRA `x/tiny-sd15-char-a.safetensors` is `tiny-sd15-char-a.safetensors` on the server" in err
    (folder,) = (tmp_path / "out" / "sd15-duo").iterdir()
    graph = json.loads((folder / "graph.api.json").read_text())
    assert graph["char.a.lora"]["inputs"]["lora_name"] == "tiny-sd15-char-a.safetensors"
    assert "lora: tiny-sd15-char-a.safetensors" in (folder / "recipe.resolved.yaml").read_text()


def test_a_sweep_completes_names_once_and_checks_against_that_catalogue(comfy_server, tmp_path, capsys):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.005)
    shutil.copy(ROOT / "recipes/sd15-duo.yaml", tmp_path)   # a recipe extends only files beside it
    recipe = tmp_path / "duo.yaml"
    recipe.write_text("extends: sd15-duo.yaml\nname: duo\n"
                      "characters: {a: {lora: x/tiny-sd15-char-a.safetensors}}\nsweep: {sampler.seed: [1, 2]}\n")
    code = main(["run", str(recipe), "--sweep", "--server", srv.url, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("is `tiny-sd15-char-a.safetensors` on the server") == 1        # one notice, not one a job
    graphs = [json.loads(p.read_text()) for p in (tmp_path / "out" / "duo").glob("sweep-*/*/graph.api.json")]
    assert len(graphs) == 2 and {g["char.a.lora"]["inputs"]["lora_name"] for g in graphs} == {
        "tiny-sd15-char-a.safetensors"}
    assert sum(1 for r in srv.requests if r.path == "/object_info") == 1
    (sweep,) = (tmp_path / "out" / "duo").glob("sweep-*/sweep.json")
    assert [[c["path"] for c in j["differences"]] for j in json.loads(sweep.read_text())["jobs"]] == [
        ["sampler.seed"], ["sampler.seed"]]      # the completed name is no difference between jobs


WATCHED = """\
version: 1
model:
  family: flux
  unet: tiny-flux-dev-fp8_e4m3fn.safetensors
  text_encoders: [tiny-t5xxl_fp8_e4m3fn.safetensors, tiny-clip_l.safetensors]
  vae: tiny-flux-ae.safetensors
canvas: {width: 128, height: 128}
characters:
  roxy: {lora: loras/tiny-char-a.safetensors, trigger: roxygirl04, prompt: "{{ trigger }}, woman", region: left}
  celeste: {lora: tiny-char-b.safetensors, trigger: celestesh-01, prompt: "{{ trigger }}, woman", region: right}
sampler: {steps: 4}
"""


def test_watch_completes_names_from_its_servers_catalogue(comfy_server, tmp_path):
    import signal
    import subprocess
    import sys
    srv = comfy_server("03-change-one-prompt-partial-rerun")
    recipe = tmp_path / "duo.yaml"
    recipe.write_text(WATCHED)
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "watch", str(recipe), "--server", srv.url,
                             "--out", str(tmp_path / "out"), "--no-page", "--set", "sampler.seed=11"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert first.startswith("v1 first version"), (first, err)
    assert "LoRA `loras/tiny-char-a.safetensors` is `tiny-char-a.safetensors` on the server" in err
