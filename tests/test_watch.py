"""`recipe watch` against the transcript server over real sockets: saves become
versions (ordinary run folders), unchanged saves do nothing, broken saves keep
the last image, an edit interrupts only our prompt in flight, --keep prunes
only its own folders, and the live page shows it all (in headless Chromium).

The loop runs in a thread with millisecond poll and debounce intervals."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from compiler.comfy.client import ComfyClient
from compiler.lower import lower
from compiler.pipeline import Compiled
from compiler.resolve.passes import resolve_file
from compiler.watch.loop import Debouncer, Runner, Session, prune, recipe_files, snapshot
from compiler.watch.page import PageServer, Version, WatchState, facts_line, version_facts

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "03-change-one-prompt-partial-rerun"
RECIPE = """\
version: 1
extends: [look]
model:
  family: flux
  variant: dev
  unet: tiny-flux-dev-fp8_e4m3fn.safetensors
  text_encoders: [tiny-t5xxl_fp8_e4m3fn.safetensors, tiny-clip_l.safetensors]
  vae: tiny-flux-ae.safetensors
canvas: {width: 128, height: 128}
characters:
  roxy:
    lora: tiny-char-a.safetensors
    trigger: roxygirl04
    strength: {model: 0.7, clip: 0.9}
    prompt: "25yo woman, soft clamshell lighting"
    region: left
  celeste:
    lora: tiny-char-b.safetensors
    trigger: celestesh-01
    strength: {model: 0.7, clip: 0.9}
    prompt: "25yo woman, three-quarter headshot"
    region: right
scene: two women side by side, seamless grey
sampler: {name: euler, scheduler: simple, cfg: 1.0, seed: 7}
guidance: 3.5
"""


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def save(path: Path, text: str) -> None:
    """Write like an editor does, and make sure the mtime moves even on a coarse clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


class Watch:
    """A watch session on a recipe in tmp_path, its loop in a thread."""

    def __init__(self, tmp_path: Path, server_url: str, keep=None, page=True, text: str = RECIPE):
        (tmp_path / "presets").mkdir(exist_ok=True)
        self.preset = tmp_path / "presets" / "look.yaml"
        self.recipe = tmp_path / "duo.yaml"
        save(self.preset, "sampler: {steps: 20}\n")
        save(self.recipe, text)
        self.out = tmp_path / "out"
        self.lines, self.errors = [], []
        self.state = WatchState(str(self.recipe))
        self.runner = Runner(ComfyClient(server_url), ComfyClient(server_url), self.out, self.state,
                             keep=keep, show=self.lines.append, warn=self.errors.append)
        self.session = Session(str(self.recipe), self._compile, self.runner, poll=0.01, debounce=0.05,
                               warn=self.errors.append)
        self.page = PageServer(self.state).start() if page else None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.session.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def _compile(self):
        recipe = resolve_file(str(self.recipe))
        return Compiled(recipe, lower(recipe), ())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        if self.page:
            self.page.close()

    def edit(self, old: str, new: str) -> None:
        save(self.recipe, self.recipe.read_text().replace(old, new))

    def finished(self, n: int) -> Version:
        """Wait for version n to end; return it."""
        def done():
            v = [v for v in self.state.versions if v.n == n and v.status != "running"]
            return v[0] if v else None
        return wait_until(done, what=f"version {n} to finish")

    def builds(self, n: int) -> None:
        wait_until(lambda: self.state.builds >= n, what=f"{n} builds")


