"""A local ComfyUI 0.8.0 stand-in for tests: real HTTP and WebSocket on 127.0.0.1, replaying
what a real server sent (../shared/comfyui/transcripts), never invented shapes.

    with ComfyTestServer("01-success-two-characters-hooks", time_scale=0.0) as srv:
        ComfyClient(srv.url) ...
        srv.requests        # every request received: (method, path, query, body, headers)

A submitted graph runs by replaying the scenario's WebSocket messages with the recorded node
ids mapped onto the graph's own (by class_type, in order: see comfy_replay.node_map), one
prompt at a time from a real queue. Faults (constructor keywords, any scenario):

    http_status={"/prompt": 500}   that path (and below it) answers that status
    invalid_json={"/history"}      200 with a body that is not JSON; "/ws": text frames too
    drop_ws_after=N                close the client's socket after N messages of each run
    history_delay=s                /history stays {} s seconds after the run ended (fact 3)
    slow={"/prompt": s}            wait s seconds before answering
    evil_filename="../../evil.png" SaveImage reports this file name
    node_errors_on_200={...}       POST /prompt answers 200 with these node_errors (fact 13)
    start_when_queued=N            the first prompt starts only once N are queued (at most 5 s),
                                   as on a server busy with someone else's: "queued ahead" is then
                                   a fact of the order of requests, not of the machine's speed

A server as recorded has no /api/jobs (aiohttp's plain 404). `jobs=True` serves it as
ComfyUI 0.8.0 does (server.py:802-825, comfy_execution/jobs.py): GET /api/jobs?limit=N
and GET /api/jobs/{id} with status pending | in_progress | completed | failed (an
interrupted prompt is `failed`), outputs and execution_status once it ended, and 404
{"error": "Job not found"} for an unknown id. A job enters the history as it leaves the
running list, under one lock: `history_delay` delays /history only.

Files that depend on the submitted graph (the leak probe's tests): a SaveLatent node, which
no recording has, is run just before execution_success and its file is `latent_fn(graph)`
(safetensors bytes, see comfy_replay.latent_bytes; default a zero latent); with
`image_fn(graph) -> PIL.Image`, every SaveImage of every run writes a picture of its own.

The catalogue can change mid-test, as when someone copies a file onto the server:

    srv.add_model("loras", "new.safetensors")   # every LoRA loader now lists it
    srv.set_object_info(info)                   # or a whole GET /object_info answer

Scenario 09 pauses at its recorded interrupt point until the client interrupts (at most
`interrupt_wait` s, then it ends as recorded); scenario 10 closes the socket where the
recording lost it and waits up to `reconnect_wait` s for the client to come back.
`ssl_context` serves https/wss instead.

aiohttp runs in a background thread with its own event loop; all state is touched only
from that loop, except `requests`, which tests read.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import threading
import time
import uuid
from http import HTTPStatus
from typing import Any, NamedTuple, Optional

from aiohttp import WSCloseCode, WSMsgType, web

try:
    from . import comfy_replay as replay
except ImportError:   # tests/ is not a package: pytest puts it on sys.path instead
    import comfy_replay as replay

Job = replay.Job


class Recorded(NamedTuple):
    method: str
    path: str
    query: dict
    body: Any          # parsed JSON, or None
    headers: dict
    peer: tuple = ()   # the client's (address, port): which TCP connection it came on


class ComfyTestServer:
    def __init__(self, scenario: str = "01-success-two-characters-hooks", time_scale: float = 0.0,
                 *, http_status=None, invalid_json=(), drop_ws_after=None, history_delay=0.0,
                 slow=None, evil_filename=None, node_errors_on_200=None,
                 interrupt_wait=3.0, reconnect_wait=5.0, ssl_context=None, latent_fn=None, image_fn=None,
                 jobs=False, start_when_queued=0):
        self.scenario = replay.load_scenario(scenario)
        self.time_scale = time_scale
        self.http_status, self.slow = http_status or {}, slow or {}
        self.invalid_json = invalid_json or ()
        self.drop_ws_after, self.history_delay = drop_ws_after, history_delay
        self.evil_filename, self.node_errors_on_200 = evil_filename, node_errors_on_200
        # Scenario 09/10 pause for the client's interrupt / reconnect, but not forever.
        self.interrupt_wait, self.reconnect_wait = interrupt_wait, reconnect_wait
        self.ssl_context = ssl_context
        self.latent_fn, self.image_fn = latent_fn, image_fn
        self.jobs = jobs
        self.start_when_queued = start_when_queued
        self._saved_files = itertools.count(1)    # SaveLatent/image_fn numbering, like the real counter
        self.requests: list[Recorded] = []
        self.url = ""
        self._info: Optional[dict] = None      # None: the recorded /object_info
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._flags: dict[str, bool] = {}      # sid -> negotiated supports_preview_metadata
        self._pending: list[Job] = []
        self._running: Optional[Job] = None
        self._history: dict[str, tuple[dict, float]] = {}    # pid -> (entry, visible from)
        self._files: dict[tuple, bytes] = {}                 # (type, subfolder, name) -> bytes
        self._counter = 0
        self._seq = itertools.count()
        self._tasks: set = set()
        self._crash: Optional[Exception] = None

    # --- lifecycle: a private event loop in a daemon thread -----------------------------------
    def __enter__(self) -> "ComfyTestServer":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"comfy-{self.scenario.name}")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        if self._crash is not None:
            raise RuntimeError("the ComfyTestServer replay crashed") from self._crash

    async def _start(self) -> None:
        self._wake = asyncio.Event()
        self._runner = web.AppRunner(self._app(), shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{port}"
        self._spawn(self._worker())

    async def _stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        closing = [asyncio.ensure_future(ws.close()) for ws in self._sockets.values()]
        if closing:
            await asyncio.wait(closing, timeout=1)
        await self._runner.cleanup()
        # Handlers still asleep (the `slow` fault) would otherwise be destroyed
        # pending at exit, printing noise after pytest's summary line.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    # --- the catalogue ----------------------------------------------------------------------
    @property
    def object_info(self) -> dict:
        """What GET /object_info answers now (and what POST /prompt validates against)."""
        return self._info if self._info is not None else replay.object_info()

    def set_object_info(self, info: dict) -> None:
        self._info = info   # one assignment: the loop thread sees the old or the new, whole

    def add_model(self, folder: str, name: str) -> None:
        """A file appears in models/<folder>/ (loras, checkpoints, vae, ...)."""
        self.set_object_info(replay.with_model(self.object_info, folder, name))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=100 * 1024 * 1024)
        routes = [("GET", "/object_info", self._object_info),
                  ("GET", "/object_info/{cls}", self._object_info_one),
                  ("GET", "/system_stats", self._system_stats),
                  ("GET", "/ws", self._ws), ("GET", "/prompt", self._prompt_info),
                  ("POST", "/prompt", self._post_prompt), ("GET", "/queue", self._get_queue),
                  ("POST", "/queue", self._post_queue), ("POST", "/interrupt", self._interrupt),
                  ("GET", "/history", self._history_all), ("GET", "/history/{pid}", self._history_one),
                  ("GET", "/view", self._view), ("POST", "/upload/image", self._upload)]
        for prefix in ("", "/api"):     # every route is also under /api (server.py:988-1000)
            for method, path, handler in routes:
                app.router.add_route(method, prefix + path, handler)
        if self.jobs:   # registered as /api/jobs itself, so there is no un-prefixed twin
            app.router.add_route("GET", "/api/jobs", self._jobs_list)
            app.router.add_route("GET", "/api/jobs/{pid}", self._job_one)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        path = request.path[4:] if request.path.startswith("/api/") else request.path
        self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                      await _json_or_none(request), dict(request.headers),
                                      tuple(request.transport.get_extra_info("peername") or ())))
        if delay := replay.match_fault(self.slow, path):
            await asyncio.sleep(delay)
        if status := replay.match_fault(self.http_status, path):
            return _error_page(status)
        response = await handler(request)
        if replay.match_fault(self.invalid_json, path) and isinstance(response, web.Response) \
                and response.content_type == "application/json":
            text = response.text or "{}"
            return web.Response(text=text[: len(text) // 2], content_type="application/json")
        return response

    # --- HTTP endpoints ---------------------------------------------------------------------
    async def _object_info(self, request):
        info = self._info
        body = replay.object_info_bytes() if info is None else json.dumps(info).encode()
        return web.Response(body=body, content_type="application/json")

    async def _object_info_one(self, request):
        cls = request.match_info["cls"]
        info = self.object_info
        return web.json_response({cls: info[cls]} if cls in info else {})

    async def _system_stats(self, request):
        return web.json_response(replay.SYSTEM_STATS)

    async def _prompt_info(self, request):
        return web.json_response({"exec_info": self._queue_info()["exec_info"]})

    async def _post_prompt(self, request):
        try:
            body = json.loads(await request.read())
            if "prompt" not in body:
                return web.json_response(replay.NO_PROMPT, status=400)
            error, outputs = replay.validate_prompt(body["prompt"], self.object_info,
                                                    body.get("partial_execution_targets"))
        except (ValueError, TypeError):
            return _error_page(500)        # the real handler raises: aiohttp answers 500
        if error:
            return web.json_response(error, status=400)
        ids = replay.node_map(self.scenario.graph, body["prompt"])
        if self.scenario.status != 200:    # 04-06: the recorded refusal, on the client's ids
            return web.json_response(replay.retarget_answer(self.scenario.answer, ids),
                                     status=self.scenario.status)
        job = self._enqueue(body, outputs, ids)
        node_errors = self.node_errors_on_200
        if node_errors is None:
            recorded = self.scenario.answer.get("node_errors", {})
            node_errors = replay.retarget_node_errors(recorded, ids)
        await self._broadcast_status()
        return web.json_response({"prompt_id": job.prompt_id, "number": job.number,
                                  "node_errors": node_errors})

    def _enqueue(self, body: dict, outputs: list, ids: dict) -> Job:
        """server.py:854-905: number, front, client_id into extra_data, create_time."""
        if "number" in body:
            number = float(body["number"])
        else:
            number = -self._counter if body.get("front") else self._counter
            self._counter += 1
        extra = {k: v for k, v in (body.get("extra_data") or {}).items()
                 if k not in replay.SENSITIVE}
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        extra["create_time"] = int(time.time() * 1000)
        job = Job(next(self._seq), number, str(body.get("prompt_id") or uuid.uuid4()),
                  body["prompt"], extra, outputs, extra.get("client_id"), ids)
        self._pending.append(job)
        self._wake.set()
        return job

    async def _get_queue(self, request):
        running = [self._running.row()] if self._running else []
        return web.json_response({"queue_running": running,
                                  "queue_pending": [job.row() for job in self._pending]})

    async def _post_queue(self, request):
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error_page(500)
        if body.get("clear"):
            self._pending.clear()
        doomed = set(body.get("delete", ()))
        self._pending = [job for job in self._pending if job.prompt_id not in doomed]
        await self._broadcast_status()
        return web.Response()

    async def _interrupt(self, request):
        """{"prompt_id": X} stops X only if it runs; {} or no body stops whatever runs."""
        body = await _json_or_none(request)
        wanted = body.get("prompt_id") if isinstance(body, dict) else None
        job = self._running
        if job and wanted in (None, job.prompt_id):
            job.interrupt.set()
        return web.Response()

    def _visible(self, prompt_id: str) -> Optional[dict]:
        entry, visible_from = self._history.get(prompt_id, (None, 0.0))
        return entry if entry is not None and time.monotonic() >= visible_from else None

    async def _history_one(self, request):
        pid = request.match_info["pid"]
        entry = self._visible(pid)
        return web.json_response({pid: entry} if entry else {})

    async def _history_all(self, request):
        done = {pid: e for pid in self._history if (e := self._visible(pid))}
        keep = int(request.query.get("max_items", len(done)) or 0)
        return web.json_response(dict(list(done.items())[len(done) - keep:]) if keep else {})

    def _job(self, pid: str) -> Optional[dict]:
        """One job as comfy_execution/jobs.py shapes it, or None if unknown."""
        if pid in self._history:
            entry = self._history[pid][0]
            failed = entry["status"]["status_str"] != "success"
            job = {"id": pid, "status": "failed" if failed else "completed", "priority": entry["prompt"][0],
                   "create_time": entry["prompt"][3].get("create_time"),
                   "outputs_count": sum(len(v) for o in entry["outputs"].values() for v in o.values()),
                   "outputs": entry["outputs"], "execution_status": entry["status"]}
            error = next((d for k, d in entry["status"]["messages"] if k == "execution_error"), None)
            return {**job, "execution_error": error} if error else job
        waiting = {j.prompt_id: (j, "pending") for j in self._pending}
        if self._running is not None:
            waiting[self._running.prompt_id] = (self._running, "in_progress")
        if pid not in waiting:
            return None
        job, status = waiting[pid]
        return {"id": pid, "status": status, "priority": job.number,
                "create_time": job.extra_data.get("create_time"), "outputs_count": 0}

    async def _jobs_list(self, request):
        pids = [*self._history][::-1] + ([self._running.prompt_id] if self._running else []) + \
            [j.prompt_id for j in self._pending]
        limit = int(request.query.get("limit") or len(pids) or 1)
        return web.json_response({"jobs": [self._job(p) for p in pids[:limit]],
                                  "pagination": {"offset": 0, "limit": limit, "total": len(pids),
                                                 "has_more": len(pids) > limit}})

    async def _job_one(self, request):
        job = self._job(request.match_info["pid"])
        return web.json_response(job) if job else web.json_response({"error": "Job not found"}, status=404)

    async def _view(self, request):
        q = request.query
        name, kind, sub = q.get("filename", ""), q.get("type", "output"), q.get("subfolder", "")
        if not name or name.startswith("/") or ".." in name or kind not in ("output", "input", "temp"):
            return web.Response(status=400)
        if sub.startswith("/") or ".." in sub.split("/"):
            return web.Response(status=403)
        body = self._files.get((kind, sub, name))
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, content_type=mimetypes.guess_type(name)[0] or "image/png",
                            headers={"Content-Disposition": f'filename="{name}"'})

    async def _upload(self, request):
        form = await request.post()
        image, kind = form.get("image"), form.get("type", "input")
        sub, overwrite = form.get("subfolder", ""), form.get("overwrite") in ("true", "1")
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        if kind not in ("input", "temp", "output"):
            return _error_page(500)
        if sub.startswith("/") or ".." in sub.split("/"):
            return web.Response(status=400)
        data = image.file.read()
        name = replay.upload_name(self._files, (kind, sub, image.filename), data, overwrite)
        self._files[(kind, sub, name)] = data
        return web.json_response({"name": name, "subfolder": sub, "type": kind})

    # --- WebSocket --------------------------------------------------------------------------
    async def _ws(self, request):
        sid = request.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self._send(ws, {"type": "status", "data": {"status": self._queue_info(), "sid": sid}})
        job = self._running
        if job and job.client_id == sid and job.current:   # a reconnect mid-run
            await self._send(ws, {"type": "executing", "data": {"node": job.current}})
        self._sockets[sid] = ws   # only now, so the replay cannot overtake the greeting
        first = True
        try:
            async for msg in ws:
                if first and msg.type == WSMsgType.TEXT:
                    await self._feature_flags(ws, sid, msg.data)
                first = False
        finally:
            if self._sockets.get(sid) is ws:
                del self._sockets[sid]
        return ws

    async def _feature_flags(self, ws, sid: str, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "feature_flags":
            self._flags[sid] = bool((message.get("data") or {}).get("supports_preview_metadata"))
            await self._send(ws, {"type": "feature_flags", "data": replay.SERVER_FEATURES})

    async def _send(self, ws, message: Optional[dict] = None, frame: bytes = b"") -> None:
        try:
            if message is None:
                await ws.send_bytes(frame)
                return
            text = json.dumps(message)
            if replay.match_fault(self.invalid_json, "/ws"):
                text = text[: len(text) // 2]
            await ws.send_str(text)
        except Exception:   # closed under us: the message is lost, as on the real server
            pass

    def _queue_info(self) -> dict:
        return {"exec_info": {"queue_remaining": len(self._pending) + bool(self._running)}}

    async def _broadcast_status(self) -> None:
        for ws in list(self._sockets.values()):
            await self._send(ws, {"type": "status", "data": {"status": self._queue_info()}})

    def _drop(self, client_id: Optional[str]) -> None:
        ws = self._sockets.pop(client_id, None) if client_id else None
        if ws is not None:
            self._spawn(ws.close(code=WSCloseCode.GOING_AWAY))

    # --- the worker: one prompt at a time (main.py:198-273) ---------------------------------
    async def _worker(self) -> None:
        try:
            await self._serve_queue()
        except Exception as exc:   # keep it for __exit__: a dead worker must fail the test
            self._crash = exc
            raise

    async def _serve_queue(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            deadline = time.monotonic() + 5.0
            while len(self._pending) < self.start_when_queued and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            self.start_when_queued = 0   # the first prompt only
            while self._pending:
                job = min(self._pending, key=lambda j: (j.number, j.seq))
                self._pending.remove(job)
                self._running = job
                await self._broadcast_status()
                try:
                    await self._run(job)
                finally:
                    self._running = None

    async def _run(self, job: Job) -> None:
        steps = self.scenario.steps
        i, prev = 0, (steps[0].t if steps else 0.0)
        while i < len(steps):
            await self._pause(job, (steps[i].t - prev) * self.time_scale)
            prev = steps[i].t
            if job.interrupt.is_set() and not job.ended():
                # Jump to the recorded interrupted ending if there is one, else make one.
                i = next((j for j in range(i, len(steps)) if steps[j].kind == "ws"
                          and steps[j].message["type"] == "execution_interrupted"), None)
                if i is None:
                    return await self._interrupted(job)
                prev = steps[i].t
            await self._play(job, steps[i])
            i += 1
        if not job.finished:
            await self._deliver(job, {"type": "executing",
                                      "data": {"node": None, "prompt_id": job.prompt_id}})

    async def _pause(self, job: Job, seconds: float) -> None:
        """Sleep the recorded gap; an interrupt cuts it short, like the sampler's per-step check."""
        if seconds <= 0:
            await asyncio.sleep(0)   # still let HTTP handlers run between messages
            return
        try:
            await asyncio.wait_for(job.interrupt.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _until(self, job: Job, ready, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not ready() and not job.interrupt.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _play(self, job: Job, step) -> None:
        if step.kind == "drop":
            self._drop(job.client_id)
        elif step.kind == "reconnect":
            if step.message:
                self._advance(job, job.ids.get(step.message["data"]["node"]))
            await self._until(job, lambda: job.client_id in self._sockets, self.reconnect_wait)
        elif step.kind == "interrupt":
            await self._until(job, job.interrupt.is_set, self.interrupt_wait)
        elif step.kind == "binary":
            await self._emit(job, None)
        else:
            message = replay.retarget(step.message, job.ids, self.scenario.prompt_id, job.prompt_id)
            if message is not None:
                await self._deliver(job, message)

    def _advance(self, job: Job, node: Optional[str]) -> None:
        if node and node != job.current:
            if job.current:
                job.executed.append(job.current)
            job.current = node

    async def _interrupted(self, job: Job) -> None:
        """execution_interrupted as execution.py:650-657 sends it, for the node now running."""
        node = job.current
        await self._deliver(job, {"type": "execution_interrupted", "data": {
            "prompt_id": job.prompt_id, "node_id": node,
            "node_type": job.prompt.get(node, {}).get("class_type") if node else None,
            "executed": list(job.executed), "timestamp": int(time.time() * 1000)}})
        await self._deliver(job, {"type": "executing",
                                  "data": {"node": None, "prompt_id": job.prompt_id}})

    async def _deliver(self, job: Job, message: dict) -> None:
        kind, data = message["type"], message["data"]
        if kind == "status" or (kind == "executing" and data.get("node") is None):
            if not job.finished:
                await self._task_done(job)
            if kind == "status":      # _task_done broadcast the live one
                return
        if kind == "execution_success" and not job.finished:
            await self._save_latents(job)
        if kind == "executing":
            self._advance(job, data.get("node"))
        if kind == "executed":
            self._saved(job, data)
        if kind in replay.HISTORY_MESSAGES:
            job.messages.append([kind, data])
        await self._emit(job, message)

    async def _emit(self, job: Job, message: Optional[dict]) -> None:
        """Route like server.send_sync: to the prompt's client, or broadcast when it has none."""
        if job.client_id:
            ws = self._sockets.get(job.client_id)
            targets = [(job.client_id, ws)] if ws is not None else []
        elif message is None or message["type"] in replay.BROADCAST:
            targets = list(self._sockets.items())
        else:
            targets = []
        for sid, ws in targets:
            if message is None:   # a sampler preview: its frame format depends on the client
                await self._send(ws, frame=replay.preview_frame(job, self._flags.get(sid, False)))
            else:
                await self._send(ws, message)
        if job.client_id and targets:
            job.sent += 1
            if job.sent == self.drop_ws_after:
                self._drop(job.client_id)

    def _saved(self, job: Job, data: dict) -> None:
        """An `executed` with images: remember the files, so /view can serve them."""
        output = data.get("output")
        if not output:
            return
        for image in output.get("images", []):
            if self.evil_filename:
                image["filename"] = self.evil_filename
            key = (image.get("type", "output"), image.get("subfolder", ""), image["filename"])
            # A cached SaveImage reports the old file: it keeps the old file's metadata.
            chunks = replay.saveimage_chunks(job.prompt, job.extra_data)
            if self.image_fn is not None:   # this graph's own picture, under a new name
                image["filename"] = f"probe_{next(self._saved_files):05}_.png"
                key = key[:2] + (image["filename"],)
                self._files[key] = replay.png_bytes(chunks, image=self.image_fn(job.prompt))
            self._files.setdefault(key, replay.png_bytes(chunks))
        job.ui[data["node"]] = output

    async def _save_latents(self, job: Job) -> None:
        """Each SaveLatent node runs as nodes.py SaveLatent.save does: `<prefix>_NNNNN_.latent`
        under the prefix's folder, reported as {"latents": [...]} in `executed` and history."""
        for node_id, node in job.prompt.items():
            if not isinstance(node, dict) or node.get("class_type") != "SaveLatent" or node_id in job.ui:
                continue
            prefix = str((node.get("inputs") or {}).get("filename_prefix", "latents/ComfyUI"))
            sub, _, stem = prefix.rpartition("/")
            ref = {"filename": f"{stem}_{next(self._saved_files):05}_.latent", "subfolder": sub, "type": "output"}
            self._files[("output", sub, ref["filename"])] = (self.latent_fn or replay.zero_latent)(job.prompt)
            here = {"node": node_id, "display_node": node_id, "prompt_id": job.prompt_id}
            await self._deliver(job, {"type": "executing", "data": here})
            await self._deliver(job, {"type": "executed", "data": {**here, "output": {"latents": [ref]}}})

    async def _task_done(self, job: Job) -> None:
        """main.py:234-241: write history, then status; `executing` null comes after."""
        job.finished = True
        self._history[job.prompt_id] = (job.history_entry(), time.monotonic() + self.history_delay)
        self._running = None
        await self._broadcast_status()


def _error_page(status: int) -> web.Response:
    """aiohttp's own plain-text error bodies, which is what ComfyUI answers."""
    if status == 500:
        return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble")
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return web.Response(status=status, text=f"{status}: {reason}")


async def _json_or_none(request: web.Request):
    if not request.body_exists or request.content_type.startswith("multipart/"):
        return None   # reading a multipart body here would leave nothing for request.post()
    try:
        return json.loads(await request.read())
    except ValueError:
        return None
