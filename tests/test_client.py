"""ComfyClient over real sockets against tests/comfy_server.py; nothing in the client is patched."""
from __future__ import annotations

import copy
import io
import json
import shutil
import ssl
import subprocess
import time

import pytest
from PIL import Image

from compiler.comfy.address import ServerAddress, Timeouts, parse_server
from compiler.comfy.client import ComfyClient
from compiler.comfy.events import Event
from compiler.errors import (ConnectError, ProtocolError, RecipeError, RejectedError, Rejection,
                             RunError, RunTimeout, ServerError)

try:
    from .comfy_replay import load_scenario
except ImportError:
    from comfy_replay import load_scenario

S01 = "01-success-two-characters-hooks"
S11 = "11-success-sd15-checkpoint-two-characters-cfg6"
EXTRA = {"extra_pnginfo": {"recipe": {"name": "portrait", "seed": 42}, "note": "two"},
         "preview_method": "latent2rgb"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("RECIPE_TOKEN", "RECIPE_HEADERS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def graph_of(scenario: str) -> dict:
    return copy.deepcopy(load_scenario(scenario).graph)


def run(srv, scenario=S01, *, graph=None, extra_data=None, on_event=None,
        timeouts=Timeouts(idle=10), **stream_kwargs):
    """Open the stream, queue, wait: the order REFERENCE E asks for."""
    client = ComfyClient(srv.url, timeouts=timeouts)
    with client.open_events(**stream_kwargs) as stream:
        queued = client.queue_prompt(graph or graph_of(scenario), client_id=stream.client_id,
                                     extra_data=extra_data)
        outcome = stream.wait(queued.prompt_id, on_event=on_event)
    return client, queued, outcome


def sent(srv, method, path):
    return [r for r in srv.requests if r.method == method and r.path == path]


# --- addresses ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, http, ws", [
    ("localhost:8188", "http://localhost:8188", "ws://localhost:8188"),
    ("127.0.0.1:8188", "http://127.0.0.1:8188", "ws://127.0.0.1:8188"),
    ("localhost", "http://localhost:8188", "ws://localhost:8188"),
    ("http://gpu-box:9000", "http://gpu-box:9000", "ws://gpu-box:9000"),
    ("https://comfy.example.org", "https://comfy.example.org", "wss://comfy.example.org"),
    ("https://h:8443/comfy/", "https://h:8443/comfy", "wss://h:8443/comfy"),
    ("  http://[::1]:8188 ", "http://[::1]:8188", "ws://[::1]:8188"),
])
def test_parse_server(text, http, ws):
    assert parse_server(text) == ServerAddress(http, ws)


@pytest.mark.parametrize("text", ["", "ftp://h:21", "http://", "h:port", "http://h:99999",
                                  "http://h:8188/?x=1", "local host:8188"])
def test_parse_server_rejects(text):
    with pytest.raises(RecipeError, match="bad server address"):
        parse_server(text)


def test_parse_server_never_echoes_credentials():
    with pytest.raises(RecipeError) as info:
        parse_server("https://admin:hunter2@h:8443")
    assert "hunter2" not in str(info.value) and "RECIPE_TOKEN" in str(info.value)


# --- the happy path --------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", [S01, S11])
def test_success_events_history_and_png(comfy_server, scenario):
    srv = comfy_server(scenario)
    graph = graph_of(scenario)
    seen = []
    client, queued, outcome = run(srv, scenario, extra_data=EXTRA, on_event=seen.append)
    assert outcome.status == "success" and outcome.error is None
    assert seen == outcome.events
    noise = ("status", "progress_state", "preview")
    types = [e.type for e in outcome.events if e.type not in noise]
    assert types[:2] == ["execution_start", "execution_cached"]
    assert types[-3:] == ["executed", "execution_success", "executing"]
    assert outcome.events[-1].data == {"node": None, "prompt_id": queued.prompt_id}
    recorded = [s.message["data"]["node"] for s in load_scenario(scenario).steps
                if s.kind == "ws" and s.message["type"] == "executing"]
    got = [e.data["node"] for e in outcome.events if e.type == "executing"]
    assert got == recorded   # the recorded order, ending with null
    assert all(isinstance(e.received, float) for e in outcome.events)
    image = outcome.history["outputs"]["save"]["images"][0]
    assert outcome.history["status"]["status_str"] == "success"
    png = Image.open(io.BytesIO(client.view(image)))
    assert png.format == "PNG"
    assert json.loads(png.text["prompt"]) == graph
    assert json.loads(png.text["recipe"]) == EXTRA["extra_pnginfo"]["recipe"]
    assert json.loads(png.text["note"]) == "two"


