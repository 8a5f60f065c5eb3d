"""The compile cache (compiler/cache.py): a compile is reused only while the
recipe, its presets, its image and mask inputs, --set, --preset and the recipe
version are unchanged; a hit skips jinja2, jsonschema and lowering."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compiler import cache as cache_module
from compiler import pipeline
from compiler.cache import CompileCache
from compiler.errors import RecipeError

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
RECIPE = """\
    extends: speed
    model: {family: sd15, checkpoint: tiny-sd15.safetensors}
    canvas: {width: 256, height: 256}
    image: {file: photo.png}
    characters:
      a: {prompt: "{{ name }} at the window", region: {mask: left.png, channel: red}}
      b: {prompt: b, region: right}
    scene: a room
    """


@pytest.fixture
def project(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "speed.yaml").write_text("sampler: {steps: 3}\n", "utf-8")
    (tmp_path / "photo.png").write_bytes((DATA / "photo.png").read_bytes())
    (tmp_path / "left.png").write_bytes((DATA / "left-mask.png").read_bytes())
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(RECIPE), "utf-8")
    return path


def compile_twice(path, cache, **kw):
    first = pipeline.compile(str(path), cache=cache, **kw)
    second = pipeline.compile(str(path), cache=cache, **kw)
    return first, second


def test_an_unchanged_recipe_comes_back_from_the_cache(project, tmp_path):
    cache = CompileCache(tmp_path / "cache")
    first, second = compile_twice(project, cache)
    assert (cache.misses, cache.hits) == (1, 1)
    assert second.graph.to_json() == first.graph.to_json() and second.recipe == first.recipe
    assert second.findings == first.findings
    assert second.recipe.locate("characters.a.prompt") == first.recipe.locate("characters.a.prompt")


def test_the_cache_keeps_the_resolved_recipe_it_would_write(project, tmp_path):
    from compiler.resolve.written import resolved_yaml
    first, second = compile_twice(project, CompileCache(tmp_path / "cache"))
    assert first.resolved and second.resolved == first.resolved == resolved_yaml(second.recipe)
    assert pipeline.compile(str(project)).resolved == ""   # without a cache nothing keeps it: not made


def test_a_run_folder_from_a_cache_hit_holds_the_same_resolved_recipe(comfy_server, tmp_path, capsys):
    from compiler.cli.main import main
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6")
    recipe, env = str(ROOT / "recipes/sd15-duo.yaml"), {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    folders = []
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for _ in range(2):   # a miss, then a hit
            assert main(["run", recipe, "--server", srv.url, "--out", str(tmp_path / "out"), "--plain"]) == 0
            folders.append(Path(capsys.readouterr().out.strip()))
        assert main(["resolve", recipe]) == 0
    printed = capsys.readouterr().out
    texts = [(f / "recipe.resolved.yaml").read_text("utf-8") for f in folders]
    assert texts[0] == texts[1] == printed
    assert len(list((tmp_path / "xdg/recipe/compiled").glob("*.pickle"))) == 1   # the second was a hit


@pytest.mark.parametrize("change", ["recipe", "preset", "image", "mask"])
def test_any_file_it_was_made_from_changing_is_a_miss(project, tmp_path, change):
    cache = CompileCache(tmp_path / "cache")
    before = pipeline.compile(str(project), cache=cache)
    target = {"recipe": project, "preset": tmp_path / "presets/speed.yaml", "image": tmp_path / "photo.png",
              "mask": tmp_path / "left.png"}[change]
    if change == "recipe":
        target.write_text(target.read_text("utf-8").replace("a room", "a hall"), "utf-8")
    elif change == "preset":
        target.write_text("sampler: {steps: 5}\n", "utf-8")
    else:
        target.write_bytes(target.read_bytes() + b"\0")   # same size class, different bytes
    after = pipeline.compile(str(project), cache=cache)
    assert cache.hits == 0 and cache.misses == 2
    assert after.graph.to_json() != before.graph.to_json() or change == "mask"


def test_overrides_presets_strict_and_version_are_part_of_the_key(project, tmp_path, monkeypatch):
    cache = CompileCache(tmp_path / "cache")
    pipeline.compile(str(project), cache=cache)
    seven = pipeline.compile(str(project), ["sampler.seed=7"], cache=cache)
    assert seven.recipe.sampler.seed == 7 and cache.hits == 0
    pipeline.compile(str(project), ["sampler.seed=7"], cache=cache)
    assert cache.hits == 1
    monkeypatch.setattr(cache_module, "__version__", "999.0")
    pipeline.compile(str(project), ["sampler.seed=7"], cache=cache)
    assert cache.hits == 1 and cache.misses == 3


def test_a_new_preset_found_first_is_a_miss(project, tmp_path):
    cache = CompileCache(tmp_path / "cache")
    pipeline.compile(str(project), cache=cache)
    (tmp_path / "speed.yaml").write_text("sampler: {steps: 9}\n", "utf-8")   # looked up after presets/
    pipeline.compile(str(project), cache=cache)
    assert cache.hits == 0


def test_errors_are_not_kept(tmp_path):
    cache = CompileCache(tmp_path / "cache")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {family: sd15}\ncharacters: {a: {prompt: x}}\nsampler: {stpes: 3}\n", "utf-8")
    for _ in range(2):
        with pytest.raises(RecipeError):
            pipeline.compile(str(bad), cache=cache)
    assert cache.hits == 0 and not list((tmp_path / "cache").glob("*"))


def test_a_planted_entry_cannot_run_code(project, tmp_path):
    cache = CompileCache(tmp_path / "cache")
    pipeline.compile(str(project), cache=cache)
    (entry,) = (tmp_path / "cache").glob("*.pickle")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'owned'}",))

    entry.write_bytes(pickle.dumps({"format": 1, "files": {}, "probes": {}, "compiled": Evil()}))
    again = pipeline.compile(str(project), cache=cache)
    assert not (tmp_path / "owned").exists() and cache.hits == 0 and again.graph


def test_a_cached_cli_compile_loads_neither_jinja2_nor_jsonschema(project, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    argv = [sys.executable, "-X", "importtime", "-m", "compiler", "compile", str(project), "-o", os.devnull]
    cold = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    warm = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert cold.returncode == warm.returncode == 0, warm.stderr[-2000:]
    loaded = lambda err: {line.rsplit("|", 1)[1].strip() for line in err.splitlines() if line.count("|") == 2}
    # (a valid recipe needs no jsonschema, and `{{ name }}` no jinja2: conforms.py, substitute.py)
    assert {"yaml", "compiler.resolve.passes", "compiler.resolve.substitute"} <= loaded(cold.stderr)
    assert not {"jinja2", "jsonschema", "compiler.resolve.templates", "compiler.resolve.passes",
                "yaml"} & loaded(warm.stderr)   # nothing is parsed: the files are only hashed
    assert list((tmp_path / "xdg/recipe/compiled").glob("*.pickle"))
