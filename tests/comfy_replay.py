"""Pure helpers behind tests/comfy_server.py: read the recorded transcripts, map their node
ids onto a submitted graph, validate a prompt the way ComfyUI does first, make the PNG,
.latent and preview bytes ComfyUI would serve, and keep one queued prompt's bookkeeping
(`Job`). No sockets here, so each piece can be reasoned about (and tested) on its own.

The recordings live in ../shared/comfyui (override with COMFY_SHARED); their format is
described in that folder's README.md.
"""
from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import struct
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional

from PIL import Image
from PIL.PngImagePlugin import PngInfo


def _shared_dir() -> Path:
    if os.environ.get("COMFY_SHARED"):
        return Path(os.environ["COMFY_SHARED"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "comfyui").is_dir():
            return parent / "shared" / "comfyui"
    return Path("/work/shared/comfyui")


SHARED = _shared_dir()
TRANSCRIPTS = SHARED / "transcripts"

# Keys ComfyUI strips from extra_data before queue and history (execution.py:146).
SENSITIVE = ("auth_token_comfy_org", "api_key_comfy_org")
# Messages the real server also stores in history status.messages.
HISTORY_MESSAGES = ("execution_start", "execution_cached", "execution_success",
                    "execution_error", "execution_interrupted")
TERMINAL = ("execution_success", "execution_error", "execution_interrupted")
# Sent to every socket when the running prompt has no client_id (REFERENCE A2 routing).
BROADCAST = {"progress", "progress_state", "execution_interrupted"}
SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": 104857600.0,
                    "extension": {"manager": {"supports_v4": True}}}
SYSTEM_STATS = {
    "system": {"os": "posix", "ram_total": 67108864000, "ram_free": 52428800000,
               "comfyui_version": "0.8.0", "required_frontend_version": "1.36.13",
               "installed_templates_version": "0.7.69", "required_templates_version": "0.7.69",
               "python_version": "3.12.3 (main, Nov  6 2025, 13:44:16) [GCC 13.3.0]",
               "pytorch_version": "2.9.1+cpu", "embedded_python": False,
               "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]},
    "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 67108864000,
                 "vram_free": 52428800000, "torch_vram_total": 67108864000,
                 "torch_vram_free": 52428800000}]}


def scenario_names() -> list[str]:
    return sorted(p.stem for p in TRANSCRIPTS.glob("*.jsonl"))


@lru_cache(maxsize=1)
def object_info_bytes() -> bytes:
    """The recorded GET /object_info body (800 KB): read once per process."""
    return (SHARED / "object_info.json").read_bytes()


@lru_cache(maxsize=1)
def object_info() -> dict:
    return json.loads(object_info_bytes())


# The combo inputs that list a model folder's files, as ComfyUI's loaders name them.
MODEL_INPUTS = {"loras": ("lora_name",), "checkpoints": ("ckpt_name",), "vae": ("vae_name",),
                "diffusion_models": ("unet_name",),
                "text_encoders": ("clip_name", "clip_name1", "clip_name2", "clip_name3", "clip_name4")}


def with_model(info: dict, folder: str, name: str) -> dict:
    """A copy of `info` in which every loader of `folder` also lists `name`, as
    GET /object_info answers once the file is in models/<folder>/ (sorted, both
    combo styles). `info` itself is left alone: the recorded one is shared."""
    if folder not in MODEL_INPUTS:
        raise ValueError(f"unknown model folder {folder!r}; known: {', '.join(MODEL_INPUTS)}")
    info = copy.deepcopy(info)
    for node in info.values():
        for part in ("required", "optional"):
            for input_name, spec in ((node.get("input") or {}).get(part) or {}).items():
                options = _combo_list(spec) if input_name in MODEL_INPUTS[folder] else None
                if options is not None and name not in options:
                    options.append(name)
                    options.sort()
    return info


def _combo_list(spec) -> Optional[list]:
    if isinstance(spec, list) and spec and isinstance(spec[0], list):
        return spec[0]
    if isinstance(spec, list) and len(spec) > 1 and spec[0] == "COMBO" and isinstance(spec[1], dict):
        return spec[1].setdefault("options", [])
    return None


@dataclass(frozen=True)
class Step:
    """One thing the replay does, at recorded time `t`.

    kind: "ws" (send `message`), "binary" (send a preview frame), "drop" (the socket went
    away), "reconnect" (the client came back), "interrupt" (the client sent POST /interrupt).
    """
    t: float
    kind: str
    message: Optional[dict] = None


@dataclass(frozen=True)
class Scenario:
    name: str
    graph: dict          # the graph the recording submitted: the source of retargeting
    status: int          # its POST /prompt answer ...
    answer: dict         # ... and body
    prompt_id: str       # the recorded id, replaced by each run's own ("" if never queued)
    steps: tuple[Step, ...]


@lru_cache(maxsize=None)
def load_scenario(name: str) -> Scenario:
    path = TRANSCRIPTS / f"{name}.jsonl"
    if not path.is_file():
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    post = next(r for r in records
                if r["kind"] == "http" and r["method"] == "POST" and r["path"] == "/prompt")
    answer = post["response"]
    return Scenario(name, post["request"]["prompt"], post["status"], answer,
                    answer.get("prompt_id", ""), tuple(_steps(records)))