@pytest.fixture
def watch(tmp_path):
    started = []

    def start(server_url: str, **kwargs) -> Watch:
        w = Watch(tmp_path, server_url, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


def posts(srv, path: str) -> list:
    return [r for r in srv.requests if r.method == "POST" and r.path == path]


def run_folders(out: Path) -> list:
    return sorted(p for p in out.glob("*/*") if p.is_dir())


def page_state(w: Watch) -> dict:
    with urllib.request.urlopen(w.page.url + "state.json", timeout=5) as resp:
        return json.load(resp)


# --- end to end ---------------------------------------------------------------------------

def test_changed_prompt_makes_a_new_version_and_the_page_shows_it(comfy_server, watch):
    srv = comfy_server(SCENARIO, time_scale=0.001)
    w = watch(srv.url)
    first = w.finished(1)
    assert first.status == "success", first.error
    w.edit("soft clamshell lighting", "hard rim light")
    second = w.finished(2)
    assert second.status == "success", second.error
    folders = run_folders(w.out)
    assert folders == sorted([first.folder, second.folder])
    for folder in folders:   # the run folder `recipe run` writes, nothing less
        record = json.loads((folder / "run.json").read_text())
        assert record["status"] == "success" and record["timings"] and record["cached"]
        assert (folder / "recipe.resolved.yaml").is_file() and (folder / "graph.api.json").is_file()
        assert (folder / record["outputs"][0]["file"]).is_file()
    assert "hard rim light" in (second.folder / "recipe.resolved.yaml").read_text()
    assert second.facts["changed"] == ["characters.roxy.prompt"]
    assert "char.roxy.text" in [r["node"] for r in second.facts["ran"]]
    assert "model.unet" in second.facts["cached"]
    assert len(posts(srv, "/prompt")) == 2 and not posts(srv, "/interrupt")
    assert w.lines[1].startswith("v2 changed characters.roxy.prompt; re-ran 6 nodes, 16 cached, saved ")
    assert w.lines[1].endswith(str(second.folder / "duo-7-01.png"))
    state = page_state(w)
    assert state["latest"]["image"] == "/image/2/duo-7-01.png" and state["previous"]["n"] == 1
    with urllib.request.urlopen(w.page.url + "image/2/duo-7-01.png", timeout=5) as resp:
        assert resp.read() == (second.folder / "duo-7-01.png").read_bytes()
    _chromium_shows(w.page.url, ['src="/image/2/duo-7-01.png"', 'src="/image/1/duo-7-01.png"',
                                 "characters.roxy.prompt", '"roxygirl04, 25yo woman, hard rim light"',
                                 '"roxygirl04, 25yo woman, soft clamshell lighting"', "re-ran 6"])


def _chromium_shows(url: str, needles: list) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the live page was "
                    "checked over HTTP only, not rendered")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                               "--virtual-time-budget=3000", "--dump-dom", url],
                              capture_output=True, text=True, timeout=60)
    for needle in needles:
        assert needle in done.stdout, (needle, done.stdout[-3000:], done.stderr[-2000:])


def test_an_edited_preset_is_watched_too(comfy_server, watch):
    srv = comfy_server(SCENARIO)
    w = watch(srv.url, page=False)
    w.finished(1)
    save(w.preset, "sampler: {steps: 24}\n")
    assert w.finished(2).facts["changed"] == ["sampler.steps"]


def test_an_unchanged_save_does_nothing(comfy_server, watch):
    srv = comfy_server(SCENARIO)
    w = watch(srv.url, page=False)
    w.finished(1)
    save(w.recipe, w.recipe.read_text())          # same text, new mtime
    w.edit("three-quarter headshot", "three-quarter headshot")   # and once more
    w.builds(2)
    # Every build after the first was turned down by the runner: nothing can follow from it.
    wait_until(lambda: w.runner.unchanged >= 1 and w.runner.unchanged == w.state.builds - 1,
               what="the runner to turn the unchanged builds down")
    assert len(posts(srv, "/prompt")) == 1 and len(w.state.versions) == 1
    assert len(run_folders(w.out)) == 1


def test_a_broken_save_shows_its_error_and_keeps_the_last_image(comfy_server, watch):
    srv = comfy_server(SCENARIO)
    w = watch(srv.url)
    first = w.finished(1)
    good = w.recipe.read_text()
    save(w.recipe, good.replace("region: left", "region: [left"))   # YAML that does not parse
    wait_until(lambda: w.state.error, what="the YAML error")
    assert len(w.state.error) == 1 and w.state.error[0].startswith(f"{w.recipe}:17:10: invalid YAML: "), w.state.error
    assert w.errors == [f"error: {w.state.error[0]}"]
    state = page_state(w)
    assert state["error"] == w.state.error and state["latest"]["n"] == 1
    assert state["latest"]["image"] == "/image/1/duo-7-01.png" and first.image_path().is_file()
    save(w.recipe, good.replace("seed: 7", "seed: 8"))
    second = w.finished(2)
    assert second.status == "success" and second.facts["changed"] == ["sampler.seed"]
    assert page_state(w)["error"] == [] and len(posts(srv, "/prompt")) == 2


