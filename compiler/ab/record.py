"""sweep.json, and the one object that writes it: the plan (jobs, labels, axes,
run folders), the order jobs went out in, and each job's status as it changes.

Lanes finish jobs on their own threads, so every change is made and written
under one lock, and the file on disk is always whole (write_atomic). The job
lines the sweep prints ("[3/6 done] ...") are said here, where the status changes.
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from compiler._version import __version__
from compiler.ab.order import Footprint, predicted
from compiler.ab.variants import Job, Plan, overrides_by_key
from compiler.errors import RecipeError
from compiler.files import write_atomic
from compiler.run.folder import RunRecord, timestamp

__all__ = ["SweepRecord", "job_folder", "FINISHED"]

FINISHED = ("success", "failed", "rejected", "interrupted", "not run")


def job_folder(job: Job, width: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", job.label).strip("-.")[:60] or "job"
    return f"{job.index + 1:0{width}d}-{slug}"


class SweepRecord:
    """<sweep folder>/sweep.json, kept current on disk; `data` is what it holds."""

    def __init__(self, folder: Path, plan: Plan, compiled: Sequence, servers: Sequence[str], *,
                 order: str, ahead: int, planned: List[int], prints: Sequence[Footprint],
                 say: Callable[[str], None]):
        self.folder, self.say, self.total = Path(folder), say, len(compiled)
        self._lock = threading.RLock()
        self._labels = [c.job.label for c in compiled]
        naive = list(range(len(compiled)))
        c0 = compiled[0].recipe
        width = max(2, len(str(len(compiled))))
        self.data = {
            "recipe": c0.name, "source": c0.source, "recipe_version": __version__,
            "created_at": timestamp(), "status": "running", "servers": list(servers),
            "order_strategy": "cache-aware" if order == "cache" else "naive", "ahead": ahead,
            "axes": [{"key": a.key, "label": a.label, "values": list(a.values)} for a in plan.axes],
            "jobs": [{"index": c.job.index, "label": c.job.label, "overrides": overrides_by_key(c.job),
                      "coords": dict(c.job.coords), "folder": job_folder(c.job, width),
                      "status": "planned", "seed": c.recipe.sampler.seed, "nodes": len(c.graph.nodes),
                      "differences": c.differences} for c in compiled],
            "planned_order": planned, "order": [],
            # Predicted for one server under ComfyUI's classic cache (REFERENCE A5).
            "reexecuted_nodes": {"naive": sum(predicted(prints, naive).values()),
                                 "planned": sum(predicted(prints, planned).values())},
        }
        self.write()

    def entry(self, index: int) -> dict:
        return self.data["jobs"][index]

    def run_folder(self, index: int) -> Path:
        return self.folder / self.entry(index)["folder"]

    def write(self) -> None:
        with self._lock:   # default=str: a YAML date in vars is still written
            write_atomic(self.folder / "sweep.json",
                         json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n")

    def job(self, index: int, **fields) -> None:
        with self._lock:
            self.entry(index).update(fields)
            self.write()

    def queued(self, index: int, **fields) -> int:
        """Job `index` went to a server: its place in the order (1-based)."""
        with self._lock:
            self.data["order"].append(index)
            position = len(self.data["order"])
            self.job(index, status="queued", position=position, **fields)
            return position

    def done(self, index: int, record: RunRecord, error: Optional[RecipeError]) -> None:
        """Job `index` ended (its run.json says how): into sweep.json, and said."""
        with self._lock:
            entry = self.entry(index)
            images = [f"{entry['folder']}/{f['file']}" for f in record.data.get("outputs") or []]
            status = record.data.get("status", "failed")
            self.job(index, status=status, images=images, error=str(error) if error else None,
                     server_span_s=record.data.get("server_span_s"),
                     cached=len(record.data.get("cached") or []))
            done = sum(1 for j in self.data["jobs"] if j["status"] in FINISHED and j["status"] != "not run")
        self.say(f"[{done}/{self.total} done] {self._labels[index]}: {status}"
                 + (f": {str(error).splitlines()[0]}" if error else f", {len(images)} image(s)"))

    def server_down(self, server: str, reason: str, moved: List[int]) -> None:
        """A server stopped answering mid-sweep; `moved`: the jobs it gave back."""
        with self._lock:
            self.data.setdefault("servers_down", []).append(
                {"server": server, "reason": reason, "moved_jobs": list(moved), "at": timestamp()})
            self.write()

    def close_all(self, status: str, why: str) -> None:
        """Every job not yet queued is "not run" (its run folder too, if it has one)."""
        with self._lock:
            for entry in self.data["jobs"]:
                if entry["status"] == "planned":
                    folder = self.folder / entry["folder"]
                    if (folder / "run.json").is_file():
                        RunRecord.load(folder).update(status="not run", error=why)
                    self.job(entry["index"], status="not run", error=why)
            self.data["status"] = status

    def finish(self) -> None:
        """Final status and counts, contact sheet and report: the runs are safe on disk already."""
        with self._lock:
            statuses = [j["status"] for j in self.data["jobs"]]
            if self.data["status"] == "running":
                ok = statuses.count("success")
                self.data["status"] = "success" if ok == len(statuses) else ("partial" if ok else "failed")
            self.data.update(finished_at=timestamp(),
                             counts={s: statuses.count(s) for s in sorted(set(statuses))})
        for name, make in (("contact sheet", _contact), ("report", _report)):
            try:
                make(self.folder, self.data)
            except Exception as exc:   # never lose finished runs to a picture or a page
                self.say(f"warning: no {name}: {type(exc).__name__}: {exc}")
        self.write()


def _contact(folder: Path, data: dict) -> None:
    from compiler.ab.contact import write_contact_sheet
    write_contact_sheet(folder, data)


def _report(folder: Path, data: dict) -> None:
    from compiler.ab.report import write_report
    write_report(folder, data)