def test_previews_with_and_without_metadata(comfy_server):
    srv = comfy_server(S01)
    for metadata in (True, False):
        _, queued, outcome = run(srv, extra_data=EXTRA, preview_metadata=metadata)
        previews = [e for e in outcome.events if e.type == "preview"]
        assert len(previews) == 2
        for e in previews:
            assert e.payload[:2] == b"\xff\xd8"   # a JPEG
            assert e.data["image_type"] == "image/jpeg" and e.data["node_id"] == "sampler"
            assert e.data.get("prompt_id", queued.prompt_id) == queued.prompt_id


def test_events_use_the_submitted_node_ids(comfy_server):
    srv = comfy_server(S01)
    original = graph_of(S01)
    renamed = {f"n{i}": node for i, node in enumerate(original.values())}
    new_id = dict(zip(original, renamed))
    for node in renamed.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and value[0] in new_id:
                node["inputs"][name] = [new_id[value[0]], value[1]]
    _, _, outcome = run(srv, graph=renamed)
    nodes = {e.data["node"] for e in outcome.events if e.type == "executing" and e.data["node"]}
    assert nodes == set(renamed)
    assert list(outcome.history["outputs"]) == [new_id["save"]]


def test_several_prompts_on_one_stream_in_any_order(comfy_server):
    srv = comfy_server(S11)
    client = ComfyClient(srv.url)
    with client.open_events() as stream:
        queued = []
        for seed in (1, 2, 3):
            graph = graph_of(S11)
            graph["sampler"]["inputs"]["seed"] = seed
            queued.append(client.queue_prompt(graph, client_id=stream.client_id))
        outcomes = {q.prompt_id: stream.wait(q.prompt_id) for q in reversed(queued)}
    assert [q.number for q in queued] == [0, 1, 2]
    for q in queued:
        outcome = outcomes[q.prompt_id]
        assert outcome.status == "success"
        owners = {e.data.get("prompt_id") for e in outcome.events if e.type != "status"}
        assert owners == {q.prompt_id}
        assert outcome.history["prompt"][2]["sampler"]["inputs"]["seed"] == queued.index(q) + 1


# --- refusals and failures ------------------------------------------------------------------

def test_connection_refused_names_the_url(closed_port):
    client = ComfyClient(f"127.0.0.1:{closed_port}")
    with pytest.raises(ConnectError) as info:
        client.object_info()
    assert f"http://127.0.0.1:{closed_port}" in str(info.value)
    assert f"python main.py --port {closed_port}" in str(info.value)
    with pytest.raises(ConnectError, match=f"ws://127.0.0.1:{closed_port}/ws"):
        client.open_events("me")


def test_validation_errors_name_nodes_and_inputs(comfy_server):
    srv = comfy_server("04-validation-errors")
    client = ComfyClient(srv.url)
    with pytest.raises(RejectedError) as info:
        client.queue_prompt(graph_of("04-validation-errors"), client_id="me")
    error = info.value
    assert error.prompt_id == "" and error.exit_code == 2
    assert set(error.node_errors) == {"unet", "a.hook", "b.text", "sampler"}
    lines = error.lines()
    assert "node sampler (KSampler): Required input is missing: seed" in lines
    assert ("node sampler (KSampler): Value not in list: sampler_name: 'euler_a' not in "
            "(list of length 44)") in lines
    assert ("node a.hook (CreateHookLora): Value 25.0 bigger than max of 20.0: "
            "strength_model") in lines
    assert ("node b.text (CLIPTextEncode): Return type mismatch between linked nodes: "
            "clip, received_type(VAE) mismatch input_type(CLIP)") in lines
    assert any(line.startswith("node unet (UNETLoader): Value not in list: unet_name: "
                               "'SRPO-fp8_e4m3fn.safetensors' not in") for line in lines)
    assert len(lines) == 5