def test_a_schema_error_names_file_line_and_key(comfy_server, watch):
    srv = comfy_server(SCENARIO)
    w = watch(srv.url, page=False)
    w.finished(1)
    w.edit("cfg: 1.0", "cfg: lots")
    wait_until(lambda: w.state.error, what="the schema error")
    assert w.state.error[0].startswith(f"{w.recipe}:24:") and "sampler.cfg" in w.state.error[0]


def test_a_server_error_is_shown_and_the_loop_goes_on(comfy_server, watch):
    srv = comfy_server(SCENARIO, http_status={"/prompt": 500})
    w = watch(srv.url)
    first = w.finished(1)
    assert first.status == "failed" and "500" in first.error[0]
    assert any("500" in e for e in w.errors) and w.lines[0].startswith("v1 failed: ")
    assert "500" in page_state(w)["error"][0]
    save(w.recipe, w.recipe.read_text())   # the same recipe again: a failed run is retried
    assert w.finished(2).status == "failed"
    assert len(posts(srv, "/prompt")) == 2


def test_a_lora_added_on_the_server_is_seen_without_a_restart(comfy_server, watch):
    srv = comfy_server(SCENARIO)
    w = watch(srv.url, page=False, text=RECIPE.replace("tiny-char-b.safetensors", "new-char.safetensors"))
    first = w.finished(1)
    assert first.status == "rejected"
    assert "LoRA file `new-char.safetensors` is not on the server" in first.error[0], first.error
    assert any("is not on the server" in e for e in w.errors) and not posts(srv, "/prompt")
    srv.add_model("loras", "new-char.safetensors")   # someone copies the file onto the server
    save(w.recipe, w.recipe.read_text())            # and the user saves again
    second = w.finished(2)
    assert second.status == "success", second.error
    assert "new-char.safetensors" in (second.folder / "graph.api.json").read_text()
    fetches = [r for r in srv.requests if r.path == "/object_info"]
    assert len(fetches) == 2 and len(posts(srv, "/prompt")) == 1   # asked again once, no restart


def test_an_edit_interrupts_only_our_prompt_in_flight(comfy_server, watch):
    srv = comfy_server(SCENARIO, time_scale=0.05)   # the edited encode alone takes 1.7 s
    w = watch(srv.url, page=False)
    wait_until(lambda: posts(srv, "/prompt"), what="the first prompt")
    wait_until(lambda: (w.state.progress or {}).get("node"), what="the first prompt to run")
    w.edit("three-quarter headshot", "profile view")
    first, second = w.finished(1), w.finished(2)
    assert first.status == "interrupted" and first.error == ["superseded by a newer save"]
    assert second.status == "success", second.error
    interrupts = posts(srv, "/interrupt")
    assert interrupts and all(r.body == {"prompt_id": first.record["prompt_id"]} for r in interrupts)
    assert [p.body["prompt_id"] for p in posts(srv, "/prompt")] == \
        [first.record["prompt_id"], second.record["prompt_id"]]
    assert json.loads((first.folder / "run.json").read_text())["status"] == "interrupted"
    assert w.lines[0] == "v1 interrupted: superseded by a newer save" and not w.errors


def test_keep_prunes_only_its_own_folders(comfy_server, watch, tmp_path):
    srv = comfy_server(SCENARIO)
    mine_before = tmp_path / "out" / "duo" / "20200101-000000-abcdef"   # an earlier `recipe run`
    mine_before.mkdir(parents=True)
    (mine_before / "run.json").write_text("{}")
    (tmp_path / "out" / "notes.txt").write_text("not a run")
    w = watch(srv.url, keep=2, page=False)
    w.finished(1)
    for n, seed in ((2, 8), (3, 9)):
        w.edit(f"seed: {seed - 1}", f"seed: {seed}")
        w.finished(n)
    wait_until(lambda: w.state.versions[0].pruned, what="pruning")
    kept = [v.folder for v in w.state.versions[1:]]
    assert run_folders(w.out) == sorted([mine_before, *kept])
    assert (tmp_path / "out" / "notes.txt").is_file() and not w.state.versions[0].folder.exists()


