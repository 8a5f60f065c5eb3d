"""The run folder: <out>/<recipe>/<run-id>/ with recipe.resolved.yaml,
graph.api.json and run.json, all written *before* anything is queued.

run.json is rewritten (atomically) at every milestone, and records the
prompt_id chosen by us before POST /prompt, so a run whose client died can be
finished by `recipe resume`.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Optional

from compiler._version import __version__
from compiler.errors import InterruptedRun, Location, RecipeError
from compiler.files import write_atomic
from compiler.ir.graph import Graph
from compiler.ir.recipe import Recipe
from compiler.resolve.written import resolved_yaml
from compiler.run.provenance import git_provenance, recipe_files

__all__ = ["RunRecord", "new_run_folder", "prepare", "latest_graph", "timestamp"]


_FINAL = frozenset({"success", "failed", "rejected", "interrupted"})


def timestamp() -> str:
    """Local time as run.json and sweep.json write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunRecord:
    """run.json: what was asked, of whom, and what happened, kept current on disk."""

    def __init__(self, folder: Path, data: dict, resolved: str = ""):
        self.folder, self.data = folder, data
        self.resolved = resolved   # recipe.resolved.yaml's text, as prepare wrote it ("" for a loaded record)

    @staticmethod
    def read(folder: Path) -> dict:
        """run.json as a dict, or {} when it is missing or unreadable: for
        reports and profiles over folders that may be incomplete."""
        try:
            data = json.loads((Path(folder) / "run.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @classmethod
    def load(cls, folder: Path) -> "RunRecord":
        try:
            return cls(folder, json.loads((folder / "run.json").read_text("utf-8")))
        except FileNotFoundError:
            raise RecipeError("not a run folder: no run.json", Location(str(folder))) from None
        except (OSError, ValueError) as exc:
            raise RecipeError(f"cannot read run.json: {exc}", Location(str(folder))) from None

    def update(self, **fields) -> None:
        self.data.update(fields, updated_at=timestamp())
        # Milestones are not fsynced (each costs a disk flush the user waits
        # for); how the run ended is.
        write_atomic(self.folder / "run.json", json.dumps(self.data, indent=2, ensure_ascii=False) + "\n",
                     durable=self.data.get("status") in _FINAL)

    def fail(self, error: RecipeError) -> None:
        status = "interrupted" if isinstance(error, InterruptedRun) else \
            ("rejected" if error.exit_code == 2 else "failed")
        self.update(status=status, error=str(error))


def new_run_folder(out: Path, recipe: Recipe) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(out) / recipe.name / f"{stamp}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def prepare(recipe: Recipe, graph: Graph, out: Path, client, folder: Optional[Path] = None,
            resolved: str = "") -> RunRecord:
    """Write the run folder before anything is queued: a new timestamped one
    under <out>/<recipe>/, or exactly `folder` (a sweep names them by job).
    `client` (a ComfyClient) is described in run.json, never asked anything.
    `resolved`: resolved_yaml(recipe) if the caller has it already."""
    if folder is None:
        folder = new_run_folder(out, recipe)
    else:
        folder.mkdir(parents=True, exist_ok=False)
    resolved = resolved or resolved_yaml(recipe)
    write_atomic(folder / "recipe.resolved.yaml", resolved)
    write_atomic(folder / "graph.api.json", graph.to_json())
    record = RunRecord(folder, {}, resolved)
    record.update(recipe=recipe.name, source=recipe.source, recipe_version=__version__, status="prepared",
                  created_at=timestamp(), client=client.describe(), prompt_id=str(uuid.uuid4()),
                  client_id=uuid.uuid4().hex, seed=recipe.sampler.seed,
                  git=git_provenance(recipe_files(recipe)))   # null outside a git work tree, or without git
    return record


def latest_graph(out: str, name: str) -> Optional[Graph]:
    """The graph of the most recent run of this recipe, if any (cost estimates)."""
    folders = sorted(Path(out, name).glob("*/graph.api.json")) if out else []
    if not folders:
        return None
    try:
        return Graph.from_api(json.loads(folders[-1].read_text("utf-8")))
    except (OSError, ValueError, KeyError):
        return None
