"""Stages 6-7, submit and collect: one recipe run against a ComfyUI server,
as public steps that `run_recipe`, `resume_run`, a sweep lane and `recipe
watch` all use:

    record = prepare(recipe, graph, out, client)                  # run/folder.py
    catalogue = preflight(client, recipe, graph, record, catalogues)
    with client.open_events(record.data["client_id"]) as stream:
        submit(client, recipe, graph, record, catalogue)
        outcome = follow(client, stream, record, reporter, graph)
    finish(client, recipe, graph, record, outcome, reporter)

Every step records its milestone in run.json first, so nothing is lost when
one fails. Images are written atomically under names we choose; a
server-supplied name is never a path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, List, Optional

from compiler.check.catalogue import check_graph
from compiler.comfy.client import ComfyClient, job_history
from compiler.comfy.events import Event, EventStream, Outcome, outcome_from_history
from compiler.comfy.object_info import Catalogue
from compiler.comfy.workflow import to_ui
from compiler.errors import (ExecutionError, InterruptedRun, Location, ProtocolError, RecipeError,
                             RejectedError, RunError, UnknownPrompt)
from compiler.files import write_atomic
from compiler.ir.graph import Graph
from compiler.ir.recipe import Recipe
from compiler.resolve.written import resolved_yaml
from compiler.run.catalogues import CatalogueProvider
from compiler.run.folder import RunRecord, prepare, timestamp
from compiler.run.progress import Reporter, make_reporter
from compiler.run.timings import node_timings, observed_span, server_span, timing_table

__all__ = ["preflight", "submit", "follow", "finish", "run_recipe", "run_prepared", "resume_run"]

_HINTS = {"'Linear' object has no attribute 'temp'":
          "a GGUF model met hook LoRAs: use lora_mode: refine (per-character LoRAs GGUF supports) "
          "or a .safetensors UNet"}


def preflight(client: ComfyClient, recipe: Recipe, graph: Graph, record: RunRecord,
              catalogues: Optional[CatalogueProvider] = None, stats: Optional[dict] = None) -> Catalogue:
    """The server's versions into run.json (from `stats`, a GET /system_stats
    answer the caller already has, e.g. once per server per sweep), the graph
    checked against its catalogue (from `catalogues`, else fetched for this
    run alone), the input images uploaded. Returns the catalogue checked against."""
    stats = stats if stats is not None else client.system_stats()
    system = stats.get("system", {})
    record.update(status="checking", comfyui_version=system.get("comfyui_version"),
                  system={k: system.get(k) for k in ("os", "python_version", "pytorch_version", "ram_total")},
                  devices=[{k: d.get(k) for k in ("name", "type", "vram_total")} for d in stats.get("devices", [])])
    catalogue = (catalogues or CatalogueProvider(client)).for_graphs([graph])
    record.update(object_info_hash=catalogue.hash, object_info_scope=catalogue.scope)
    check_graph(graph, catalogue, recipe.locate)
    _upload_inputs(client, recipe, record)
    return catalogue


def _upload_inputs(client: ComfyClient, recipe: Recipe, record: RunRecord) -> None:
    """Images the graph loads go up before the prompt. Names are content
    hashes, so overwriting is safe and an unchanged file stays cached."""
    uploaded = []
    for f in recipe.inputs:
        answer = client.upload_image(f.path, name=f.name, overwrite=True)
        if answer.get("name") != f.name or answer.get("subfolder"):
            raise ProtocolError(f"the server stored {f.key} as {answer.get('name')!r}, not {f.name!r}")
        uploaded.append({"key": f.key, "file": f.path, "server_name": f.name})
    if uploaded:
        record.update(uploads=uploaded)


def run_recipe(recipe: Recipe, graph: Graph, client: ComfyClient, out: Path, *,
               reporter: Optional[Reporter] = None,
               catalogues: Optional[CatalogueProvider] = None, resolved: str = "") -> RunRecord:
    """Prepare, check, submit, follow and collect one run. Raises on failure,
    after recording it in run.json. `resolved`: the recipe's resolved YAML
    when the caller has it (pipeline.Compiled.resolved)."""
    record = prepare(recipe, graph, Path(out), client, resolved=resolved)
    return run_prepared(record, recipe, graph, client, reporter=reporter, catalogues=catalogues)


def run_prepared(record: RunRecord, recipe: Recipe, graph: Graph, client: ComfyClient, *,
                 reporter: Optional[Reporter] = None,
                 catalogues: Optional[CatalogueProvider] = None, at_success: bool = False) -> RunRecord:
    """`run_recipe` after `prepare`: for callers that need the record (its
    prompt_id) before the prompt is queued, e.g. `recipe watch`, which may
    interrupt it when the recipe changes (and, with `at_success`, takes the
    images at execution_success: see EventStream.wait)."""
    reporter = reporter or make_reporter(graph)
    reporter.say(f"run folder {record.folder}")
    try:
        catalogue = preflight(client, recipe, graph, record, catalogues)
        with client.open_events(record.data["client_id"]) as stream:
            submit(client, recipe, graph, record, catalogue)
            reporter.say(f"queued prompt {record.data['prompt_id']} on {client.address.http_base}")
            outcome = follow(client, stream, record, reporter, graph, at_success)
        finish(client, recipe, graph, record, outcome, reporter)
    except RecipeError as exc:
        reporter.done()
        record.fail(exc)
        raise
    return record


def submit(client: ComfyClient, recipe: Recipe, graph: Graph, record: RunRecord,
           catalogue: Optional[Catalogue] = None) -> None:
    """POST /prompt with our prompt_id and client_id. With the catalogue, the
    PNG also carries the editor workflow, so dropping it onto ComfyUI opens
    this graph. A refusal is raised at the recipe keys of its nodes."""
    extra = {"extra_pnginfo": {"recipe": record.resolved or resolved_yaml(recipe)}}
    if catalogue is not None:
        extra["extra_pnginfo"]["workflow"] = to_ui(graph, catalogue)
    pid = record.data["prompt_id"]
    record.update(status="submitting", submitted_at=timestamp())
    try:
        client.queue_prompt(graph.to_api(), client_id=record.data["client_id"], extra_data=extra, prompt_id=pid)
    except RejectedError as exc:
        queued = exc.prompt_id
        if queued:   # queued with only its valid outputs: stop it, we want all or nothing
            _try(lambda: client.interrupt(queued))
        raise _locate_rejection(exc, recipe, graph) from None
    record.update(status="queued")


def _locate_rejection(exc: RejectedError, recipe: Recipe, graph: Graph) -> RejectedError:
    """The client's parsed rejections, each at the recipe key that made its node."""
    def where(node_id: str) -> Location:
        return recipe.locate(graph.origin(node_id)) if node_id in graph else Location(recipe.source)

    errors: List[RecipeError] = [RecipeError(f"ComfyUI rejected node {r.node_id}: {r.message}", where(r.node_id))
                                 for r in exc.rejections if r.node_id]
    if not errors:
        errors = [RecipeError(f"ComfyUI rejected the graph: {line}", Location(recipe.source)) for line in exc.lines()]
    return RejectedError(errors, exc.node_errors, exc.prompt_id, exc.rejections)


