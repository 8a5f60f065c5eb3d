"""What `recipe watch` shows, on a live page or one line per version.

`WatchState` is the one record of a watch session that the loop, the run
thread and the page thread share (behind one lock): each version's run.json
facts, the progress of the run in flight, and the last error. The page is a
stdlib HTTP server on 127.0.0.1 with one inline script that polls
/state.json: no external assets, nothing to install.

The recipe diff is `recipe diff`'s own (compiler/diff.py), on the resolved
documents of the two versions on show.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, List, Mapping, Optional
from urllib.parse import quote, unquote

from compiler.diff import diff_documents, format_value
from compiler.errors import RunError

__all__ = ["version_facts", "facts_line", "Version", "WatchState", "PageServer", "PAGE"]

def version_facts(record: Mapping, document: Mapping, previous: Optional["Version"]) -> dict:
    """What changed since the previous good version, and what it cost: nodes
    that ran (run.json timings), nodes served from ComfyUI's cache, and the
    time the previous version spent on the nodes that are cached now."""
    before = {t["node"]: t.get("seconds", 0.0) for t in (previous.record.get("timings") or [])} if previous else {}
    cached = list(record.get("cached") or [])
    diff = diff_documents(dict(previous.document), dict(document)) if previous else []
    outputs = record.get("outputs") or []
    return {"since": previous.n if previous else None, "changed": [c.path for c in diff],
            "diff": [{"key": c.path, "kind": c.kind, "old": _show(c.old, c.kind == "added"),
                      "new": _show(c.new, c.kind == "removed")} for c in diff],
            "ran": [{"node": t["node"], "seconds": t.get("seconds", 0.0)} for t in record.get("timings") or []],
            "cached": cached,
            "saved_s": round(sum(before.get(n, 0.0) for n in cached), 3),
            "files": [o["file"] for o in outputs if isinstance(o, dict) and o.get("file")]}


def _show(value: Any, absent: bool) -> str:
    return "(absent)" if absent else format_value(value)


@dataclass
class Version:
    """One graph this session queued, and its run folder."""
    n: int
    folder: Path
    document: Mapping
    status: str = "running"
    record: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)
    error: List[str] = field(default_factory=list)
    pruned: bool = False

    def image_path(self) -> Optional[Path]:
        files = self.facts.get("files") or []
        return None if self.pruned or not files else self.folder / files[0]


def facts_line(v: Version) -> str:
    """The terminal's one line per version."""
    if v.status != "success":
        why = v.error[0] if v.error else v.status
        return f"v{v.n} {v.status}: {why}"
    f = v.facts
    changed = "first version" if f["since"] is None else \
        (f"changed {', '.join(f['changed'])}" if f["changed"] else f"no recipe key changed since v{f['since']}")
    return (f"v{v.n} {changed}; re-ran {len(f['ran'])} nodes, {len(f['cached'])} cached, "
            f"saved {f['saved_s']:.1f} s; {v.image_path() or '(no image)'}")


class WatchState:
    """Shared by the watch loop, the run thread and the page; every method locks."""

    def __init__(self, source: str):
        self.source = source
        self.versions: List[Version] = []
        self.error: List[str] = []
        self.progress: Optional[dict] = None
        self.builds = 0        # compile attempts: lets tests (and the page) see a save was read
        self.seq = 0           # bumped on every change, so the page re-renders only then
        self._lock = threading.RLock()

    def _bump(self) -> None:
        self.seq += 1

    def built(self, error: Optional[List[str]] = None) -> None:
        """A save was compiled: `error` holds the recipe error's lines, if any."""
        with self._lock:
            self.builds += 1
            self.error = list(error or [])
            self._bump()

    def started(self, folder: Path, document: Mapping) -> Version:
        with self._lock:
            v = Version(len(self.versions) + 1, Path(folder), document)
            self.versions.append(v)
            self.progress = {"version": v.n, "node": None, "label": "", "step": None, "max": None}
            self._bump()
            return v

    def update_progress(self, n: int, **fields) -> None:
        with self._lock:
            if self.progress and self.progress["version"] == n:
                self.progress.update(fields)
                self._bump()

    def finished(self, v: Version, record: Mapping, error: Optional[List[str]] = None) -> Version:
        with self._lock:
            previous = self.last_good()
            v.record, v.error = dict(record), list(error or [])
            v.status = str(record.get("status") or ("failed" if error else "success"))
            v.facts = version_facts(record, v.document, previous)
            if error and v.status != "interrupted":   # a superseded run is not news
                self.error = list(error)
            self.progress = None
            self._bump()
            return v

    def pruned(self, folders: List[Path]) -> None:
        with self._lock:
            for v in self.versions:
                v.pruned = v.pruned or v.folder in folders
            self._bump()

    def last_good(self, skip: int = 0) -> Optional[Version]:
        with self._lock:
            good = [v for v in self.versions if v.status == "success"]
            return good[-1 - skip] if len(good) > skip else None

    def image_file(self, n: int, name: str) -> Optional[Path]:
        """The file the page may serve: a listed output of a version still on disk."""
        with self._lock:
            v = next((v for v in self.versions if v.n == n), None)
            if v is None or v.pruned or name not in (v.facts.get("files") or []):
                return None
            return v.folder / name

    def to_json(self) -> dict:
        with self._lock:
            return {"seq": self.seq, "source": self.source, "builds": self.builds,
                    "error": list(self.error), "progress": dict(self.progress) if self.progress else None,
                    "latest": _version_json(self.last_good()), "previous": _version_json(self.last_good(1)),
                    "versions": [{"n": v.n, "status": v.status, "folder": str(v.folder), "pruned": v.pruned}
                                 for v in self.versions[-20:]]}