def test_rejections_are_parsed_once_into_node_class_and_message(comfy_server):
    client = ComfyClient(comfy_server("04-validation-errors").url)
    with pytest.raises(RejectedError) as info:
        client.queue_prompt(graph_of("04-validation-errors"), client_id="me")
    rejections = info.value.rejections
    assert sorted(r.format() for r in rejections) == sorted(info.value.lines())
    assert {(r.node_id, r.class_type) for r in rejections} == {
        ("unet", "UNETLoader"), ("a.hook", "CreateHookLora"), ("b.text", "CLIPTextEncode"),
        ("sampler", "KSampler")}
    assert Rejection("sampler", "KSampler", "Required input is missing: seed") in rejections


@pytest.mark.parametrize("scenario, line", [
    ("05-unknown-node-type",
     "Cannot execute because node BlurMask does not exist.: Node ID '#blur'"),
    ("06-no-outputs", "Prompt has no outputs"),
])
def test_top_level_refusals(comfy_server, scenario, line):
    client = ComfyClient(comfy_server(scenario).url)
    with pytest.raises(RejectedError) as info:
        client.queue_prompt(graph_of(scenario), client_id="me")
    assert info.value.lines() == [line]


def test_200_with_node_errors_is_rejected_but_queued(comfy_server):
    errors = {"sampler": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                                      "details": "scheduler: 'karras2' not in (list of length 9)",
                                      "extra_info": {"input_name": "scheduler"}}],
                          "dependent_outputs": ["save"], "class_type": "KSampler"}}
    srv = comfy_server(S11, node_errors_on_200=errors)
    client = ComfyClient(srv.url)
    with pytest.raises(RejectedError) as info:
        client.queue_prompt(graph_of(S11), client_id="me", prompt_id="pid-13")
    assert info.value.prompt_id == "pid-13" and info.value.node_errors == errors
    assert info.value.lines() == ["node sampler (KSampler): Value not in list: "
                                  "scheduler: 'karras2' not in (list of length 9)"]


def test_http_500_is_a_server_error(comfy_server):
    client = ComfyClient(comfy_server(S01, http_status={"/prompt": 500}).url)
    with pytest.raises(ServerError) as info:
        client.queue_prompt(graph_of(S01), client_id="me")
    assert info.value.status == 500 and info.value.exit_code == 1
    assert "POST /prompt" in str(info.value) and "HTTP 500" in str(info.value)
    assert "Server got itself in trouble" in str(info.value)


@pytest.mark.parametrize("call", [
    lambda c: c.object_info(), lambda c: c.system_stats(), lambda c: c.queue(),
    lambda c: c.history("x"), lambda c: c.queue_prompt(graph_of(S01), client_id="me"),
])
def test_invalid_json_is_a_protocol_error(comfy_server, call):
    client = ComfyClient(comfy_server(S01, invalid_json={"/"}).url)
    with pytest.raises(ProtocolError, match="not JSON"):
        call(client)


def test_execution_error_reaches_the_outcome_07(comfy_server):
    _, _, outcome = run(comfy_server("07-execution-error-broken-lora"),
                        "07-execution-error-broken-lora")
    assert outcome.status == "error"
    assert outcome.error["node_id"] == "a.hook" and outcome.error["node_type"] == "CreateHookLora"
    assert "header too large" in outcome.error["exception_message"]
    assert outcome.history["status"] == {**outcome.history["status"], "status_str": "error",
                                         "completed": False}


def test_execution_error_reaches_the_outcome_08(comfy_server):
    _, _, outcome = run(comfy_server("08-execution-error-gguf-with-hooks"),
                        "08-execution-error-gguf-with-hooks")
    assert outcome.status == "error" and outcome.error["node_id"] == "sampler"
    assert "'Linear' object has no attribute 'temp'" in outcome.error["exception_message"]
    assert outcome.history["outputs"] == {}


def test_interrupt_09(comfy_server):
    srv = comfy_server("09-interrupted")
    client = ComfyClient(srv.url)
    with client.open_events() as stream:
        queued = client.queue_prompt(graph_of("09-interrupted"), client_id=stream.client_id)

        def on_event(event: Event):
            if event.type == "executing" and event.data.get("node") == "sampler":
                client.interrupt(queued.prompt_id)

        started = time.monotonic()
        outcome = stream.wait(queued.prompt_id, on_event=on_event)
    assert time.monotonic() - started < 1.5    # it did not sit out interrupt_wait
    assert outcome.status == "interrupted" and outcome.error["node_id"] == "sampler"
    assert [r.body for r in sent(srv, "POST", "/interrupt")] == [{"prompt_id": queued.prompt_id}]
    assert outcome.history["status"]["status_str"] == "error"
    assert outcome.history["status"]["completed"] is False


