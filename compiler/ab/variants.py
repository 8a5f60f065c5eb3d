"""A/B testing, part 1: `variants:` and `sweep:` -> a list of jobs.

    variants: {softer: {vars: {light: soft clamshell lighting}}}
    sweep: {sampler.seed: [1, 2, 3], vars.light: [rembrandt, window light]}

Neither key describes *this* picture: each names other pictures made from it.
So the resolve pass `strip_variants` (compiler/resolve/aside.py) takes them
out before the schema checks the rest, and each job is resolved by the normal pipeline with its changes
given as `--set` items. A job's resolved recipe has no trace of them and
compiles to exactly that job's graph.
"""
from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import yaml

from compiler import pipeline
from compiler.errors import Location, RecipeError, SchemaError
from compiler.pipeline import Loaded
from compiler.resolve.aside import AB_KEYS, check_pieces
from compiler.resolve.schema import suggest
from compiler.source import Path, SourceMap, key_path, parse_key_path

__all__ = ["AB_KEYS", "BASE", "Axis", "Job", "Plan", "load_spec", "plan_jobs",
           "resolve_job", "compile_job", "job_error", "short_name", "value_text"]

BASE = "base"              # `--variant base`: the recipe as written, for A/B against it
MAX_JOBS = 1000            # a sweep is for comparing by eye; beyond this it is a typo
VARIANT_AXIS = "variant"
# Leading parts that say nothing a reader needs in a label: `vars.light` is "light".
_QUIET_PREFIXES = ("vars", "sampler", "characters")


@dataclass(frozen=True)
class Axis:
    key: str                   # "vars.light", or "variant" for named variants
    label: str                 # "light"
    values: Tuple[str, ...]    # display texts, in the order written


@dataclass(frozen=True)
class Job:
    index: int                             # position in expansion order (grid order)
    label: str                             # "light=rembrandt / seed=2": what differs
    overrides: Tuple[str, ...]             # `--set` items, applied after the user's own
    coords: Tuple[Tuple[str, str], ...]    # (axis label, value text), one per axis
    origins: Tuple[Tuple[str, Location], ...] = ()   # override key -> where the file says it

    def origin(self, key: str) -> Location | None:
        return dict(self.origins).get(key)


@dataclass(frozen=True)
class Plan:
    jobs: Tuple[Job, ...]
    axes: Tuple[Axis, ...]


# -- the pieces, as the file (and its presets) give them -----------------------------

def load_spec(source: "str | Loaded", presets: Sequence[str] = ()) -> Tuple[dict, dict, SourceMap]:
    """(variants, sweep, source map) of a recipe (a path, or what pipeline.load
    gave), presets merged in as for a run. What it returns is a copy."""
    loaded = _loaded(source, presets)
    doc, smap = loaded.copy()
    pieces = {k: doc[k] for k in AB_KEYS if k in doc}
    # The merge drops nulls, but in a variant `hires: null` means "remove hires":
    # the recipe's own variants are taken as written.
    own = loaded.written.get("variants") if isinstance(loaded.written, dict) else None
    if isinstance(own, dict) and isinstance(pieces.get("variants"), dict):
        pieces["variants"] = {**pieces["variants"], **copy.deepcopy(own)}
    check_pieces(pieces, smap)
    return pieces.get("variants", {}), pieces.get("sweep", {}), smap


def _loaded(source: "str | Loaded", presets: Sequence[str]) -> Loaded:
    if isinstance(source, Loaded):
        if presets:
            raise ValueError("presets are given to pipeline.load(), not with a loaded recipe")
        return source
    return pipeline.load(source, presets)


# -- expansion ------------------------------------------------------------------------

def plan_jobs(source: "str | Loaded", variants: Sequence[str] = (), sweep: bool = False,
              presets: Sequence[str] = ()) -> Plan:
    """The jobs of `recipe run FILE [--variant NAME ...] [--sweep]`: the chosen
    variants (or the recipe as written) times every combination of the sweep,
    the first axis slowest (the order the file reads in). `source` is the
    recipe's path or what pipeline.load gave (then `presets` were given there)."""
    loaded = _loaded(source, presets)
    path = loaded.file
    defined, sweep_spec, source = load_spec(loaded)
    if sweep and not sweep_spec:
        raise RecipeError("--sweep: the recipe has no `sweep:` (e.g. sweep: {sampler.seed: [1, 2, 3]})",
                          Location(str(path)))
    raw = [_variant_axis(variants, defined, source)] if variants else []
    raw += [_sweep_axis(key, values, source) for key, values in (sweep_spec.items() if sweep else ())]
    labels = [short_name(key) if key != VARIANT_AXIS else key for key, _, _ in raw]
    # Two keys that shorten alike (vars.seed and sampler.seed) keep their full names.
    labels = [key if labels.count(label) > 1 else label for (key, _, _), label in zip(raw, labels)]
    axes = tuple(Axis(key, label, texts) for (key, texts, _), label in zip(raw, labels))
    count = 1
    for _, texts, _ in raw:
        count *= len(texts)
    if count > MAX_JOBS:
        sizes = " × ".join(str(len(texts)) for _, texts, _ in raw)
        raise RecipeError(f"{sizes} = {count} jobs; at most {MAX_JOBS} are run at once", Location(str(path)))
    combos = itertools.product(*[list(zip(texts, sets)) for _, texts, sets in raw])
    return Plan(tuple(_job(i, axes, combo) for i, combo in enumerate(combos)), axes)


