"""A sweep's report.html: the pictures side by side, each with what makes it
different (its changes to the resolved recipe), its seed, and where the
server's time went (run.json `timings`).

It is one static file that opens from disk with no server and no network:
images are referenced relative to the sweep folder, style and script are
inline. The page shows only what a user needs: a warning when pictures
are missing, both when it is written (a file that is not there) and when it
is opened (a small script: the folder was moved apart, or files deleted).
Tests check the page from outside, in headless Chromium, with their own script.
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
details{margin-top:6px}#missing{padding:6px 10px;border-radius:4px;margin:8px 0;background:#fdd}
"""

# Runs on load: a picture that did not load is named in the warning; when all did, nothing shows.
_MISSING = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  if (!broken.length) return;
  var w = document.getElementById('missing');
  w.textContent = broken.length + ' of ' + imgs.length + ' pictures did not load: ' +
    broken.map(function (i) { return decodeURIComponent(i.getAttribute('src')); }).join(', ') +
    ' (was the sweep folder moved apart, or files deleted?)';
  w.hidden = false;
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
        _missing(folder, data),
    ]
    for down in data.get("servers_down") or []:   # failover: say which server died, and what moved
        parts.append(f'<p class="meta down">server {_e(down.get("server", "?"))} went down: '
                     f'{_e(down.get("reason", ""))}; {len(down.get("moved_jobs") or [])} job(s) '
                     f'moved to the other servers</p>')
    if (folder / "contact.png").is_file():
        parts.append('<img class="sheet" src="contact.png" alt="contact sheet">')
    parts.append('<div class="grid">')
    parts.extend(_job_card(folder, job) for job in data["jobs"])
    parts += ["</div>", f"<script>{_MISSING}</script>", "</body></html>", ""]
    return "\n".join(parts)


def _missing(folder: Path, data: dict) -> str:
    """The warning, already filled in for pictures missing as the page is written."""
    gone = [img for job in data["jobs"] for img in job.get("images") or [] if not (folder / img).is_file()]
    text = f"{len(gone)} {'picture is' if len(gone) == 1 else 'pictures are'} missing: {', '.join(gone)}" \
        if gone else ""
    return f'<div id="missing" role="alert"{"" if gone else " hidden"}>{_e(text)}</div>'


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
    out.append(_commit(run.get("git")))
    if job.get("error"):
        out.append(f'<div class="{cls}">{_e(job["error"])}</div>')
    out.append(_differences(job.get("differences") or []))
    out.append(_timings(run.get("timings") or [], run.get("cached") or []))
    out.append(f'<div class="meta"><a href="{_src(job["folder"])}/run.json">{_e(job["folder"])}</a></div>')
    out.append("</section>")
    return "\n".join(out)


def _commit(git) -> str:
    """The commit the job's recipe came from (run.json `git`), and what differed from it."""
    if not isinstance(git, dict):
        return ""
    dirty = [str(f.get("path")) for f in git.get("files") or [] if isinstance(f, dict) and f.get("state") != "clean"]
    text = f"commit {str(git['commit'])[:10]}" if git.get("commit") else "no commit yet"
    text += f" + uncommitted changes to {', '.join(dirty)}" if dirty else ""
    return f'<div class="meta commit" title="{_e(git.get("commit") or "")}">{_e(text)}</div>'


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
