"""`recipe run FILE --sweep / --variant` end to end, over real sockets, against
the transcript server: one run folder per job inside a sweep folder, the next
prompt queued while one runs on one WebSocket, cache-aware order, failures
kept per job, several servers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compiler.cli.main import main
from compiler.comfy.client import ComfyClient
from compiler.ir.graph import Graph
from compiler.lower import lower
from compiler.ab.order import footprint, order_cost
from compiler.resolve.passes import resolve_file

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "11-success-sd15-checkpoint-two-characters-cfg6"
RECIPE = f"""\
extends: sd15-duo.yaml
name: duo
vars: {{light: soft daylight}}
characters:
  a: {{prompt: "{{{{ trigger }}}}, 25yo woman, {{{{ vars.light }}}}"}}
variants:
  softer: {{vars: {{light: soft clamshell lighting}}}}
sweep:
  sampler.seed: [1, 2, 3]
  vars.light: [rembrandt, window light from camera left]
"""


def recipe(tmp_path: Path, text: str = RECIPE) -> str:
    path = tmp_path / "duo.yaml"
    shutil.copy(ROOT / "recipes/sd15-duo.yaml", tmp_path)   # a recipe extends only files beside it
    path.write_text(text, encoding="utf-8")
    return str(path)


def sweep(capsys, tmp_path, servers, *args, text: str = RECIPE):
    argv = ["run", recipe(tmp_path, text), "--out", str(tmp_path / "out"), "--plain", *args]
    for url in servers:
        argv += ["--server", url]
    code = main(argv)
    out, err = capsys.readouterr()
    folder = Path(out.strip()) if out.strip() else None
    return code, folder, err


def data(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


def posts(server) -> list:
    return [r for r in server.requests if r.method == "POST" and r.path == "/prompt"]


def test_six_jobs_over_two_axes_make_six_run_folders_a_sheet_and_a_report(comfy_server, capsys, tmp_path):
    srv = comfy_server(SCENARIO)
    code, folder, err = sweep(capsys, tmp_path, [srv.url], "--sweep")
    assert code == 0, err
    assert folder.parent == tmp_path / "out" / "duo" and folder.name.startswith("sweep-")
    d = data(folder)
    assert d["status"] == "success" and [a["label"] for a in d["axes"]] == ["seed", "light"]
    assert sorted(d["order"]) == list(range(6)) and len(posts(srv)) == 6
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    assert [p.name for p in runs] == [j["folder"] for j in d["jobs"]]
    assert runs[2].name == "03-seed-2-light-rembrandt"
    for job, run in zip(d["jobs"], runs):
        rec = json.loads((run / "run.json").read_text())
        assert job["status"] == rec["status"] == "success" and rec["seed"] == job["seed"]
        assert rec["sweep"]["label"] == job["label"] and job["images"] == [f"{run.name}/{rec['outputs'][0]['file']}"]
        resolved = (run / "recipe.resolved.yaml").read_text()
        assert "sweep" not in resolved and "variants" not in resolved
        graph = (run / "graph.api.json").read_text()
        assert lower(resolve_file(str(run / "recipe.resolved.yaml"))).to_json() == graph
    sent = {r.body["prompt_id"]: r.body["prompt"] for r in posts(srv)}
    for job in d["jobs"]:   # each job's own graph went to the server
        assert sent[job["prompt_id"]] == json.loads((folder / job["folder"] / "graph.api.json").read_text())
    assert (folder / "contact.png").stat().st_size > 0 and (folder / "report.html").is_file()
    # Nothing else is left behind: no half-made run folder, no temporary file.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["sweep.json", "contact.png", "report.html", *(j["folder"] for j in d["jobs"])])
    for job in d["jobs"]:
        files = {p.name for p in (folder / job["folder"]).iterdir()}
        assert files == {"recipe.resolved.yaml", "graph.api.json", "run.json",
                         *(image.split("/", 1)[1] for image in job["images"])}, files


def test_the_next_job_is_queued_while_one_runs_on_one_websocket(comfy_server, capsys, tmp_path):
    srv = comfy_server(SCENARIO, time_scale=0.01, start_when_queued=2)   # (not a race with the CPU)
    code, folder, err = sweep(capsys, tmp_path, [srv.url], "--sweep")
    assert code == 0, err
    assert sum(1 for r in srv.requests if r.path == "/ws") == 1
    first = data(folder)["jobs"][data(folder)["order"][0]]["prompt_id"]
    paths = [(r.method, r.path) for r in srv.requests]
    second_post = [i for i, p in enumerate(paths) if p == ("POST", "/prompt")][1]
    first_done = paths.index(("GET", f"/history/{first}"))
    assert second_post < first_done
    client_ids = {r.body["client_id"] for r in posts(srv)}
    assert len(client_ids) == 1


def test_cache_aware_order_reexecutes_fewer_nodes_than_the_written_order(comfy_server, capsys, tmp_path):
    text = RECIPE + "  characters.a.strength.model: [0.6, 0.8]\n"
    srv = comfy_server(SCENARIO)
    code, folder, err = sweep(capsys, tmp_path, [srv.url], "--sweep", text=text)
    assert code == 0, err
    d = data(folder)
    received = [r.body["prompt_id"] for r in posts(srv)]
    assert received == [d["jobs"][i]["prompt_id"] for i in d["order"]]
    prints = [footprint(Graph.from_api(r.body["prompt"])) for r in posts(srv)]
    by_job = {d["order"][k]: prints[k] for k in range(len(prints))}
    in_file_order = [by_job[i] for i in range(12)]
    assert order_cost(prints, range(12)) < order_cost(in_file_order, range(12))
    assert d["reexecuted_nodes"]["planned"] == order_cost(prints, range(12)) < d["reexecuted_nodes"]["naive"]


def test_a_failing_job_keeps_the_others(comfy_server, capsys, tmp_path):
    text = RECIPE.split("sweep:")[0] + ("sweep:\n  characters.a.lora: [tiny-sd15-char-a.safetensors, "
                                        "missing.safetensors]\n  sampler.seed: [1, 2]\n")
    srv = comfy_server(SCENARIO)
    code, folder, err = sweep(capsys, tmp_path, [srv.url], "--sweep", text=text)
    assert code == 1 and "2 of 4 jobs did not succeed" in err
    d = data(folder)
    assert [j["status"] for j in d["jobs"]] == ["success", "success", "rejected", "rejected"]
    assert d["status"] == "partial" and len(posts(srv)) == 2
    bad = json.loads((folder / d["jobs"][2]["folder"] / "run.json").read_text())
    assert bad["status"] == "rejected" and "missing.safetensors" in bad["error"]
    assert all((folder / j["folder"] / "graph.api.json").is_file() for j in d["jobs"])
    assert (folder / "contact.png").is_file() and (folder / "report.html").is_file()


def test_variants_run_as_named(comfy_server, capsys, tmp_path):
    srv = comfy_server(SCENARIO)
    code, folder, err = sweep(capsys, tmp_path, [srv.url], "--variant", "base", "--variant", "softer")
    assert code == 0, err
    d = data(folder)
    assert [j["label"] for j in d["jobs"]] == ["base", "softer"]
    assert [j["folder"] for j in d["jobs"]] == ["01-base", "02-softer"]
    assert d["jobs"][0]["differences"] == []
    assert {c["path"] for c in d["jobs"][1]["differences"]} == {"vars.light", "characters.a.prompt"}


def test_jobs_spread_over_several_servers(comfy_server, capsys, tmp_path):
    one, two = comfy_server(SCENARIO, time_scale=0.01), comfy_server(SCENARIO, time_scale=0.01)
    code, folder, err = sweep(capsys, tmp_path, [one.url, two.url], "--sweep")
    assert code == 0, err
    d = data(folder)
    assert {j["server"] for j in d["jobs"]} == {one.url, two.url}
    assert len(posts(one)) + len(posts(two)) == 6 and posts(one) and posts(two)
    for srv in (one, two):   # each server's catalogue was fetched (and checked against)
        assert sum(1 for r in srv.requests if r.path == "/object_info") == 1


def test_the_least_loaded_server_gets_the_job(comfy_server, capsys, tmp_path):
    busy, idle = comfy_server(SCENARIO, time_scale=0.2), comfy_server(SCENARIO)
    graph = lower(resolve_file(str(ROOT / "recipes/sd15-duo.yaml"))).to_api()
    someone = ComfyClient(busy.url)
    for _ in range(2):   # someone else's work: one running, one waiting
        someone.queue_prompt(graph, client_id="someone-else")
    code, folder, err = sweep(capsys, tmp_path, [busy.url, idle.url], "--variant", "softer")
    assert code == 0, err
    assert data(folder)["jobs"][0]["server"] == idle.url
    assert len(posts(busy)) == 2 and len(posts(idle)) == 1


def test_an_unreachable_server_is_left_out(comfy_server, capsys, tmp_path, closed_port):
    srv = comfy_server(SCENARIO)
    code, folder, err = sweep(capsys, tmp_path, [f"127.0.0.1:{closed_port}", srv.url], "--sweep")
    assert code == 0, err
    assert f"warning: leaving out http://127.0.0.1:{closed_port}" in err
    assert {j["server"] for j in data(folder)["jobs"]} == {srv.url}


def test_no_server_at_all_fails_before_resolving_and_writes_nothing(capsys, tmp_path, closed_port):
    code, folder, err = sweep(capsys, tmp_path, [f"127.0.0.1:{closed_port}"], "--sweep")
    assert code == 1 and "no server could be reached" in err
    assert not (tmp_path / "out").exists()


def test_one_run_with_several_servers_is_refused(capsys, tmp_path):
    code = main(["run", recipe(tmp_path), "--server", "a:1", "--server", "b:2", "--out", str(tmp_path)])
    assert code == 2 and "several --server are for --variant and --sweep runs" in capsys.readouterr().err


def test_ctrl_c_stops_our_prompts_and_keeps_finished_runs(comfy_server, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    srv = comfy_server(SCENARIO, time_scale=0.05, interrupt_wait=10)
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "run", recipe(tmp_path), "--sweep", "--server",
                             srv.url, "--out", str(tmp_path / "out")], cwd=ROOT, text=True,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    deadline = time.time() + 30
    for line in proc.stderr:
        if "done]" in line or time.time() > deadline:   # one finished, the next one running
            break
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 1 and "sweep interrupted" in err, err
    (folder,) = (tmp_path / "out" / "duo").iterdir()
    d = data(folder)
    statuses = [j["status"] for j in d["jobs"]]
    assert d["status"] == "interrupted" and statuses.count("success") >= 1 and "interrupted" in statuses
    assert set(statuses) <= {"success", "interrupted", "not run"}
    stopped = [j["prompt_id"] for j in d["jobs"] if j["status"] == "interrupted"]
    deleted = [r.body for r in srv.requests if r.method == "POST" and r.path == "/queue"]
    assert deleted and set(stopped) <= set(deleted[0]["delete"])
    assert any(r.path == "/interrupt" for r in srv.requests)
    assert (folder / "report.html").is_file()


@pytest.mark.parametrize("when", ["first-prompt", "all-queued"])
def test_a_server_that_dies_mid_sweep_hands_its_jobs_to_the_other(when, comfy_server, capsys, tmp_path):
    """Two transcript servers, one stopped after it took its first job (found
    at the next submit) or once every job is queued (found by asking it while
    waiting): every job still succeeds, on the survivor, and sweep.json and
    the report name the dead server."""
    import threading
    import time
    from comfy_server import ComfyTestServer
    alive = comfy_server(SCENARIO, time_scale=0.02)
    dying = ComfyTestServer(SCENARIO, time_scale=0.5).__enter__()   # slow: it dies holding jobs
    url = dying.url

    def kill_after_first_prompt():
        deadline = time.monotonic() + 30
        enough = (lambda: posts(dying)) if when == "first-prompt" else \
            (lambda: posts(dying) and len(posts(dying)) + len(posts(alive)) >= 6)
        while not enough() and time.monotonic() < deadline:
            time.sleep(0.01)
        dying.__exit__(None, None, None)
    killer = threading.Thread(target=kill_after_first_prompt, daemon=True)
    killer.start()
    code, folder, err = sweep(capsys, tmp_path, [url, alive.url], "--sweep", "--timeout", "60")
    killer.join(10)
    assert code == 0, err
    d = data(folder)
    assert [j["status"] for j in d["jobs"]] == ["success"] * 6
    assert {j["server"] for j in d["jobs"]} == {alive.url}
    assert all(j["images"] for j in d["jobs"])
    (down,) = d["servers_down"]
    assert down["server"] == url and down["moved_jobs"] and url in down["reason"]
    if when == "all-queued":   # nothing more to submit there: found by asking it
        assert down["reason"].startswith("stopped answering mid-sweep")
    assert f"warning: {url} is down" in err
    assert f"server {url} went down" in (folder / "report.html").read_text()


def test_system_stats_is_asked_once_per_server_not_once_per_job(comfy_server, capsys, tmp_path):
    one, two = comfy_server(SCENARIO, time_scale=0.01), comfy_server(SCENARIO, time_scale=0.01)
    code, folder, err = sweep(capsys, tmp_path, [one.url, two.url], "--sweep")
    assert code == 0, err
    for srv in (one, two):
        assert posts(srv) and sum(1 for r in srv.requests if r.path == "/system_stats") == 1
    assert all(json.loads((folder / j["folder"] / "run.json").read_text())["comfyui_version"] == "0.8.0"
               for j in data(folder)["jobs"])