def _try(fn: Callable[[], object]) -> None:
    try:
        fn()
    except RunError:
        pass   # best effort while already failing: the first error is the one to report


def follow(client: ComfyClient, stream: EventStream, record: RunRecord, reporter: Reporter,
           graph: Graph, at_success: bool = False) -> Outcome:
    """Wait for our prompt on `stream`, reporting its nodes and steps. Ctrl-C
    interrupts our prompt (only ours) and waits for it to stop."""
    pid = record.data["prompt_id"]

    def on_event(event: Event) -> None:
        if event.type == "execution_start":
            record.update(status="running", started_at=timestamp())
        elif event.type == "execution_cached":
            reporter.cached(event.data.get("nodes", []))
        elif event.type == "executing" and event.data.get("node"):
            reporter.node(event.data["node"])
        elif event.type == "progress":
            reporter.progress(event.data.get("node", "?"), int(event.data.get("value", 0)), int(event.data.get("max", 0)))

    try:
        return stream.wait(pid, on_event, at_success)
    except KeyboardInterrupt:
        reporter.done()
        reporter.say(f"interrupting prompt {pid} (Ctrl-C again to leave it running)")
        client.interrupt(pid)
        record.update(status="interrupting")
        return stream.wait(pid, None)


def finish(client: ComfyClient, recipe: Recipe, graph: Graph, record: RunRecord,
           outcome: Outcome, reporter: Reporter) -> None:
    """Timings into run.json; an error or interrupt raised at its recipe key;
    on success every image downloaded into the run folder."""
    reporter.done()
    timings = node_timings(outcome.events, graph, outcome.history)
    record.update(timings=timings, cached=_cached(outcome), server_span_s=server_span(outcome),
                  observed_span_s=observed_span(outcome.events),
                  finished_at=timestamp(), history_status=outcome.history_status)
    if outcome.status == "interrupted":
        node = (outcome.error or {}).get("node_id", "")
        raise InterruptedRun(f"prompt {record.data['prompt_id']} was interrupted at node {node or '?'}",
                             recipe.locate(graph.origin(node)) if node in graph else None)
    if outcome.status == "error":
        raise _execution_error(outcome.error or {}, recipe, graph)
    files = _collect(client, outcome.history, record, recipe)
    record.update(status="success", outputs=files)
    if timings:
        reporter.say(timing_table(timings))
    for f in files:
        reporter.say(f"saved {record.folder / f['file']}")


def _cached(outcome: Outcome) -> List[str]:
    return list((outcome.first("execution_cached") or {}).get("nodes", []))


