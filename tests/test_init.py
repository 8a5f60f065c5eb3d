"""`recipe init`: a commented starter recipe from what a server has, that the
same server's catalogue accepts."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from compiler.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "comfyui" / "object_info.json"
PREFIX = "# yaml-language-server: $schema="


def init(tmp_path, capsys, *args) -> tuple:
    code = main(["init", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_from_the_shared_catalogue_validates_against_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = init(tmp_path, capsys, "duo", "--object-info", str(SHARED))
    assert code == 0 and err.startswith("wrote duo.yaml"), err
    text = (tmp_path / "duo.yaml").read_text()
    first = text.splitlines()[0]
    assert first.startswith(PREFIX)
    schema = Path(unquote(urlparse(first[len(PREFIX):]).path))
    assert schema.read_text() == (ROOT / "schema" / "recipe.schema.json").read_text()
    assert "family: sd15" in text and "tiny-sd15-char-a.safetensors" in text and "tiny-sd15-char-b" in text
    assert main(["validate", "duo.yaml", "--object-info", str(SHARED)]) == 0
    assert main(["check", "duo.yaml", "--strict"]) == 0
    assert "fit the catalogue" in capsys.readouterr().out


def test_a_flux_server_gets_a_flux_starter_without_a_negative(tmp_path, capsys):
    info = json.loads(SHARED.read_text())
    spec = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    if isinstance(spec[0], list):
        spec[0] = []
    else:
        spec[1]["options"] = []
    flux = tmp_path / "flux.json"
    flux.write_text(json.dumps(info))
    out = tmp_path / "f.yaml"
    assert init(tmp_path, capsys, "f", "--object-info", str(flux), "-o", str(out))[0] == 0
    text = out.read_text()
    assert "family: flux" in text and "unet: \"tiny-flux-dev-fp8_e4m3fn.safetensors\"" in text
    assert "\nnegative:" not in text and "# No negative" in text
    assert main(["validate", str(out), "--object-info", str(flux)]) == 0


def test_an_empty_server_and_an_unreachable_one_get_one_clear_line(tmp_path, capsys, closed_port):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"KSampler": copy.deepcopy(json.loads(SHARED.read_text())["KSampler"])}))
    code, _, err = init(tmp_path, capsys, "x", "--object-info", str(empty), "-o", str(tmp_path / "x.yaml"))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"error: {empty} lists no checkpoint and no complete Flux set")
    code, _, err = init(tmp_path, capsys, "x", "--server", f"127.0.0.1:{closed_port}", "-o", str(tmp_path / "x.yaml"))
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: cannot reach ComfyUI at"), err
    assert not (tmp_path / "x.yaml").exists()


def test_init_asks_a_server_and_never_overwrites_unasked(comfy_server, tmp_path, capsys):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6")
    out = tmp_path / "s.yaml"
    assert init(tmp_path, capsys, "s", "--server", srv.url, "-o", str(out))[0] == 0
    assert f"what {srv.url} has" in out.read_text()
    out.write_text("mine")
    code, _, err = init(tmp_path, capsys, "s", "--server", srv.url, "-o", str(out))
    assert code == 2 and "the file exists" in err and out.read_text() == "mine"
    assert init(tmp_path, capsys, "s", "--server", srv.url, "-o", str(out), "--force")[0] == 0
    assert out.read_text() != "mine"


@pytest.mark.parametrize("name", ["../up", "has space", ".hidden"])
def test_a_bad_name_is_refused(tmp_path, capsys, name):
    code, _, err = init(tmp_path, capsys, name, "--object-info", str(SHARED), "-o", str(tmp_path / "n.yaml"))
    assert code == 2 and "a recipe name is" in err
