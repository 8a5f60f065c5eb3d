"""The floor plan holds: every module's imports, read with `ast` (including
`importlib.import_module("...")` strings), obey ../shared/DESIGN.md.

- no import cycle among compiler's modules, lazy (in-function) imports included;
- no module and no test imports another module's `_private` name
  (`from m import _x`, or `m._x` on an imported module);
- the layering: errors/source/files/_version/ir import only each other;
  comfy/ imports only errors and ir/; lower/ only ir/ and errors; resolve/ never
  lower, check/, comfy/, run/, ab/; check/ never run/, ab/, watch/, cli/;
  run/ never ab/, watch/, cli/; nothing outside cli/ imports cli/.

The checker works on {module name: source text}, so the tests at the bottom
show it catching a cycle, a private import and a broken layer put back.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]

BASE = {"errors", "source", "files", "_version", "ir"}
# top segment of compiler.<seg> -> the top segments it may import (None: any)
ALLOWED = {
    **{seg: BASE for seg in BASE},
    "comfy": {"errors", "ir", "comfy"},
    "lower": {"errors", "ir", "lower"},
}
FORBIDDEN = {
    "resolve": {"lower", "check", "comfy", "run", "ab", "probe", "watch", "cli", "pipeline"},
    "check": {"run", "ab", "probe", "watch", "cli"},
    "run": {"ab", "probe", "watch", "cli"},
}


def sources() -> Dict[str, str]:
    """Every module of the package, the tests and the benchmarks, by dotted name."""
    out = {}
    for folder in ("compiler", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path.read_text("utf-8")
    return out


def _absolute(module: str, level: int, target: str, is_package: bool) -> str:
    if not level:
        return target
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports(module: str, text: str, modules: Set[str]) -> Iterator[Tuple[str, str]]:
    """(imported module, imported name or "") for every import in `text`."""
    is_package = module + ".__init__" in modules or any(m.startswith(module + ".") for m in modules)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module or "", is_package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full, "") if full in modules else (base, alias.name)
        elif isinstance(node, ast.Call) and _is_import_module(node):
            target = node.args[0].value
            package = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else module
            level = len(target) - len(target.lstrip("."))
            yield _absolute(package, level, target.lstrip("."), True) if level else target, ""


def _is_import_module(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "import_module" and bool(node.args) and isinstance(node.args[0], ast.Constant)


def private_uses(module: str, text: str, modules: Set[str]) -> List[str]:
    """`from m import _x`, and `m._x` where m names an imported module."""
    found = [f"{module} imports {target}.{name}" for target, name in imports(module, text, modules)
             if name.startswith("_") and not name.startswith("__") and target != module]
    aliases = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            aliases.update({a.asname or a.name: a.name for a in node.names if a.name in modules})
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module or "", False)
            aliases.update({a.asname or a.name: f"{base}.{a.name}" for a in node.names
                            if f"{base}.{a.name}" in modules})
    for node in ast.walk(ast.parse(text)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    return found


def edges(srcs: Dict[str, str]) -> Dict[str, Set[str]]:
    modules = set(srcs)
    return {m: {t for t, _ in imports(m, text, modules) if t in modules and t != m}
            for m, text in srcs.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component of two or more modules."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _segment(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == "compiler" and len(parts) > 1 else ""


def layer_breaks(graph: Dict[str, Set[str]]) -> List[str]:
    out = []
    for src, targets in graph.items():
        seg = _segment(src)
        if not src.startswith("compiler") or seg == "__main__":   # `python -m compiler` is the shell's door
            continue
        for dst in targets:
            dseg = _segment(dst)
            if not dst.startswith("compiler.") or dseg == seg:
                continue
            allowed, forbidden = ALLOWED.get(seg), FORBIDDEN.get(seg, set())
            if (allowed is not None and dseg not in allowed) or dseg in forbidden or (dseg == "cli" and seg != "cli"):
                out.append(f"{src} imports {dst}")
    return sorted(out)


def violations(srcs: Dict[str, str]) -> List[str]:
    graph = edges(srcs)
    modules = set(srcs)
    found = [f"cycle: {' -> '.join(c)}" for c in cycles({m: t for m, t in graph.items() if m.startswith("compiler")})]
    found += [p for m, text in srcs.items() for p in private_uses(m, text, modules)]
    found += layer_breaks(graph)
    return found


# -- the rules, on the real tree ------------------------------------------------------

def test_the_tree_keeps_the_import_rules():
    assert violations(sources()) == []


def test_every_module_is_under_400_lines():
    big = {m: t.count("\n") for m, t in sources().items() if m.startswith("compiler") and t.count("\n") > 400}
    assert big == {}


# -- the checker catches what it should -----------------------------------------------

FIXTURE = {
    "compiler": "",
    "compiler.errors": "class RecipeError(Exception): pass\n",
    "compiler.ir": "",
    "compiler.ir.graph": "from compiler.errors import RecipeError\n",
    "compiler.resolve": "",
    "compiler.resolve.passes": "from compiler.ir.graph import *\n",
    "compiler.ab": "",
    "compiler.ab.variants": "from compiler.resolve.passes import *\n",
    "compiler.comfy": "",
    "compiler.comfy.client": "from compiler.errors import RecipeError\n_helper = 1\n",
    "compiler.run": "",
    "compiler.run.steps": "from compiler.comfy.client import RecipeError\n",
    "compiler.cli": "",
    "compiler.cli.main": "import importlib\nimportlib.import_module('compiler.run.steps')\n",
}


def test_checker_passes_a_sound_fixture():
    assert violations(FIXTURE) == []


def test_checker_finds_a_cycle_put_back():
    srcs = {**FIXTURE, "compiler.resolve.passes": "from compiler.ab.variants import strip_variants\n"}
    assert any(v.startswith("cycle: compiler.ab.variants -> compiler.resolve.passes") for v in violations(srcs))


def test_checker_finds_a_cycle_through_import_module():
    srcs = {**FIXTURE, "compiler.run.steps": "import importlib\nimportlib.import_module('compiler.cli.main')\n"}
    found = violations(srcs)
    assert "cycle: compiler.cli.main -> compiler.run.steps" in found
    assert "compiler.run.steps imports compiler.cli.main" in found


def test_checker_finds_a_private_import_put_back():
    srcs = {**FIXTURE, "compiler.run.steps": "from compiler.comfy.client import _helper\n",
            "tests.test_x": "from compiler.comfy import client\nclient._helper\n"}
    found = violations(srcs)
    assert "compiler.run.steps imports compiler.comfy.client._helper" in found
    assert "tests.test_x uses compiler.comfy.client._helper" in found


def test_checker_finds_a_relative_private_import():
    srcs = {**FIXTURE, "compiler.run.folder": "from .steps import _queue\n"}
    assert "compiler.run.folder imports compiler.run.steps._queue" in violations(srcs)


def test_checker_finds_broken_layers():
    srcs = {**FIXTURE, "compiler.comfy.client": "from compiler.run.steps import x\n",
            "compiler.resolve.passes": "from compiler.comfy.client import y\n"}
    found = violations(srcs)
    assert "compiler.comfy.client imports compiler.run.steps" in found
    assert "compiler.resolve.passes imports compiler.comfy.client" in found


def test_every_package_is_shipped():
    """pyproject lists packages by hand (schema/ ships as compiler._schema): a new
    folder left out would be missing from an installed `recipe`."""
    import re
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    listed = set(re.findall(r'"(compiler(?:\.[A-Za-z_]+)*)"', text.split("packages = [", 1)[1].split("]", 1)[0]))
    found = {".".join(p.relative_to(ROOT).parent.parts) for p in (ROOT / "compiler").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
    assert "compiler._schema" in listed