def test_interrupt_without_id_sends_empty_body(comfy_server):
    srv = comfy_server(S01)
    ComfyClient(srv.url).interrupt()
    assert [r.body for r in sent(srv, "POST", "/interrupt")] == [{}]


# --- a lossy world ------------------------------------------------------------------------

def test_websocket_dropped_and_reconnected_10(comfy_server):
    srv = comfy_server("10-websocket-dropped-and-reconnected")
    _, _, outcome = run(srv, "10-websocket-dropped-and-reconnected")
    assert outcome.status == "success"
    assert outcome.history["outputs"]["save"]["images"][0]["filename"] == "portrait_00010_.png"
    handshakes = sent(srv, "GET", "/ws")
    assert len(handshakes) == 2 and handshakes[0].query == handshakes[1].query
    # On reconnect the server said which node runs, without a prompt_id (A2).
    assert any(e.type == "executing" and "prompt_id" not in e.data for e in outcome.events)
    assert outcome.events[-1].data["node"] is None


def test_drop_ws_after_n_messages_falls_back_to_history(comfy_server):
    srv = comfy_server(S01, drop_ws_after=5)
    _, queued, outcome = run(srv)
    assert outcome.status == "success" and outcome.history["outputs"]["save"]
    assert len([e for e in outcome.events if e.type != "status"]) >= 5   # up to the drop
    assert sent(srv, "GET", f"/history/{queued.prompt_id}")     # polled while away


def test_history_race_is_retried(comfy_server):
    srv = comfy_server(S11, history_delay=0.4)
    _, queued, outcome = run(srv, S11)
    assert outcome.status == "success" and outcome.history["outputs"]["save"]["images"]
    assert len(sent(srv, "GET", f"/history/{queued.prompt_id}")) > 1


def test_read_timeout_is_a_run_timeout(comfy_server):
    client = ComfyClient(comfy_server(S01, slow={"/prompt": 1.0}).url, timeouts=Timeouts(read=0.2))
    started = time.monotonic()
    with pytest.raises(RunTimeout, match="POST /prompt"):
        client.queue_prompt(graph_of(S01), client_id="me")
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize("timeouts, match", [(Timeouts(idle=0.3), "Timeouts.idle"),
                                             (Timeouts(total=0.3), "Timeouts.total")])
def test_idle_and_total_limits(comfy_server, timeouts, match):
    srv = comfy_server("09-interrupted", interrupt_wait=5.0)   # sits at the interrupt point
    with pytest.raises(RunTimeout, match=match):
        run(srv, "09-interrupted", timeouts=timeouts)


def test_evil_filename_is_refused(comfy_server):
    client, _, outcome = run(comfy_server(S11, evil_filename="../../evil.png"), S11)
    image = outcome.history["outputs"]["save"]["images"][0]
    assert image["filename"] == "../../evil.png"
    with pytest.raises(ProtocolError, match="unsafe"):
        client.view(image)


# --- what goes over the wire ---------------------------------------------------------------

def test_client_id_is_the_websocket_client_id(comfy_server):
    srv = comfy_server(S11)
    run(srv, S11)
    (handshake,), (post,) = sent(srv, "GET", "/ws"), sent(srv, "POST", "/prompt")
    assert post.body["client_id"] == handshake.query["clientId"]


def test_token_and_headers_from_env_are_sent_never_described(comfy_server, monkeypatch):
    monkeypatch.setenv("RECIPE_TOKEN", "s3cret-token")
    monkeypatch.setenv("RECIPE_HEADERS", "X-Team: blue-sky\nX-Trace: 7")
    srv = comfy_server(S11)
    client, _, _ = run(srv, S11)
    assert {r.path for r in srv.requests} >= {"/ws", "/prompt"}
    for request in srv.requests:
        assert request.headers["Authorization"] == "Bearer s3cret-token"
        assert request.headers["X-Team"] == "blue-sky" and request.headers["X-Trace"] == "7"
    described = json.dumps(client.describe())
    assert "s3cret" not in described and "blue-sky" not in described
    assert client.describe()["headers"] == ["Authorization", "X-Team", "X-Trace"]
    assert client.describe()["server"] == srv.url