def _steps(records: list[dict]) -> Iterator[Step]:
    started = reconnected = False
    for i, r in enumerate(records):
        kind = r["kind"]
        if kind == "ws":
            message = r["message"]
            started = started or message["type"] == "execution_start"
            # Before execution_start come the connect greeting and the queue put/get
            # statuses; the server makes those live, from its own queue.
            if not started or (reconnected and _answers_reconnect(message)):
                continue
            reconnected = False
            yield Step(r["t"], "ws", message)
        elif not started:
            continue
        elif kind == "ws-binary":
            yield Step(r["t"], "binary", {"length": r["length"], "header_hex": r["header_hex"]})
        elif kind == "client" and "reconnect" in r["event"]:
            reconnected = True
            # The greeting's `executing` names the node the server moved on to while the
            # client was away: the replay must know it, though it never sent it.
            greeting = (g["message"] for g in records[i + 1:i + 3] if g["kind"] == "ws")
            yield Step(r["t"], "reconnect", next((m for m in greeting if m["type"] == "executing"
                                                  and _answers_reconnect(m)), None))
        elif kind == "client":
            yield Step(r["t"], "drop")
        elif kind == "http" and r["path"] == "/interrupt":
            yield Step(r["t"], "interrupt")


def _answers_reconnect(message: dict) -> bool:
    """The greeting a reconnecting client gets (server.py:245-303): sent live instead."""
    data = message["data"]
    return ((message["type"] == "status" and "sid" in data)
            or (message["type"] == "executing" and "prompt_id" not in data))


# --- retargeting: recorded node ids -> the submitted graph's ids ---------------------------

def node_map(recorded: dict, submitted: dict) -> dict[str, str]:
    """The k-th node of class X in the recording <-> the k-th node of class X submitted."""
    by_class: dict[str, list[str]] = defaultdict(list)
    for node_id, node in submitted.items():
        if isinstance(node, dict):
            by_class[node.get("class_type")].append(node_id)
    seen: dict[str, int] = defaultdict(int)
    ids = {}
    for node_id, node in recorded.items():
        cls = node["class_type"]
        if seen[cls] < len(by_class[cls]):
            ids[node_id] = by_class[cls][seen[cls]]
        seen[cls] += 1
    return ids


_NODE_FIELDS = ("node", "display_node", "node_id", "display_node_id", "real_node_id")
# Messages that only make sense about a node the client has; the terminal ones are kept
# even then, because without them the run would never end.
_DROP_UNMAPPED = {"executing", "executed", "progress", "progress_state"}


def retarget(message: dict, ids: dict, old_pid: str, new_pid: str) -> Optional[dict]:
    """A recorded message as it would read for the submitted graph, or None to drop it."""
    kind = message["type"]
    data = _swap(copy.deepcopy(message["data"]), old_pid, new_pid)
    if not _map_fields(data, ids) and kind in _DROP_UNMAPPED:
        return None
    for key in ("executed", "current_outputs"):
        if isinstance(data.get(key), list):
            data[key] = [ids[n] for n in data[key] if n in ids]
    nodes = data.get("nodes")
    if isinstance(nodes, list):
        data["nodes"] = [ids[n] for n in nodes if n in ids]
    elif isinstance(nodes, dict):   # progress_state: keep its shape, only our nodes
        data["nodes"] = {ids[k]: v for k, v in nodes.items() if k in ids and _map_fields(v, ids)}
        if not data["nodes"]:
            return None
    if "timestamp" in data:
        data["timestamp"] = int(time.time() * 1000)
    return {"type": kind, "data": data}


def _map_fields(data: dict, ids: dict) -> bool:
    """Rewrite node-id fields in place; False if one names a node the client lacks."""
    ok = True
    for key in _NODE_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            ok = ok and value in ids
            data[key] = ids.get(value, value)
    return ok