def _version_json(v: Optional[Version]) -> Optional[dict]:
    if v is None:
        return None
    path = v.image_path()
    image = f"/image/{v.n}/{quote(path.name)}" if path else None
    return {"n": v.n, "status": v.status, "folder": str(v.folder), "image": image,
            "image_path": str(path) if path else None,
            **{k: v.facts.get(k) for k in ("since", "changed", "diff", "ran", "cached", "saved_s")}}


class PageServer:
    """The live page on 127.0.0.1 (never another interface: it serves run folders)."""

    def __init__(self, state: WatchState, port: int = 0):
        handler = type("Handler", (_Handler,), {"state": state})
        try:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise RunError(f"cannot serve the live page on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="recipe-watch-page")

    def start(self) -> "PageServer":
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    state: WatchState

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/state.json":
            self._send(200, json.dumps(self.state.to_json()).encode(), "application/json")
        elif path.startswith("/image/"):
            self._image(path[len("/image/"):])
        else:
            self._send(404, b"not found", "text/plain")

    def _image(self, rest: str) -> None:
        number, _, name = rest.partition("/")
        target = self.state.image_file(int(number), unquote(name)) if number.isdigit() else None
        try:
            data = target.read_bytes() if target else None
        except OSError:
            data = None
        if data is None:
            self._send(404, b"no such image", "text/plain")
        else:   # a version's image never changes under its URL
            self._send(200, data, "image/png", cache="max-age=3600")

    def _send(self, status: int, body: bytes, ctype: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass   # the terminal belongs to the version lines


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recipe watch</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;background:#fafafa;color:#222}
#status{color:#555} #error{background:#fee;border:1px solid #c33;padding:.5em;white-space:pre-wrap}
.pair{display:flex;gap:1em} figure{margin:0;flex:1} img{max-width:100%;border:1px solid #ccc}
table{border-collapse:collapse} td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
.old{color:#a33} .new{color:#262}
</style></head><body>
<h1>recipe watch <small id="source"></small></h1>
<div id="status">connecting&hellip;</div>
<pre id="error" hidden></pre>
<div class="pair"><figure id="latest"></figure><figure id="previous"></figure></div>
<h2>Nodes</h2><div id="nodes"></div>
<h2>Recipe changes</h2><table id="diff"></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function figure(box, v, label) {
  let img = box.querySelector("img");
  if (v && v.image) {
    if (!img) { img = el("img"); box.prepend(img); }
    if (img.getAttribute("src") !== v.image) { img.setAttribute("src", v.image); img.alt = label + " v" + v.n; }
  } else if (img) { img.remove(); }
  let cap = box.querySelector("figcaption");
  if (!cap) { cap = el("figcaption"); box.append(cap); }
  cap.textContent = v ? `${label}: v${v.n} ${v.image_path || "(folder pruned)"}` : `${label}: none yet`;
}
function status(s) {
  const p = s.progress;
  if (!p) return `watching ${s.source}: ${s.versions.length} versions, ${s.builds} saves read`;
  const step = p.max ? ` step ${p.step}/${p.max}` : "";
  return `running v${p.version}: ${p.label || p.node || "queued"}${step}`;
}
function nodes(v) {
  const box = $("nodes");
  box.replaceChildren();
  if (!v) return;
  const ran = v.ran.map((r) => `${r.node} ${r.seconds.toFixed(2)} s`).join(", ") || "none";
  box.append(el("p", `re-ran ${v.ran.length}: ${ran}`));
  box.append(el("p", `from the cache ${v.cached.length}: ${v.cached.join(", ") || "none"}`));
  box.append(el("p", `time saved: ${v.saved_s.toFixed(2)} s`));
}
function diff(v) {
  const t = $("diff");
  t.replaceChildren();
  if (!v || !v.diff.length) {
    t.appendChild(el("tr")).append(el("td", !v ? "" : v.since ? `no recipe key changed since v${v.since}` : "first version"));
    return;
  }
  t.appendChild(el("tr")).append(el("th", "key"), el("th", `v${v.since}`), el("th", `v${v.n}`));
  for (const d of v.diff) {
    t.appendChild(el("tr")).append(el("td", d.key), el("td", d.old, {class: "old"}), el("td", d.new, {class: "new"}));
  }
}
let seen = -1;
function render(s) {
  $("status").textContent = status(s);
  if (s.seq === seen) return;
  seen = s.seq;
  $("source").textContent = s.source;
  $("error").hidden = !s.error.length;
  $("error").textContent = s.error.join("\\n");
  figure($("latest"), s.latest, "latest");
  figure($("previous"), s.previous, "previous");
  nodes(s.latest);
  diff(s.latest);
}
async function tick() {
  try {
    const r = await fetch("/state.json", {cache: "no-store"});
    render(await r.json());
  } catch (e) {
    $("status").textContent = "the watcher stopped (" + e + ")";
  }
}
tick();
setInterval(tick, 500);
</script></body></html>
"""