def _variant_axis(names: Sequence[str], defined: dict, source: SourceMap):
    """("variant", names, per name the (path, value, location) it changes)."""
    sets = []
    for name in names:
        if name not in defined and name != BASE:
            known = [BASE, *defined]
            raise RecipeError(f"no variant `{name}` in the recipe (it has: {', '.join(known)})"
                              f"{suggest(name, known)}", Location("--variant", 0, 0, name))
        changes = flatten(defined.get(name) or {})
        sets.append([(p, v, source.locate(("variants", name) + p)) for p, v in changes])
    if len(set(names)) != len(names):
        raise RecipeError("a variant is named twice", Location("--variant"))
    return VARIANT_AXIS, tuple(names), sets


def _sweep_axis(key: str, values: list, source: SourceMap):
    path = parse_key_path(key)
    texts = tuple(value_text(v) for v in values)
    if len(set(texts)) != len(texts):
        raise RecipeError("a value is listed twice", source.locate(("sweep", key)))
    return key, texts, [[(path, v, source.locate(("sweep", key, i)))] for i, v in enumerate(values)]


def _job(index: int, axes: List[Axis], combo) -> Job:
    overrides, origins, coords, parts = [], [], [], []
    for axis, (text, changes) in zip(axes, combo):
        coords.append((axis.label, text))
        # A sweep axis of one value differs nowhere; a variant is named on purpose.
        if len(axis.values) > 1 or axis.key == VARIANT_AXIS:
            parts.append(text if axis.key == VARIANT_AXIS else f"{axis.label}={text}")
        for path, value, where in changes:
            overrides.append(set_item(path, value))
            origins.append((key_path(path), where))
    return Job(index, " / ".join(parts) or BASE, tuple(overrides), tuple(coords), tuple(origins))


def flatten(mapping: dict, prefix: Path = ()) -> List[Tuple[Path, Any]]:
    """A partial recipe as (key path, value) leaves: mappings merge key by key,
    as presets do; anything else (lists, scalars, null) replaces whole."""
    out: List[Tuple[Path, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.extend(flatten(value, prefix + (key,)))
        else:
            out.append((prefix + (key,), value))
    return out


def set_item(path: Path, value: Any) -> str:
    """`--set` text that `apply_overrides` reads back as exactly `value`."""
    # ASCII with escapes: a raw U+0085 or U+2028 would read back as a line break.
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, allow_unicode=False)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[:-4].rstrip()
    elif text.endswith("..."):   # a bare scalar document: `x\n...`
        text = text[:-3].rstrip()
    return f"{key_path(path)}={text}"


def short_name(key: str) -> str:
    """`vars.light` -> light, `sampler.seed` -> seed, `characters.roxy.strength.model`
    -> roxy.strength.model: the key as a reader of a contact sheet names it."""
    head, _, rest = key.partition(".")
    return rest if head in _QUIET_PREFIXES and rest else key


def value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# -- resolving one job ------------------------------------------------------------------

def resolve_job(source: "str | Loaded", job: Job, overrides: Sequence[str] = (), presets: Sequence[str] = ()):
    """The job's Recipe, through the normal pipeline (pipeline.resolve). Errors
    name the job and, for a value the variant or sweep supplied, point at it
    in the file."""
    try:
        return pipeline.resolve(source, [*overrides, *job.overrides], presets)
    except RecipeError as exc:
        raise job_error(exc, job) from None


def compile_job(source: "str | Loaded", job: Job, overrides: Sequence[str] = (), strict: bool = False,
                presets: Sequence[str] = ()) -> pipeline.Compiled:
    """The job through pipeline.compile (resolve, lower, advisor), its errors
    located as resolve_job's are. A sweep passes the one Loaded of its files."""
    try:
        return pipeline.compile(source, [*overrides, *job.overrides], presets, strict)
    except RecipeError as exc:
        raise job_error(exc, job) from None


def job_error(exc: RecipeError, job: Job) -> RecipeError:
    errors = getattr(exc, "errors", None) or [exc]
    located = []
    for e in errors:
        where = e.location
        if where is not None and where.file == "--set":
            origin = _origin_for(job, where.key_path)
            where = Location(origin.file, origin.line, origin.col, where.key_path) if origin else where
        located.append(RecipeError(f"in job `{job.label}`: {e.message}", where, e.hint))
    err = SchemaError(located)
    err.exit_code = exc.exit_code
    return err


def _origin_for(job: Job, key: str) -> Location | None:
    """The override that set `key` or a key above it."""
    for name, where in job.origins:
        if key == name or key.startswith(name + ".") or key.startswith(name + "["):
            return where
    for name, where in job.origins:   # the error is about a key inside the override's value
        if name.startswith(key + ".") or name.startswith(key + "["):
            return where
    return None


def overrides_by_key(job: Job) -> Dict[str, str]:
    """{key: value text} of a job's own overrides, for sweep.json."""
    return dict(item.split("=", 1) for item in job.overrides)
