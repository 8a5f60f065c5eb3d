"""The stand-in itself, spoken to with plain requests and websocket-client, so that a bug in
compiler/comfy/ cannot hide a bug here (and the other way round)."""
from __future__ import annotations

import copy
import json

import pytest
import requests
import websocket

try:
    from .comfy_replay import load_scenario, node_map, scenario_names
except ImportError:
    from comfy_replay import load_scenario, node_map, scenario_names

S01 = "01-success-two-characters-hooks"


def connect(srv, client_id=None):
    query = f"?clientId={client_id}" if client_id else ""
    ws = websocket.create_connection(srv.url.replace("http", "ws", 1) + "/ws" + query, timeout=5)
    return ws, json.loads(ws.recv())


def post_prompt(srv, graph, client_id="me") -> dict:
    return requests.post(srv.url + "/prompt", json={"prompt": graph, "client_id": client_id}).json()


def messages_until_done(ws, prompt_id):
    """Text messages (progress_state left out) up to `executing` null for prompt_id."""
    out = []
    while True:
        opcode, data = ws.recv_data()
        if opcode != websocket.ABNF.OPCODE_TEXT:
            out.append({"type": "binary", "data": {}})
            continue
        message = json.loads(data)
        if message["type"] != "progress_state":
            out.append(message)
        if message == {"type": "executing", "data": {"node": None, "prompt_id": prompt_id}}:
            return out


def test_greeting_and_routes(comfy_server):
    srv = comfy_server(S01)
    ws, hello = connect(srv, "abc")
    assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}},
                                                "sid": "abc"}}
    ws.close()
    ws, hello = connect(srv)
    assert len(hello["data"]["sid"]) == 32   # a fresh uuid4 hex
    ws.close()
    ksampler = requests.get(srv.url + "/api/object_info/KSampler").json()["KSampler"]
    assert ksampler["output_node"] is False
    assert requests.get(srv.url + "/object_info/BlurMask").json() == {}
    assert requests.get(srv.url + "/system_stats").json()["system"]["comfyui_version"] == "0.8.0"
    assert requests.get(srv.url + "/prompt").json() == {"exec_info": {"queue_remaining": 0}}
    assert requests.get(srv.url + "/history/nope").json() == {}
    assert requests.get(srv.url + "/view", params={"filename": "x.png"}).status_code == 404
    assert requests.get(srv.url + "/view", params={"filename": "../x.png"}).status_code == 400


def test_prompt_refusals_have_comfyui_shapes(comfy_server):
    url = comfy_server(S01).url + "/prompt"
    assert requests.post(url, data=b"{not json").status_code == 500
    answer = requests.post(url, json={"client_id": "x"})
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "no_prompt"
    graph = copy.deepcopy(load_scenario("05-unknown-node-type").graph)
    for name in ("05-unknown-node-type", "06-no-outputs"):   # our own check, recorded shape
        answer = requests.post(url, json={"prompt": load_scenario(name).graph})
        assert (answer.status_code, answer.json()) == (400, load_scenario(name).answer)


PLAIN = [n for n in scenario_names() if load_scenario(n).status == 200 and n[:2] not in ("09", "10")]


@pytest.mark.parametrize("scenario", PLAIN)
def test_replay_matches_the_transcript(comfy_server, scenario):
    """Submitting the recorded graph gives back the recorded message sequence."""
    recorded = load_scenario(scenario)
    srv = comfy_server(scenario)
    ws, _ = connect(srv, "me")
    answer = post_prompt(srv, recorded.graph)
    pid = answer["prompt_id"]
    assert answer["node_errors"] == {} and pid != recorded.prompt_id
    got = messages_until_done(ws, pid)
    expected = [s.message for s in recorded.steps if s.kind == "ws"
                and s.message["type"] != "progress_state"]
    assert [m["type"] for m in got if m["type"] != "binary"][2:] == [m["type"] for m in expected]
    assert [m["data"].get("node") for m in got if m["type"] != "binary"][2:] == \
        [m["data"].get("node") for m in expected]
    entry = requests.get(f"{srv.url}/history/{pid}").json()[pid]
    assert entry["prompt"][1:3] == [pid, recorded.graph] and entry["prompt"][4] == ["save"]
    assert [k for k, _ in entry["status"]["messages"]][0] == "execution_start"
    ws.close()


