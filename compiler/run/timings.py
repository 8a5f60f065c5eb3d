"""Where the time went, from the WebSocket messages of one prompt.

ComfyUI sends `executing` before each node that is not cached; a node ends
when the next one starts (or the prompt ends). `progress` messages of a
sampler time its steps; the first step is reported apart because it also
pays the one-off LoRA merge (REFERENCE F: 18 s hooks, 8 s global).
"""
from __future__ import annotations

from typing import List, Optional

from compiler.ir.graph import Graph
from compiler.ir.nodes import STAGES, TERMINAL_EVENTS, purpose

__all__ = ["node_timings", "server_span", "observed_span", "timing_table", "STAGE_ORDER"]

STAGE_ORDER = STAGES


def node_timings(events: list, graph: Graph, history: Optional[dict] = None) -> List[dict]:
    starts = [(e.data["node"], e.received) for e in events
              if e.type == "executing" and e.data.get("node")]
    end = next((e.received for e in reversed(events) if e.type in TERMINAL_EVENTS
                or (e.type == "executing" and e.data.get("node") is None)), None)
    rows = []
    for i, (node_id, t0) in enumerate(starts):
        t1 = starts[i + 1][1] if i + 1 < len(starts) else end
        if t1 is None:
            continue
        node = graph.nodes.get(node_id)
        row = {"node": node_id, "class_type": node.class_type if node else "",
               "recipe_key": node.origin if node else "", "stage": purpose(node.class_type) if node else "other",
               "seconds": round(t1 - t0, 3)}
        row.update(_steps(events, node_id, t0))
        rows.append(row)
    return rows


def _steps(events: list, node_id: str, t0: float) -> dict:
    ticks = [e.received for e in events if e.type == "progress" and e.data.get("node") == node_id]
    if not ticks:
        return {}
    steps = {"steps": len(ticks), "first_step_s": round(ticks[0] - t0, 3)}
    if len(ticks) > 1:
        steps["s_per_step"] = round((ticks[-1] - ticks[0]) / (len(ticks) - 1), 3)
    return steps


def server_span(outcome) -> Optional[float]:
    """Seconds between the server's own execution_start and end timestamps."""
    stamps = {}
    for e in outcome.events:
        if "timestamp" in e.data and e.type.startswith("execution_"):
            stamps.setdefault(e.type, e.data["timestamp"])
    for kind, data in outcome.messages:
        if "timestamp" in data:
            stamps.setdefault(kind, data["timestamp"])
    start = stamps.get("execution_start")
    stop = next((stamps[k] for k in TERMINAL_EVENTS if k in stamps), None)
    return None if start is None or stop is None else round((stop - start) / 1000.0, 3)


def observed_span(events: list) -> Optional[float]:
    """Seconds from execution_start to the final `executing` as this client
    received them: the server's working time on our clock."""
    start = next((e.received for e in events if e.type == "execution_start"), None)
    end = next((e.received for e in reversed(events)
                if e.type == "executing" and e.data.get("node") is None), None)
    return None if start is None or end is None else round(end - start, 4)


def timing_table(rows: List[dict]) -> str:
    lines = ["where the time went:", f"  {'stage':<8} {'node':<26} {'seconds':>8}  detail"]
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    small = [r for r in rows if r["seconds"] < 0.05 and "steps" not in r]
    for row in sorted((r for r in rows if r not in small), key=lambda r: (order.get(r["stage"], 9), -r["seconds"])):
        detail = ""
        if "steps" in row:
            detail = f"{row['steps']} steps, first {row['first_step_s']:.2f} s"
            if "s_per_step" in row:
                detail += f", then {row['s_per_step']:.2f} s/step"
        lines.append(f"  {row['stage']:<8} {row['node']:<26} {row['seconds']:>8.2f}  {detail}")
    if small:
        lines.append(f"  {'':<8} {f'{len(small)} small nodes':<26} {sum(r['seconds'] for r in small):>8.2f}")
    totals = {}
    for row in rows:
        totals[row["stage"]] = totals.get(row["stage"], 0.0) + row["seconds"]
    lines.append("  total    " + ", ".join(f"{s} {totals[s]:.1f} s" for s in STAGE_ORDER if s in totals))
    return "\n".join(lines)