def test_headers_as_json_and_bad_headers(monkeypatch):
    monkeypatch.setenv("RECIPE_HEADERS", '{"X-Api-Key": "k-123"}')
    assert ComfyClient("h:1").describe()["headers"] == ["X-Api-Key"]
    monkeypatch.setenv("RECIPE_HEADERS", "Authorization Bearer k-123")
    with pytest.raises(RecipeError) as info:
        ComfyClient("h:1")
    assert "k-123" not in str(info.value)


def test_small_endpoints(comfy_server, tmp_path):
    client = ComfyClient(comfy_server(S01).url)
    assert client.system_stats()["system"]["comfyui_version"] == "0.8.0"
    assert "KSampler" in client.object_info()
    assert client.queue() == {"queue_running": [], "queue_pending": []}
    assert client.history("nope") is None
    with pytest.raises(ServerError, match="HTTP 404"):
        client.view({"filename": "missing.png", "subfolder": "", "type": "output"})
    path = tmp_path / "face.png"
    Image.new("RGB", (4, 4)).save(path)
    assert client.upload_image(path) == {"name": "face.png", "subfolder": "", "type": "input"}
    assert client.view({"filename": "face.png", "type": "input"}) == path.read_bytes()
    Image.new("RGB", (5, 5)).save(path)
    assert client.upload_image(path)["name"] == "face (1).png"
    assert client.upload_image(path, overwrite=True)["name"] == "face.png"
    with pytest.raises(RecipeError, match="cannot read image"):
        client.upload_image(tmp_path / "absent.png")


# --- nothing third-party escapes -------------------------------------------------------------

def _wait(client):
    with client.open_events("me") as stream:
        stream.wait("some-prompt")


CALLS = {
    "object_info": lambda c: c.object_info(),
    "system_stats": lambda c: c.system_stats(),
    "queue_prompt": lambda c: c.queue_prompt(graph_of(S11), client_id="me"),
    "history": lambda c: c.history("some-prompt"),
    "view": lambda c: c.view({"filename": "a.png", "subfolder": "", "type": "output"}),
    "interrupt": lambda c: c.interrupt("some-prompt"),
    "queue": lambda c: c.queue(),
    "open_events": lambda c: c.open_events("me").close(),
    "wait": _wait,
}
BROKEN = ["close", "garbage", "silent", "refused", "http-500", "bad-json"]


@pytest.mark.parametrize("kind", BROKEN)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_no_third_party_exception_escapes(kind, name, comfy_server, broken_server, closed_port):
    if kind == "refused":
        url = f"127.0.0.1:{closed_port}"
    elif kind == "http-500":
        url = comfy_server(S11, http_status={"/": 500}).url
    elif kind == "bad-json":
        url = comfy_server(S11, invalid_json={"/"}, history_delay=60).url
    else:
        url = broken_server(kind).url
    client = ComfyClient(url, timeouts=Timeouts(connect=0.5, read=0.2, idle=0.3))
    try:
        CALLS[name](client)
    except RecipeError as exc:
        assert isinstance(exc, RunError)   # exit code 1: the run failed, not the recipe
    else:
        # Garbage bodies pass only where the client reads no body: interrupt's answer is
        # empty, and opening a socket reads nothing yet.
        assert (kind, name) in {("bad-json", "interrupt"), ("bad-json", "open_events")}


# --- TLS ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", folder / "key.pem", "-out", folder / "cert.pem",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def test_https_and_wss_with_a_private_ca(comfy_server, certificate, monkeypatch):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    srv = comfy_server(S11, ssl_context=context)
    assert srv.url.startswith("https://")
    with pytest.raises(ConnectError, match="TLS"):
        ComfyClient(srv.url).object_info()
    with pytest.raises(ConnectError, match="TLS"):
        ComfyClient(srv.url).open_events("me")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    client, _, outcome = run(srv, S11)
    assert client.address.ws_base.startswith("wss://")
    assert outcome.status == "success"
    assert client.view(outcome.history["outputs"]["save"]["images"][0])[:8] == b"\x89PNG\r\n\x1a\n"