def test_queue_runs_prompts_in_order_and_status_counts(comfy_server):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.01)
    ws, _ = connect(srv, "me")
    graph = load_scenario(srv.scenario.name).graph
    pids = [post_prompt(srv, graph)["prompt_id"] for _ in range(2)]
    queue = requests.get(srv.url + "/queue").json()
    assert [row[1] for row in queue["queue_running"] + queue["queue_pending"]] == pids
    assert requests.post(srv.url + "/queue", json={"delete": [pids[1]]}).status_code == 200
    assert requests.post(srv.url + "/interrupt", json={"prompt_id": "not-running"}).ok
    got = messages_until_done(ws, pids[0])
    remaining = [m["data"]["status"]["exec_info"]["queue_remaining"]
                 for m in got if m["type"] == "status"]
    assert remaining[0] == 1 and 2 in remaining and remaining[-1] == 0   # put, put .. delete, done
    assert got[-1]["type"] == "executing" and got[-2]["type"] == "status"   # task_done, then null
    assert requests.get(f"{srv.url}/history/{pids[1]}").json() == {}   # deleted, never ran
    ws.close()


def test_interrupt_mid_run_is_made_up_for_any_scenario(comfy_server):
    srv = comfy_server(S01, time_scale=0.004)   # about half a second to reach the sampler
    ws, _ = connect(srv, "me")
    pid = post_prompt(srv, srv.scenario.graph)["prompt_id"]
    while True:
        message = json.loads(ws.recv())
        if message["type"] == "executing" and message["data"].get("node") == "sampler":
            requests.post(srv.url + "/interrupt", json={})
            break
    got = messages_until_done(ws, pid)
    (stop,) = [m for m in got if m["type"] == "execution_interrupted"]
    assert stop["data"]["node_id"] == "sampler" and stop["data"]["node_type"] == "KSampler"
    assert "msf" in stop["data"]["executed"] and "sampler" not in stop["data"]["executed"]
    status = requests.get(f"{srv.url}/history/{pid}").json()[pid]["status"]
    assert (status["status_str"], status["completed"]) == ("error", False)
    ws.close()


def test_node_map_pairs_classes_in_order():
    recorded = {"a": {"class_type": "X"}, "b": {"class_type": "X"}, "c": {"class_type": "Y"}}
    submitted = {"one": {"class_type": "X"}, "two": {"class_type": "Z"}}
    assert node_map(recorded, submitted) == {"a": "one"}


def test_the_catalogue_can_change_mid_test(comfy_server):
    srv = comfy_server(S01)
    recorded = requests.get(srv.url + "/object_info").json()
    assert "new.safetensors" not in recorded["LoraLoader"]["input"]["required"]["lora_name"][0]
    srv.add_model("loras", "new.safetensors")
    info = requests.get(srv.url + "/object_info").json()
    for cls in ("LoraLoader", "LoraLoaderModelOnly", "CreateHookLora"):
        names = info[cls]["input"]["required"]["lora_name"][0]
        assert "new.safetensors" in names and names == sorted(names)
    assert info["UNETLoader"] == recorded["UNETLoader"]   # only the LoRA loaders changed
    one = requests.get(srv.url + "/object_info/CreateHookLora").json()
    assert "new.safetensors" in one["CreateHookLora"]["input"]["required"]["lora_name"][0]
    srv.add_model("text_encoders", "t5-new.safetensors")   # the COMBO style too
    combo = srv.object_info["TripleCLIPLoader"]["input"]["required"]["clip_name1"]
    assert "t5-new.safetensors" in combo[1]["options"]
    del info["KSampler"]
    srv.set_object_info(info)
    assert "KSampler" not in requests.get(srv.url + "/object_info").json()
    assert requests.post(srv.url + "/prompt", json={"prompt": load_scenario(S01).graph}).json()[
        "error"]["message"] == "Cannot execute because node KSampler does not exist."
    assert comfy_server(S01).object_info == recorded   # the recording itself is untouched
