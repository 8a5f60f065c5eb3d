"""A sweep's report.html: the pictures side by side, each with what makes it
different (its changes to the resolved recipe), its seed, and where the
server's time went (run.json `timings`).

It is one static file that opens from disk with no server and no network:
images are referenced relative to the sweep folder, style and script are
inline. The small script checks that every picture loaded and every label
shows, and says so on the page (a moved folder shows a warning instead of
silently broken images); tests read the same verdict from `data-check`.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import List
from urllib.parse import quote

from compiler.diff import Change
from compiler.files import write_atomic

__all__ = ["write_report", "render_report"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafaf8}
h1{font-size:20px;margin:0 0 4px}.meta{color:#666;margin:0 0 16px}
.sheet{max-width:100%;border:1px solid #ddd;margin:8px 0 24px}
.grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.job{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px;width:300px}
.job img{width:100%;height:auto;display:block;background:#eee}
.label{font-weight:600;margin:8px 0 4px;word-wrap:break-word}
.status-failed,.status-rejected,.status-interrupted,.status-not-run{color:#a11}
ul.diff{padding-left:16px;margin:4px 0;font:12px ui-monospace,monospace;word-break:break-word}
table{border-collapse:collapse;font-size:12px;margin-top:6px;width:100%}
td,th{border-bottom:1px solid #eee;padding:2px 4px;text-align:left}td.n{text-align:right}
details{margin-top:6px}#verdict{padding:6px 10px;border-radius:4px;margin:8px 0}
#verdict.fail{background:#fdd}#verdict.ok{background:#efe}
"""

# Runs on load: every <img> decoded and every label laid out, or a visible warning.
_CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var labels = Array.prototype.slice.call(document.querySelectorAll('.label'));
  var blank = labels.filter(function (l) {
    var r = l.getBoundingClientRect(); return !l.textContent.trim() || r.width === 0 || r.height === 0; });
  var b = document.body, v = document.getElementById('verdict');
  b.setAttribute('data-images', (imgs.length - broken.length) + '/' + imgs.length);
  b.setAttribute('data-labels', (labels.length - blank.length) + '/' + labels.length);
  b.setAttribute('data-check', broken.length || blank.length ? 'fail' : 'ok');
  v.className = broken.length || blank.length ? 'fail' : 'ok';
  v.textContent = broken.length ? broken.length + ' of ' + imgs.length +
    ' images did not load (was the sweep folder moved apart?)' :
    imgs.length + ' images, ' + labels.length + ' labels shown';
});
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _src(rel: str) -> str:
    return quote(rel.replace("\\", "/"))


def write_report(folder: Path, data: dict) -> Path:
    out = Path(folder) / "report.html"
    write_atomic(out, render_report(Path(folder), data))
    return out


def render_report(folder: Path, data: dict) -> str:
    axes = " × ".join(f"{a['label']} ({len(a['values'])})" for a in data.get("axes", []))
    counts = {}
    for job in data["jobs"]:
        counts[job.get("status", "?")] = counts.get(job.get("status", "?"), 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    order = data.get("order") or []
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(data.get('recipe', 'recipe'))} sweep</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(data.get('recipe', ''))} — {len(data['jobs'])} runs</h1>",
        f'<p class="meta">{_e(axes or "variants")} · {_e(summary)} · from {_e(data.get("source", ""))} · '
        f'{_e(data.get("created_at", ""))} · run order {_e(" ".join(str(i + 1) for i in order))}</p>',
        '<div id="verdict">checking images…</div>',
    ]
    for down in data.get("servers_down") or []:   # failover: say which server died, and what moved
        parts.append(f'<p class="meta down">server {_e(down.get("server", "?"))} went down: '
                     f'{_e(down.get("reason", ""))}; {len(down.get("moved_jobs") or [])} job(s) '
                     f'moved to the other servers</p>')
    if (folder / "contact.png").is_file():
        parts.append('<img class="sheet" src="contact.png" alt="contact sheet">')
    parts.append('<div class="grid">')
    parts.extend(_job_card(folder, job) for job in data["jobs"])
    parts += ["</div>", f"<script>{_CHECK}</script>", "</body></html>", ""]
    return "\n".join(parts)


def _run_json(folder: Path, job: dict) -> dict:
    from compiler.run.folder import RunRecord
    return RunRecord.read(folder / job["folder"]) if "folder" in job else {}


def _job_card(folder: Path, job: dict) -> str:
    run = _run_json(folder, job)
    status = job.get("status", "?")
    cls = "status-" + status.replace(" ", "-")
    out = [f'<section class="job" id="job-{job["index"] + 1}">']
    out += [f'<img src="{_src(img)}" alt="{_e(job["label"])}">' for img in job.get("images") or []]
    out.append(f'<div class="label">{_e(job["label"])}</div>')
    seed = run.get("seed", "?")
    where = job.get("server") or (run.get("client") or {}).get("server", "")
    out.append(f'<div class="{cls}">{_e(status)} · seed {_e(seed)}'
               + (f" · {_e(run['server_span_s'])} s on the server" if run.get("server_span_s") is not None else "")
               + (f" · {_e(where)}" if where else "") + "</div>")
    if job.get("error"):
        out.append(f'<div class="{cls}">{_e(job["error"])}</div>')
    out.append(_differences(job.get("differences") or []))
    out.append(_timings(run.get("timings") or [], run.get("cached") or []))
    out.append(f'<div class="meta"><a href="{_src(job["folder"])}/run.json">{_e(job["folder"])}</a></div>')
    out.append("</section>")
    return "\n".join(out)


def _differences(changes: List[dict]) -> str:
    if not changes:
        return '<div class="meta">the recipe as written</div>'
    items = "".join(f"<li>{_e(Change(**c).format())}</li>" for c in changes)
    return f'<details open><summary>{len(changes)} differences from the recipe as written</summary>' \
           f'<ul class="diff">{items}</ul></details>'


def _timings(rows: List[dict], cached: List[str]) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><td>{_e(r.get('node'))}</td><td>{_e(r.get('stage', ''))}</td>"
                   f"<td class=\"n\">{float(r.get('seconds', 0)):.2f}</td>"
                   f"<td>{_e(_steps(r))}</td></tr>" for r in rows)
    total = sum(float(r.get("seconds", 0)) for r in rows)
    return (f"<details open><summary>{len(rows)} nodes ran in {total:.2f} s, {len(cached)} cached</summary>"
            f"<table><tr><th>node</th><th>stage</th><th>s</th><th>steps</th></tr>{body}</table></details>")


def _steps(row: dict) -> str:
    if "steps" not in row:
        return ""
    text = f"{row['steps']}, first {row.get('first_step_s', 0):.2f} s"
    return text + (f", {row['s_per_step']:.2f} s/step" if "s_per_step" in row else "")
