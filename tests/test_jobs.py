"""Completion through /api/jobs/{prompt_id} where the server has it (ComfyUI
0.8.0: `jobs=True` on the transcript server), /history where it does not (the
server as recorded). Support is asked once per client, with GET /api/jobs?limit=1.
Real sockets against tests/comfy_server.py; nothing in the client is patched."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
import requests

from compiler.cli.main import main
from compiler.comfy.client import ComfyClient
from compiler.comfy.address import Timeouts
from compiler.comfy.events import Event
from compiler.errors import RunError, UnknownPrompt
from compiler.lower import lower
from compiler.resolve.passes import resolve_file

try:
    from .comfy_replay import load_scenario
    from .test_run import SD15
except ImportError:
    from comfy_replay import load_scenario
    from test_run import SD15

S11 = "11-success-sd15-checkpoint-two-characters-cfg6"


def graph_of(scenario: str) -> dict:
    return copy.deepcopy(load_scenario(scenario).graph)


def paths(srv, prefix: str) -> list:
    return [r.path for r in srv.requests if r.path.startswith(prefix)]


def run(srv, scenario=S11, on_event=None, client=None):
    client = client or ComfyClient(srv.url, timeouts=Timeouts(idle=10))
    with client.open_events() as stream:
        queued = client.queue_prompt(graph_of(scenario), client_id=stream.client_id)
        outcome = stream.wait(queued.prompt_id, on_event=on_event(client, queued) if on_event else None)
    return client, queued, outcome


def test_the_recorded_server_has_no_jobs_api_and_history_is_used(comfy_server):
    srv = comfy_server(S11)
    client, queued, outcome = run(srv)
    assert outcome.status == "success" and outcome.history["outputs"]["save"]["images"]
    assert not client.jobs_supported() and client.finished(queued.prompt_id) is not None
    assert paths(srv, "/api/jobs") == ["/api/jobs"]          # asked once, whatever follows
    assert paths(srv, f"/history/{queued.prompt_id}")


def test_a_server_with_jobs_is_followed_without_history(comfy_server):
    srv = comfy_server(S11, jobs=True)
    client, queued, outcome = run(srv)
    assert outcome.status == "success" and outcome.history["outputs"]["save"]["images"]
    assert outcome.history["status"]["status_str"] == "success" and outcome.first("execution_start")
    assert client.jobs_supported() and paths(srv, "/api/jobs") == ["/api/jobs", f"/api/jobs/{queued.prompt_id}"]
    assert not paths(srv, "/history")


def test_the_jobs_api_as_0_8_0_answers(comfy_server):
    srv = comfy_server(S11, jobs=True, time_scale=0.05)
    missing = requests.get(srv.url + "/api/jobs/no-such-prompt")
    assert missing.status_code == 404 and missing.json() == {"error": "Job not found"}
    assert requests.get(srv.url + "/jobs").status_code == 404           # only under /api
    client = ComfyClient(srv.url)
    first = client.queue_prompt(graph_of(S11), client_id="me")
    second = client.queue_prompt(graph_of(S11), client_id="me")
    deadline = time.monotonic() + 5
    while client.job(first.prompt_id)["status"] != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.job(second.prompt_id)["status"] == "pending"
    while client.job(second.prompt_id)["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
    done = client.job(first.prompt_id)
    assert done["status"] == "completed" and done["outputs"]["save"]["images"]
    listed = requests.get(srv.url + "/api/jobs", params={"limit": 1}).json()
    assert len(listed["jobs"]) == 1 and listed["pagination"]["total"] == 2
    with pytest.raises(UnknownPrompt, match="does not know prompt nope"):
        client.job("nope")


def test_the_history_race_does_not_touch_a_server_with_jobs(comfy_server):
    srv = comfy_server(S11, jobs=True, history_delay=5.0)   # /history would say {} for 5 s
    started = time.monotonic()
    _, queued, outcome = run(srv)
    assert outcome.status == "success" and time.monotonic() - started < 3
    assert not paths(srv, "/history")


def test_reconnect_polls_the_job_not_history(comfy_server):
    srv = comfy_server("10-websocket-dropped-and-reconnected", jobs=True)
    _, queued, outcome = run(srv, "10-websocket-dropped-and-reconnected")
    assert outcome.status == "success"
    assert outcome.history["outputs"]["save"]["images"][0]["filename"] == "portrait_00010_.png"
    assert len([r for r in srv.requests if r.path == "/ws"]) == 2
    assert paths(srv, f"/api/jobs/{queued.prompt_id}") and not paths(srv, "/history")


def test_an_interrupted_job_reads_failed_and_ends_interrupted(comfy_server):
    srv = comfy_server("09-interrupted", jobs=True)

    def on_event(client, queued):
        def stop(event: Event):
            if event.type == "executing" and event.data.get("node") == "sampler":
                client.interrupt(queued.prompt_id)
        return stop

    client, queued, outcome = run(srv, "09-interrupted", on_event=on_event)
    assert outcome.status == "interrupted" and outcome.error["node_id"] == "sampler"
    assert client.job(queued.prompt_id)["status"] == "failed"


def _submitted(srv, tmp_path):
    """A run whose client went away after queueing (the laptop slept)."""
    from compiler.run.folder import prepare
    from compiler.run.steps import preflight, submit
    recipe = resolve_file(SD15[0])
    graph = lower(recipe)
    client = ComfyClient(srv.url)
    rec = prepare(recipe, graph, tmp_path / "out", client)
    preflight(client, recipe, graph, rec, None)
    submit(client, recipe, graph, rec)
    return rec


@pytest.mark.parametrize("jobs", [False, True])
def test_resume_with_and_without_the_jobs_api(comfy_server, capsys, tmp_path, jobs):
    srv = comfy_server(S11, time_scale=0.01, jobs=jobs)
    rec = _submitted(srv, tmp_path)
    before = len(srv.requests)
    assert main(["resume", str(rec.folder), "--plain"]) == 0, capsys.readouterr().err
    data = json.loads((rec.folder / "run.json").read_text())
    assert data["status"] == "success" and (rec.folder / data["outputs"][0]["file"]).is_file()
    later = [r.path for r in srv.requests[before:]]
    if jobs:
        assert "/queue" not in later and not any(p.startswith("/history") for p in later)
        assert f"/api/jobs/{rec.data['prompt_id']}" in later
    else:
        assert any(p.startswith("/history") for p in later)


def test_resume_of_a_prompt_the_server_lost_says_so_at_once(comfy_server, capsys, tmp_path):
    srv = comfy_server(S11, jobs=True)
    rec = _submitted(srv, tmp_path)
    rec.update(prompt_id="lost-in-a-restart")
    assert main(["resume", str(rec.folder), "--plain"]) == 1
    assert "the server does not know prompt lost-in-a-restart" in capsys.readouterr().err
    assert not paths(srv, "/queue") and not paths(srv, "/history")


def test_a_lost_prompt_after_a_reconnect_is_not_waited_out(comfy_server):
    srv = comfy_server(S11, jobs=True)
    client = ComfyClient(srv.url, timeouts=Timeouts(idle=30))
    with client.open_events() as stream:
        stream.close()   # the socket is gone: the stream asks the server about the prompt
        started = time.monotonic()
        with pytest.raises(RunError, match="does not know prompt never-queued"):
            stream.wait("never-queued")
    assert time.monotonic() - started < 2


def test_recipe_run_on_a_server_with_jobs(comfy_server, capsys, tmp_path):
    srv = comfy_server(S11, jobs=True)
    code = main(["run", *SD15, "--server", srv.url, "--out", str(tmp_path / "out"), "--plain"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rec = json.loads((Path(out.strip()) / "run.json").read_text())
    assert rec["status"] == "success" and rec["outputs"]
    assert not paths(srv, "/history") and "/object_info" not in paths(srv, "/object_info")   # per class only
    assert paths(srv, "/api/jobs") == ["/api/jobs", f"/api/jobs/{rec['prompt_id']}"]