def test_cli_no_page_prints_one_line_per_version(comfy_server, tmp_path):
    srv = comfy_server(SCENARIO)
    (tmp_path / "presets").mkdir()
    save(tmp_path / "presets" / "look.yaml", "sampler: {steps: 20}\n")
    recipe = tmp_path / "duo.yaml"
    save(recipe, RECIPE)
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "watch", str(recipe), "--server", srv.url,
                             "--out", str(tmp_path / "out"), "--no-page", "--set", "sampler.seed=11"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        save(recipe, RECIPE.replace("soft clamshell lighting", "hard rim light"))
        second = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert first.startswith("v1 first version; re-ran 6 nodes, 16 cached, saved 0.0 s; "), (first, err)
    assert first.strip().endswith("duo-11-01.png")
    assert second.startswith("v2 changed characters.roxy.prompt; re-ran 6 nodes, 16 cached"), (second, err)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "watching" in err
    # Each version's run folder holds its own resolved recipe (made by the compile, passed on).
    texts = [(f / "recipe.resolved.yaml").read_text("utf-8") for f in run_folders(tmp_path / "out")]
    assert len(texts) == 2 and all("seed: 11" in t for t in texts)   # (folder names sort by second, then at random)
    assert sorted(("soft clamshell lighting" in t, "hard rim light" in t) for t in texts) == [(False, True), (True, False)]


# --- the small parts ----------------------------------------------------------------------

def test_debouncer_waits_for_the_files_to_be_still():
    d = Debouncer(0.3)
    assert not d.feed({"a": (1, 1)}, 0.0)        # first look: a change
    assert not d.feed({"a": (2, 1)}, 0.1)        # the editor's second write
    assert not d.feed({"a": (2, 1)}, 0.3)        # still within the quiet time
    assert d.feed({"a": (2, 1)}, 0.41)           # still for 0.3 s: rebuild once
    assert not d.feed({"a": (2, 1)}, 5.0)


def test_recipe_files_follow_the_extends_chain(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "a.yaml").write_text("extends: b\n")
    (tmp_path / "presets" / "b.yaml").write_text("sampler: {steps: 3}\n")
    (tmp_path / "presets" / "c.yaml").write_text("{}\n")
    (tmp_path / "r.yaml").write_text("extends: [a, missing]\n")
    files = recipe_files(str(tmp_path / "r.yaml"), presets=["c"])
    assert [Path(f).name for f in files] == ["r.yaml", "a.yaml", "b.yaml", "c.yaml"]
    snap = snapshot(files + [str(tmp_path / "gone.yaml")])
    assert snap[str(tmp_path / "gone.yaml")] is None and all(snap[f] for f in files)


def test_prune_keeps_the_newest_and_the_protected(tmp_path):
    folders = [tmp_path / str(i) for i in range(5)]
    for f in folders:
        f.mkdir()
    mine = list(folders)
    assert prune(mine, 2, protect={folders[0]}) == folders[1:3]
    assert mine == [folders[0], *folders[3:]] and [f.exists() for f in folders] == [1, 0, 0, 1, 1]


def test_the_diff_is_by_key_path_as_recipe_diff_shows_it():
    prev = Version(1, Path("v1"), {"sampler": {"seed": 7, "steps": 20}, "characters": {"a": {"prompt": "x"}},
                                   "hires": {"scale": 1.5}}, status="success")
    new = {"sampler": {"seed": 8, "steps": 20}, "characters": {"a": {"prompt": "y z"}}, "guidance": 3.5}
    assert version_facts({}, new, prev)["diff"] == [
        {"key": "sampler.seed", "kind": "changed", "old": "7", "new": "8"},
        {"key": "characters.a.prompt", "kind": "changed", "old": '"x"', "new": '"y z"'},
        {"key": "hires", "kind": "removed", "old": "{scale: 1.5}", "new": "(absent)"},
        {"key": "guidance", "kind": "added", "old": "(absent)", "new": "3.5"}]


def test_time_saved_is_what_the_previous_version_spent_on_nodes_cached_now():
    prev = Version(1, Path("v1"), {"seed": 1}, status="success",
                   record={"timings": [{"node": "unet", "seconds": 4.0}, {"node": "text", "seconds": 30.0},
                                       {"node": "sampler", "seconds": 20.0}]})
    record = {"status": "success", "cached": ["unet", "text"], "outputs": [{"file": "x.png"}],
              "timings": [{"node": "sampler", "seconds": 19.0}]}
    facts = version_facts(record, {"seed": 2}, prev)
    assert facts["saved_s"] == 34.0 and facts["changed"] == ["seed"] and facts["since"] == 1
    v = Version(2, Path("v2"), {"seed": 2}, status="success", record=record, facts=facts)
    assert facts_line(v) == f"v2 changed seed; re-ran 1 nodes, 2 cached, saved 34.0 s; {Path('v2/x.png')}"