def _execution_error(data: dict, recipe: Recipe, graph: Graph) -> ExecutionError:
    node = str(data.get("node_id", ""))
    message = str(data.get("exception_message", "unknown error")).strip().splitlines()
    text = message[0] if message else "unknown error"
    hint = next((h for k, h in _HINTS.items() if k in text), "")
    where = recipe.locate(graph.origin(node)) if node in graph else None
    err = ExecutionError(f"{data.get('node_type', 'a node')} (node {node}) failed on the server: "
                         f"{data.get('exception_type', 'error')}: {text}", node, where,
                         str(data.get("exception_type", "")))
    err.hint = hint
    return err


# What _collect downloads: history key -> (kind in run.json, local extension).
# Latents come from SaveLatent (the leak probe's graphs): safetensors files.
_OUTPUT_KINDS = (("images", "image", "png"), ("latents", "latent", "latent"))


def _collect(client: ComfyClient, history: dict, record: RunRecord, recipe: Recipe) -> List[dict]:
    """Download every image (and saved latent) the history lists, under names we choose."""
    outputs = history.get("outputs")
    if not isinstance(outputs, dict):
        raise ProtocolError(f"history of prompt {record.data['prompt_id']} has no outputs")
    files: List[dict] = []
    for node_id, out in outputs.items():
        refs = [(ref, kind, ext) for key, kind, ext in _OUTPUT_KINDS
                for ref in ((out or {}).get(key, []) if isinstance(out, dict) else [])]
        for ref, kind, ext in refs:
            if not isinstance(ref, dict) or ref.get("type") == "temp":
                continue
            n = sum(f["kind"] == kind for f in files) + 1
            local = f"{recipe.name}-{recipe.sampler.seed}-{n:02d}.{ext}"
            target = (record.folder / local).resolve()
            if target.parent != record.folder.resolve():   # belt and braces: our name, our folder
                raise ProtocolError(f"refusing to write outside the run folder: {local}")
            write_atomic(target, client.view(ref))
            files.append({"file": local, "kind": kind, "node": node_id, "server_file": {k: ref.get(k) for k in
                                                                          ("filename", "subfolder", "type")}})
    return files


def resume_run(folder: Path, client_for: Callable[[str], ComfyClient],
               plain: Optional[bool] = None) -> RunRecord:
    """Finish a run whose client went away: same prompt_id, same client_id."""
    from compiler.resolve.access import ANYWHERE
    from compiler.resolve.passes import resolve_file
    record = RunRecord.load(Path(folder))
    if record.data.get("status") == "success":
        raise RecipeError("this run already finished; its images are in the folder", Location(str(folder)))
    pid, server = record.data.get("prompt_id"), (record.data.get("client") or {}).get("server")
    if not pid or not server:
        raise RecipeError("run.json has no prompt_id or server to resume from", Location(str(folder)))
    # recipe wrote this file itself, with its inputs' absolute paths; resuming uploads nothing.
    recipe = resolve_file(str(record.folder / "recipe.resolved.yaml"), allow=ANYWHERE)
    graph = Graph.from_api(json.loads((record.folder / "graph.api.json").read_text("utf-8")))
    client = client_for(server)
    reporter = make_reporter(graph, plain=plain)
    try:
        outcome = _resume_outcome(client, record, reporter, graph)
        finish(client, recipe, graph, record, outcome, reporter)
    except RecipeError as exc:
        record.fail(exc)
        raise
    return record


def _resume_outcome(client: ComfyClient, record: RunRecord, reporter: Reporter, graph: Graph) -> Outcome:
    pid = record.data["prompt_id"]
    state = _job_state(client, record) if client.jobs_supported() else _history_state(client, record)
    if isinstance(state, dict):
        outcome = outcome_from_history([], state)
        if outcome.status == "error" and record.data.get("status") == "interrupting" \
                and not outcome.first("execution_error"):
            outcome.status = "interrupted"   # a job we interrupted reads `failed`
        return outcome
    reporter.say(f"prompt {pid} is still {state}; following it")
    with client.open_events(record.data["client_id"]) as stream:
        return follow(client, stream, record, reporter, graph)


def _job_state(client: ComfyClient, record: RunRecord):
    """GET /api/jobs/{id}: the history entry of a job that ended, else its state."""
    try:
        job = client.job(record.data["prompt_id"])
    except UnknownPrompt:
        raise _unknown(record) from None
    entry = job_history(job)
    return entry if entry is not None else {"in_progress": "running"}.get(job["status"], "queued")


def _history_state(client: ComfyClient, record: RunRecord):
    """For servers without /api/jobs: /history, then /queue."""
    pid = record.data["prompt_id"]
    entry = client.history(pid)
    if entry is not None:
        return entry
    queue = client.queue()
    known = {item[1] for k in ("queue_running", "queue_pending") for item in queue[k]
             if isinstance(item, list) and len(item) > 1}
    if pid not in known:
        raise _unknown(record)
    return "running" if pid in str(queue["queue_running"]) else "queued"


def _unknown(record: RunRecord) -> RunError:
    return RunError(f"the server does not know prompt {record.data['prompt_id']} (restarted, or never queued): "
                    f"run the recipe again with `recipe run {record.data.get('source', 'FILE')}`")
