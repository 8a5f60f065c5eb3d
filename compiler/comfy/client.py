"""ComfyClient: the HTTP calls to one ComfyUI server, and the door to its events.

Protocol facts are in ../shared/comfyui/REFERENCE.md (sections 0, A, E): open
the WebSocket *before* queueing and send its id as `client_id`
(`open_events`, then `queue_prompt`); a 200 from POST /prompt can still carry
node_errors. The wire and its exceptions are comfy/transport.py's; the
WebSocket events are comfy/events.py's.
"""
from __future__ import annotations

import mimetypes
import re
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union
from urllib.parse import quote

from compiler.comfy.address import Timeouts, headers_from_env, parse_server
from compiler.comfy.events import EventStream
from compiler.comfy.transport import Answer, Http, WebSocket, parse_json
from compiler.errors import (ProtocolError, RecipeError, RejectedError, Rejection, ServerError, UnknownPrompt,
                             printable)

__all__ = ["ComfyClient", "Queued", "JOB_STATUSES", "job_history"]

JOB_STATUSES = ("pending", "in_progress", "completed", "failed")   # GET /api/jobs/{id} (0.8.0)

_TOP_LEVEL = ("invalid_prompt", "prompt_no_outputs", "no_prompt")


@dataclass(frozen=True)
class Queued:
    prompt_id: str
    number: Any


def _excerpt(resp: Answer) -> str:
    text = " ".join(resp.content[:400].decode("utf-8", "replace").split())
    return (text[:160] + "…") if len(text) > 160 else (text or "(empty body)")


def _check_status(resp: Answer, method: str, path: str) -> None:
    if 300 <= resp.status < 400 and resp.location:
        error = ServerError(f"ComfyUI answered {method} {path} with HTTP {resp.status}, a redirect to "
                            f"{printable(resp.location[:200])}", resp.status)
        error.hint = "give --server the address it redirects to (e.g. https:// instead of http://)"
        raise error
    if not 200 <= resp.status < 300:
        raise ServerError(f"ComfyUI answered {method} {path} with HTTP {resp.status}: "
                          f"{_excerpt(resp)}", resp.status)


def _decode(resp: Answer, method: str, path: str) -> dict:
    body = parse_json(resp.content, f"{method} {path} answered HTTP {resp.status} with a body "
                                    f"that is not JSON: {_excerpt(resp)}")
    if not isinstance(body, dict):
        raise ProtocolError(f"{method} {path} answered JSON of the wrong shape: "
                            f"expected an object, got {type(body).__name__}")
    return body


def _rejected(answer: dict, prompt_id: str = "") -> RejectedError:
    """The refusal parsed once: one Rejection per (node, error), plus the
    top-level error when it is the whole story."""
    node_errors = answer.get("node_errors") or {}
    if not isinstance(node_errors, dict):
        raise ProtocolError("POST /prompt: node_errors is not an object")
    found = []
    for node_id, entry in node_errors.items():
        entry = entry if isinstance(entry, dict) else {}
        for err in entry.get("errors") or [{"message": "rejected"}]:
            found.append(Rejection(str(node_id), str(entry.get("class_type", "?")), _parts(err)))
    top = answer.get("error")
    top = top if isinstance(top, dict) else {"message": top}
    if top.get("type") in _TOP_LEVEL or not found:
        found.append(Rejection("", "", _parts(top) or "ComfyUI refused the prompt without saying why"))
    return RejectedError([RecipeError(r.format()) for r in found], node_errors=node_errors,
                         prompt_id=prompt_id, rejections=found)


def _parts(error: Any) -> str:
    error = error if isinstance(error, dict) else {"message": error}
    return ": ".join(str(p) for p in (error.get("message"), error.get("details")) if p)


def job_history(job: dict) -> Optional[dict]:
    """A job that ended, as the history entry it also is (outputs, status
    with its messages); None while it is pending or in progress."""
    if job.get("status") not in ("completed", "failed"):
        return None
    status = job.get("execution_status")
    return {"outputs": job.get("outputs") or {}, "status": status if isinstance(status, dict) else
            {"status_str": "success" if job["status"] == "completed" else "error", "messages": []}}