def _swap(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, dict):
        return {k: _swap(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_swap(v, old, new) for v in obj]
    return new if old and obj == old else obj


def retarget_answer(answer: dict, ids: dict) -> dict:
    """A recorded 4xx /prompt body with node_errors moved onto the submitted ids."""
    out = copy.deepcopy(answer)
    if isinstance(out.get("node_errors"), dict):
        out["node_errors"] = retarget_node_errors(out["node_errors"], ids)
    return out


def retarget_node_errors(node_errors: dict, ids: dict) -> dict:
    out = {}
    for node_id, entry in node_errors.items():
        if node_id not in ids:
            continue
        entry = copy.deepcopy(entry)
        entry["dependent_outputs"] = [ids[n] for n in entry.get("dependent_outputs", []) if n in ids]
        for err in entry.get("errors", []):
            link = err.get("extra_info", {}).get("linked_node")
            if isinstance(link, list) and link:
                link[0] = ids.get(link[0], link[0])
        out[ids[node_id]] = entry
    return out


# --- what ComfyUI checks before anything else (execution.py:1001-1033) ---------------------

def validate_prompt(prompt: dict, info: dict, targets: Optional[list] = None):
    """(error, output ids): error is the 400 body for invalid_prompt / prompt_no_outputs."""
    if not isinstance(prompt, dict):
        raise TypeError("prompt is not an object")   # the real server fails here with a 500
    outputs = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return _invalid("Cannot execute because a node is missing the class_type property.",
                            f"Node ID '#{node_id}'"), []
        cls = node["class_type"]
        if cls not in info:
            return _invalid(f"Cannot execute because node {cls} does not exist.",
                            f"Node ID '#{node_id}'"), []
        if info[cls].get("output_node") and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        return {"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                          "details": "", "extra_info": {}}, "node_errors": {}}, []
    return None, outputs


def _invalid(message: str, details: str) -> dict:
    return {"error": {"type": "invalid_prompt", "message": message, "details": details,
                      "extra_info": {}}, "node_errors": {}}


NO_PROMPT = {"error": {"type": "no_prompt", "message": "No prompt provided",
                       "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}


# --- files -----------------------------------------------------------------------------------

def saveimage_chunks(prompt: dict, extra_data: dict) -> dict[str, str]:
    """The tEXt chunks SaveImage writes (nodes.py:1578-1631, REFERENCE A4)."""
    chunks = {"prompt": json.dumps(prompt)}
    for key, value in (extra_data.get("extra_pnginfo") or {}).items():
        chunks[key] = json.dumps(value)
    return chunks


def png_bytes(chunks: dict[str, str], size: tuple[int, int] = (64, 64), image=None) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    (image or Image.new("RGB", size, (96, 96, 96))).save(buf, "PNG", pnginfo=info, compress_level=4)
    return buf.getvalue()


def latent_bytes(data: bytes, shape: tuple, dtype: str = "F32", metadata: Optional[dict] = None) -> bytes:
    """A .latent file as SaveLatent writes it (comfy.utils.save_torch_file): safetensors with
    `latent_tensor` ([B, C, H, W], little-endian raw `data`) and an empty
    `latent_format_version_0`; 8-byte header length, JSON header padded with spaces to 8."""
    header = {"latent_tensor": {"dtype": dtype, "shape": list(shape), "data_offsets": [0, len(data)]},
              "latent_format_version_0": {"dtype": "F32", "shape": [0], "data_offsets": [len(data), len(data)]}}
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def zero_latent(graph: dict) -> bytes:
    """An SD1.5-shaped 8x8 latent of zeros, when a test gives no latent_fn."""
    return latent_bytes(bytes(4 * 4 * 8 * 8), (1, 4, 8, 8), metadata={"prompt": json.dumps(graph)})


@lru_cache(maxsize=1)
def preview_jpeg() -> bytes:
    """A latent2rgb-sized sampler preview: the recording kept only the frame headers."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 80, 60)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def preview_frame(job: "Job", with_metadata: bool) -> bytes:
    """Binary frame format 1, or 4 when the client negotiated preview metadata (A2)."""
    if not with_metadata:
        return struct.pack(">II", 1, 1) + preview_jpeg()
    meta = json.dumps({"node_id": job.current, "prompt_id": job.prompt_id,
                       "display_node_id": job.current, "parent_node_id": None,
                       "real_node_id": job.current, "image_type": "image/jpeg"}).encode()
    return struct.pack(">II", 4, len(meta)) + meta + preview_jpeg()


def upload_name(files: dict, key: tuple, data: bytes, overwrite: bool) -> str:
    """server.py:373-424: without overwrite, an identical file is reused, another renamed."""
    kind, sub, name = key
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    n = 0
    while (kind, sub, name) in files and not overwrite and files[(kind, sub, name)] != data:
        n += 1
        name = f"{stem} ({n}){dot}{ext}"
    return name


def match_fault(spec, path: str):
    """The fault configured for `path` or a path above it, or None."""
    for key in spec:
        if path == key or path.startswith(key.rstrip("/") + "/"):
            return spec[key] if isinstance(spec, dict) else True
    return None


# --- one queued prompt ---------------------------------------------------------------------

@dataclass(eq=False)
class Job:
    """One queued prompt and what its replay has done so far."""
    seq: int
    number: Any
    prompt_id: str
    prompt: dict
    extra_data: dict
    outputs: list
    client_id: Optional[str]
    ids: dict
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    current: Optional[str] = None                       # the node now executing
    executed: list = field(default_factory=list)
    messages: list = field(default_factory=list)        # for history status.messages
    ui: dict = field(default_factory=dict)              # for history outputs
    sent: int = 0
    finished: bool = False

    def row(self) -> list:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]

    def ended(self) -> bool:
        return any(kind in TERMINAL for kind, _ in self.messages)

    def history_entry(self) -> dict:
        """The /history body main.py:234-239 writes, from what the replay actually sent."""
        success = any(kind == "execution_success" for kind, _ in self.messages)
        return {"prompt": self.row(), "outputs": self.ui,
                "status": {"status_str": "success" if success else "error",
                           "completed": success, "messages": self.messages},
                "meta": {n: {"node_id": n, "display_node": n, "parent_node": None,
                             "real_node_id": n} for n in self.ui}}
