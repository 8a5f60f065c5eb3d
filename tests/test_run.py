"""`recipe run` and `recipe resume` end to end, over real sockets, against the
transcript server (tests/comfy_server.py). Every fault ends with a clear
message and exit code, the run record kept, and nothing written outside the
run folder."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from compiler.cli.main import main
from compiler.comfy.client import ComfyClient
from compiler.resolve.passes import resolve_file
from compiler.lower import lower

ROOT = Path(__file__).resolve().parents[1]
TINY_FLUX = ["--set", "model.unet=tiny-flux-dev-fp8_e4m3fn.safetensors",
             "--set", "model.text_encoders=[tiny-t5xxl_fp8_e4m3fn.safetensors, tiny-clip_l.safetensors]",
             "--set", "model.vae=tiny-flux-ae.safetensors",
             "--set", "characters.roxy.lora=tiny-char-a.safetensors",
             "--set", "characters.celeste.lora=tiny-char-b.safetensors"]
PORTRAIT = [str(ROOT / "recipes/portrait.yaml"), *TINY_FLUX]
SD15 = [str(ROOT / "recipes/sd15-duo.yaml")]


def run_cli(capsys, tmp_path, server_url, recipe_args, *extra):
    code = main(["run", *recipe_args, "--server", server_url, "--out", str(tmp_path / "out"),
                 "--plain", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def only_run_folder(tmp_path) -> Path:
    """Everything written lives in exactly one run folder under out/."""
    folders = [p for p in (tmp_path / "out").glob("*/*") if p.is_dir()]
    assert len(folders) == 1, folders
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert all(folders[0] in p.parents for p in written), written
    return folders[0]


def record(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


@pytest.mark.parametrize("scenario,args", [("01-success-two-characters-hooks", PORTRAIT),
                                           ("11-success-sd15-checkpoint-two-characters-cfg6", SD15)])
def test_success_writes_everything_beside_the_resolved_recipe(comfy_server, capsys, tmp_path, scenario, args):
    srv = comfy_server(scenario)
    code, out, err = run_cli(capsys, tmp_path, srv.url, args)
    assert code == 0, err
    folder = only_run_folder(tmp_path)
    assert out.strip() == str(folder)
    rec = record(folder)
    assert rec["status"] == "success"
    assert rec["comfyui_version"] == "0.8.0" and len(rec["object_info_hash"]) == 16
    assert rec["prompt_id"] and rec["client_id"]
    assert any(t["node"] == "sampler" and t["steps"] >= 1 for t in rec["timings"])
    assert "where the time went" in err
    png = folder / rec["outputs"][0]["file"]
    meta = Image.open(png).info
    # The PNG carries the resolved recipe, which compiles to the graph that ran.
    resolved = json.loads(meta["recipe"])
    assert resolved == (folder / "recipe.resolved.yaml").read_text()
    graph = json.loads((folder / "graph.api.json").read_text())
    assert json.loads(meta["prompt"]) == graph
    again = tmp_path / "again.yaml"
    again.write_text(resolved)
    assert lower(resolve_file(str(again))).to_api() == graph
    post = next(r for r in srv.requests if r.method == "POST" and r.path == "/prompt")
    assert post.body["client_id"] == rec["client_id"] and post.body["prompt_id"] == rec["prompt_id"]


def test_connection_refused(capsys, tmp_path, closed_port):
    code, out, err = run_cli(capsys, tmp_path, f"127.0.0.1:{closed_port}", SD15)
    assert code == 1
    assert f"127.0.0.1:{closed_port}" in err and "Traceback" not in err
    rec = record(only_run_folder(tmp_path))
    assert rec["status"] == "failed" and "127.0.0.1" in rec["error"]


def test_400_node_errors_point_at_recipe_keys(comfy_server, capsys, tmp_path):
    srv = comfy_server("04-validation-errors")
    code, out, err = run_cli(capsys, tmp_path, srv.url, SD15)
    assert code == 2
    assert "ComfyUI rejected node" in err
    assert "sd15-duo.yaml:" in err          # mapped back to file:line of a recipe key
    assert record(only_run_folder(tmp_path))["status"] == "rejected"


def test_200_with_node_errors_is_an_error_and_the_prompt_is_stopped(comfy_server, capsys, tmp_path):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", node_errors_on_200={
        "sampler": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                                "details": "sampler_name: 'x' not in list", "extra_info": {}}],
                    "dependent_outputs": ["save"], "class_type": "KSampler"}})
    code, out, err = run_cli(capsys, tmp_path, srv.url, SD15)
    assert code == 2
    assert "sd15-duo.yaml:24:1 sampler: ComfyUI rejected node sampler: Value not in list" in err
    assert any(r.path == "/interrupt" for r in srv.requests)


@pytest.mark.parametrize("fault,code,text", [
    ({"http_status": {"/prompt": 500}}, 1, "500"),
    ({"invalid_json": {"/history"}}, 1, "not JSON"),
    ({"evil_filename": "../../evil.png"}, 1, "unsafe file reference"),
])
def test_faults_keep_the_record(comfy_server, capsys, tmp_path, fault, code, text):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", **fault)
    got, out, err = run_cli(capsys, tmp_path, srv.url, SD15)
    assert got == code and text in err and "Traceback" not in err
    folder = only_run_folder(tmp_path)
    rec = record(folder)
    assert rec["status"] == "failed" and text in rec["error"]
    assert (folder / "recipe.resolved.yaml").is_file() and (folder / "graph.api.json").is_file()


@pytest.mark.parametrize("fault", [{"drop_ws_after": 5}, {"history_delay": 0.4}])
def test_dropped_socket_and_history_race_lose_nothing(comfy_server, capsys, tmp_path, fault):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", **fault)
    code, out, err = run_cli(capsys, tmp_path, srv.url, SD15)
    assert code == 0, err
    folder = only_run_folder(tmp_path)
    assert len(record(folder)["outputs"]) == 1 and list(folder.glob("*.png"))


def test_websocket_dropped_and_reconnected_transcript_10(comfy_server, capsys, tmp_path):
    srv = comfy_server("10-websocket-dropped-and-reconnected", reconnect_wait=0.2)
    code, out, err = run_cli(capsys, tmp_path, srv.url, PORTRAIT)
    assert code == 0, err
    assert list(only_run_folder(tmp_path).glob("*.png"))


@pytest.mark.parametrize("scenario,words,where", [
    # The LoRA was named by --set (TINY_FLUX), so that is where the error is.
    ("07-execution-error-broken-lora", "CreateHookLora (node char.roxy.lora) failed on the server",
     "error: --set characters.roxy.lora: "),
    ("08-execution-error-gguf-with-hooks", "'Linear' object has no attribute 'temp' (a GGUF model met hook LoRAs",
     "portrait.yaml:38:1 sampler: "),
])
def test_execution_errors_name_the_recipe_key(comfy_server, capsys, tmp_path, scenario, words, where):
    srv = comfy_server(scenario)
    code, out, err = run_cli(capsys, tmp_path, srv.url, PORTRAIT)
    assert code == 1 and words in err, err
    assert where in err, err
    assert record(only_run_folder(tmp_path))["status"] == "failed"


def test_slow_server_times_out_with_the_record_kept(comfy_server, capsys, tmp_path):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", slow={"/prompt": 3})
    code, out, err = run_cli(capsys, tmp_path, srv.url, SD15, "--timeout", "0.5")
    assert code == 1 and "timed out" in err.lower(), err
    assert record(only_run_folder(tmp_path))["status"] == "failed"


def test_ctrl_c_interrupts_only_our_prompt(comfy_server, tmp_path):
    srv = comfy_server("09-interrupted", time_scale=0.05, interrupt_wait=10)
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "run", *PORTRAIT, "--server", srv.url,
                             "--out", str(tmp_path / "out"), "--plain"], cwd=ROOT,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    for line in proc.stderr:
        if "queued prompt" in line or time.time() > deadline:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)[1], None
    assert proc.returncode == 1, rest
    rec = record(only_run_folder(tmp_path))
    assert rec["status"] == "interrupted"
    interrupts = [r for r in srv.requests if r.path == "/interrupt"]
    assert interrupts and interrupts[0].body == {"prompt_id": rec["prompt_id"]}


def test_resume_collects_a_run_whose_client_died(comfy_server, capsys, tmp_path):
    from compiler.run.folder import prepare
    from compiler.run.steps import preflight, submit
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.01)
    recipe = resolve_file(SD15[0])
    graph = lower(recipe)
    client = ComfyClient(srv.url)
    rec = prepare(recipe, graph, tmp_path / "out", client)
    preflight(client, recipe, graph, rec, None)
    submit(client, recipe, graph, rec)       # ... and then the laptop slept
    code = main(["resume", str(rec.folder), "--plain"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = record(rec.folder)
    assert data["status"] == "success" and (rec.folder / data["outputs"][0]["file"]).is_file()
    assert main(["resume", str(rec.folder)]) == 2    # already done: says so


def test_credentials_never_reach_the_record(comfy_server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RECIPE_TOKEN", "s3cret-token")
    monkeypatch.setenv("RECIPE_HEADERS", '{"X-Api-Key": "k3y-value"}')
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6")
    code, out, err = run_cli(capsys, tmp_path, srv.url, SD15)
    assert code == 0
    for path in only_run_folder(tmp_path).iterdir():
        data = path.read_bytes()
        assert b"s3cret-token" not in data and b"k3y-value" not in data
    assert any(r.headers.get("Authorization") == "Bearer s3cret-token" for r in srv.requests)


def test_preflight_refuses_missing_model_files_before_queueing(comfy_server, capsys, tmp_path):
    srv = comfy_server("01-success-two-characters-hooks")
    code, out, err = run_cli(capsys, tmp_path, srv.url, [str(ROOT / "recipes/portrait.yaml")])
    assert code == 2
    assert "portrait.yaml:14:3 model.unet: diffusion model file `SRPO-fp8_e4m3fn.safetensors` is not on the server" in err
    assert not any(r.path == "/prompt" and r.method == "POST" for r in srv.requests)
    assert record(only_run_folder(tmp_path))["status"] == "rejected"