def _unsafe(name: Any) -> bool:
    return not isinstance(name, str) or name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name)


class ComfyClient:
    """HTTP calls and event streams for one ComfyUI server."""

    def __init__(self, server: str, *, headers: Optional[dict] = None,
                 timeouts: Timeouts = Timeouts()):
        self.address = parse_server(server)
        self.timeouts = timeouts
        self._headers = {**headers_from_env(), **(headers or {})}
        self._http = Http()
        self._jobs: Optional[bool] = None   # does the server have /api/jobs? asked once

    @property
    def headers(self) -> dict:
        """The headers sent with every request and the WebSocket handshake (a copy)."""
        return dict(self._headers)

    def describe(self) -> dict:
        """For a run record: where we talked to, never a credential or a header value."""
        return {"server": self.address.http_base, "websocket": self.address.ws_base,
                "headers": sorted(self._headers), "timeouts": asdict(self.timeouts)}

    def _call(self, method: str, path: str, **kwargs) -> Answer:
        return self._http.request(method, self.address.http_base + path, f"{method} {path}",
                                  headers=self._headers,
                                  timeout=(self.timeouts.connect, self.timeouts.read), **kwargs)

    def _json(self, method: str, path: str, **kwargs) -> dict:
        resp = self._call(method, path, **kwargs)
        _check_status(resp, method, path)
        return _decode(resp, method, path)

    def object_info(self) -> dict:
        return self._json("GET", "/object_info")

    def object_info_of(self, class_type: str) -> Optional[dict]:
        """GET /object_info/{class}: that one class's entry, or None for a class
        the server does not have (it answers `{}`)."""
        path = f"/object_info/{quote(class_type, safe='')}"
        body = self._json("GET", path)
        entry = body.get(class_type)
        if body and not isinstance(entry, dict):
            raise ProtocolError(f"GET {path}: the answer has no entry for {class_type}")
        return entry

    def system_stats(self) -> dict:
        body = self._json("GET", "/system_stats")
        if not isinstance(body.get("system"), dict):
            raise ProtocolError("GET /system_stats: the answer has no `system` object")
        return body

    def queue_prompt(self, graph: dict, *, client_id: str, extra_data: Optional[dict] = None,
                     prompt_id: Optional[str] = None) -> Queued:
        """POST /prompt. Refusals raise RejectedError, also on a 200 that skipped outputs."""
        body = {"prompt": graph, "client_id": client_id, "extra_data": extra_data,
                "prompt_id": prompt_id}
        resp = self._call("POST", "/prompt", json={k: v for k, v in body.items() if v is not None})
        if resp.status == 400:
            try:
                answer = _decode(resp, "POST", "/prompt")
            except ProtocolError:
                answer = {}
            if "error" in answer or "node_errors" in answer:
                raise _rejected(answer)
        _check_status(resp, "POST", "/prompt")
        answer = _decode(resp, "POST", "/prompt")
        pid = answer.get("prompt_id")
        if not isinstance(pid, str) or not pid:
            raise ProtocolError("POST /prompt: the answer has no prompt_id")
        if answer.get("node_errors"):   # queued, but only its valid outputs (fact 13)
            raise _rejected(answer, prompt_id=pid)
        return Queued(pid, answer.get("number"))

    def history(self, prompt_id: str) -> Optional[dict]:
        """The history entry of a finished prompt, or None while the server says `{}`."""
        path = f"/history/{quote(prompt_id, safe='')}"
        body = self._json("GET", path)
        if body and not isinstance(body.get(prompt_id), dict):
            raise ProtocolError(f"GET {path}: the answer has no entry for prompt {prompt_id}")
        return body[prompt_id] if body else None

    def jobs_supported(self) -> bool:
        """Whether the server has /api/jobs (ComfyUI 0.8.0 and later): asked
        once, with GET /api/jobs?limit=1. Its /api/jobs/{id} answers 404 for
        an unknown id, so that route alone cannot tell."""
        if self._jobs is None:
            resp = self._call("GET", "/api/jobs", params={"limit": 1})
            try:
                body = _decode(resp, "GET", "/api/jobs") if resp.status == 200 else {}
            except ProtocolError:
                body = {}
            self._jobs = isinstance(body.get("jobs"), list)
        return self._jobs

    def job(self, prompt_id: str) -> dict:
        """GET /api/jobs/{id}: status pending | in_progress | completed | failed,
        and once it ended its outputs and execution_status. UnknownPrompt for
        an id the server does not know."""
        path = f"/api/jobs/{quote(prompt_id, safe='')}"
        resp = self._call("GET", path)
        if resp.status == 404:
            raise UnknownPrompt(f"the server does not know prompt {prompt_id} (restarted, or never queued)")
        _check_status(resp, "GET", path)
        body = _decode(resp, "GET", path)
        if body.get("status") not in JOB_STATUSES:
            raise ProtocolError(f"GET {path}: status {body.get('status')!r} is not one of {', '.join(JOB_STATUSES)}")
        return body

    def finished(self, prompt_id: str) -> Optional[dict]:
        """The history entry of a prompt that ended, else None while it is
        queued or running. From /api/jobs/{id} where the server has it: there
        a prompt leaves the running list and enters the history under one
        lock, so "not yet" is never a guess (REFERENCE fact 3). Else /history."""
        return job_history(self.job(prompt_id)) if self.jobs_supported() else self.history(prompt_id)

    def view(self, image_ref: Mapping) -> bytes:
        """Download one output ({"filename","subfolder","type"}, as history reports it)."""
        ref = image_ref if isinstance(image_ref, Mapping) else {}
        name, sub = ref.get("filename"), ref.get("subfolder") or ""
        if not name or _unsafe(name) or _unsafe(sub) or re.search(r"[/\\]", name):
            raise ProtocolError(f"the server reported an unsafe file reference: {image_ref!r}")
        params = {"filename": name, "subfolder": sub, "type": ref.get("type") or "output"}
        resp = self._call("GET", "/view", params=params)
        _check_status(resp, "GET", "/view")
        return resp.content

    def interrupt(self, prompt_id: Optional[str] = None) -> None:
        """Stop `prompt_id` if it is the one running (None: whatever runs)."""
        resp = self._call("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})
        _check_status(resp, "POST", "/interrupt")

    def delete_queued(self, prompt_ids: list) -> None:
        """Drop prompts that have not started (POST /queue delete); a running
        one is not affected: interrupt it."""
        resp = self._call("POST", "/queue", json={"delete": list(prompt_ids)})
        _check_status(resp, "POST", "/queue")

    def queue(self) -> dict:
        body = self._json("GET", "/queue")
        if not all(isinstance(body.get(k), list) for k in ("queue_running", "queue_pending")):
            raise ProtocolError("GET /queue: expected queue_running and queue_pending lists")
        return body

    def upload_image(self, path: Union[str, Path], *, subfolder: str = "",
                     overwrite: bool = False, name: Optional[str] = None) -> dict:
        """POST /upload/image into the input folder, as `name` (default: the
        file's own name); returns {"name","subfolder","type"}."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RecipeError(f"cannot read image {path}: {exc.strerror or exc}") from None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        body = self._json("POST", "/upload/image", files={"image": (name or path.name, data, mime)},
                          data={"type": "input", "subfolder": subfolder,
                                "overwrite": "true" if overwrite else "false"})
        if not isinstance(body.get("name"), str):
            raise ProtocolError("POST /upload/image: the answer has no file name")
        return body

    def open_events(self, client_id: Optional[str] = None, *,
                    preview_metadata: bool = True) -> EventStream:
        """Connect the WebSocket; do this before queue_prompt, with the same client_id."""
        return EventStream(self, client_id or uuid.uuid4().hex, preview_metadata)

    def connect_websocket(self, url: str) -> WebSocket:
        """A WebSocket to `url` with this client's headers, TLS settings and connect timeout."""
        return WebSocket(url, headers=self._headers, timeout=self.timeouts.connect,
                         sslopt={"context": self._http.tls()} if url.startswith("wss:") else {})

    def close(self) -> None:
        self._http.close()
