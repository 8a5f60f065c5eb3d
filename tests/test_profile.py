"""`recipe profile RUN_DIR...` on run folders that `recipe run` really wrote, against
the transcript server (scenarios 01 and 11).

The transcript server replays the recorded messages at `time_scale`, so a run's
measured s/step is the recording's times that scale. Setting the scale per run
makes the server behave like one whose cost model is known (TRUTH), and the
fit must find it again.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from compiler.cli.main import main
from compiler.check.cost import UNITS, sampler_terms
from compiler.ir.graph import Graph
from compiler.run.profile import fit, observe
from compiler.resolve.passes import resolve_file

try:
    from .comfy_server import ComfyTestServer
    from .test_run import PORTRAIT, SD15
except ImportError:   # tests/ is not a package
    from comfy_server import ComfyTestServer
    from test_run import PORTRAIT, SD15

S01 = "01-success-two-characters-hooks"
S11 = "11-success-sd15-checkpoint-two-characters-cfg6"
RECORDED_S_PER_STEP = {S01: 135.452 - 129.443, S11: (9.497 - 2.981) / 3}   # from the transcripts
TRUTH = {"seconds_per_unit": 0.25, "swap": 0.15}
GLOBAL = ["--set", "lora_mode=global"]


def _run(srv, out: Path, args, time_scale: float = 0.0, expect: int = 0) -> Path:
    srv.time_scale = time_scale
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", *args, "--server", srv.url, "--out", str(out), "--plain"])
    assert code == expect, stderr.getvalue()
    if expect:
        return Path(next(line for line in stderr.getvalue().splitlines() if line.startswith("run folder "))[11:])
    return Path(stdout.getvalue().strip())


def _units(args) -> float:
    """What the cost model says one step of this recipe costs, at TRUTH's swap."""
    path, sets = args[0], [a for a in args[1:] if a != "--set"]
    recipe = resolve_file(path, sets)
    from compiler.lower import lower
    passes, swaps = sampler_terms(recipe, lower(recipe))["sampler"]
    return passes + TRUTH["swap"] * swaps


def _scale_for(scenario: str, args, slower: float = 1.0) -> float:
    """The time_scale that makes this run measure TRUTH's seconds per step."""
    return slower * TRUTH["seconds_per_unit"] * _units(args) / RECORDED_S_PER_STEP[scenario]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run folders written by `recipe run`: a Flux run on 01, and SD1.5 runs on 11."""
    out = tmp_path_factory.mktemp("profile") / "out"
    folders = {}
    with ComfyTestServer(S01) as srv:
        folders["flux"] = _run(srv, out, PORTRAIT, 0.003)
    with ComfyTestServer(S11) as srv:
        folders["hooks"] = _run(srv, out, SD15, _scale_for(S11, SD15))
        folders["global"] = _run(srv, out, SD15 + GLOBAL, _scale_for(S11, SD15 + GLOBAL))
        folders["global2"] = _run(srv, out, SD15 + GLOBAL, _scale_for(S11, SD15 + GLOBAL))
        folders["slow"] = _run(srv, out, SD15 + GLOBAL, _scale_for(S11, SD15 + GLOBAL, slower=3.0))
    with ComfyTestServer("07-execution-error-broken-lora") as srv:
        folders["failed"] = _run(srv, out, PORTRAIT, expect=1)
    return folders


def profile_cli(capsys, *argv):
    code = main(["profile", *map(str, argv)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def test_measured_and_estimated_side_by_side_for_01_and_11(runs, capsys):
    out, err = profile_cli(capsys, runs["flux"], runs["hooks"])
    target = runs["flux"].parent / "profile.json"          # <first RUN_DIR>/../profile.json
    assert f"wrote {target}" in err
    saved = json.loads(target.read_text())
    rows = {Path(r["run"]).name: r for r in saved["runs"]}
    for name in ("flux", "hooks"):
        folder = runs[name]
        record = json.loads((folder / "run.json").read_text())
        measured = next(t["s_per_step"] for t in record["timings"] if t["node"] == "sampler")
        recipe = resolve_file(str(folder / "recipe.resolved.yaml"))
        graph = Graph.from_api(json.loads((folder / "graph.api.json").read_text()))
        passes, swaps = sampler_terms(recipe, graph)["sampler"]
        row = rows[folder.name]
        assert row["measured_s_per_step"] == measured and row["hook_groups"] == 2
        assert row["estimated_units_per_step"] == pytest.approx(passes + UNITS["swap"] * swaps)
        assert row["predicted_s_per_step"] == pytest.approx(saved["seconds_per_unit"] * row["estimated_units_per_step"])
        assert str(folder) in out
        assert f"{measured:.3f} s/step" in out and f"{row['estimated_units_per_step']:.4f} u/step" in out
    assert "portrait, flux 896x896, euler, cfg 1, 2 hook groups" in out
    assert "sd15-duo, sd15 256x256, euler, cfg 6, 2 hook groups" in out
    # One constant, two runs: least squares lands between their own ratios.
    ratios = sorted(r["measured_s_per_step"] / r["estimated_units_per_step"] for r in rows.values())
    assert ratios[0] < saved["seconds_per_unit"] < ratios[1]
    assert "swap" not in saved["fitted"] and saved["units"]["swap"] == UNITS["swap"]
    assert "swap not fitted: every run has 2 hook groups" in out
    assert "2 servers" in out                    # 01 and 11 were two servers
    assert saved["comfyui_version"] == "0.8.0"
    assert f"seconds_per_unit {saved['seconds_per_unit']:.4g} s" in out


def test_one_run_is_enough_for_seconds_per_unit(runs, capsys, tmp_path):
    save = tmp_path / "p.json"
    out, _ = profile_cli(capsys, runs["flux"], "--save", save)
    saved = json.loads(save.read_text())
    (row,) = saved["runs"]
    assert saved["seconds_per_unit"] == pytest.approx(row["measured_s_per_step"] / row["estimated_units_per_step"])
    assert row["predicted_s_per_step"] == pytest.approx(row["measured_s_per_step"])
    assert saved["fitted"] == ["seconds_per_unit", "merge_hook"]     # the first step paid the hook merge
    assert "fitted over 1 run " in out and "first step" in out


def test_different_hook_group_counts_fit_the_swap(runs, capsys, tmp_path):
    save = tmp_path / "p.json"
    out, _ = profile_cli(capsys, runs["hooks"], runs["global"], "--save", save)
    saved = json.loads(save.read_text())
    assert {r["hook_groups"] for r in saved["runs"]} == {1, 2}
    assert "swap" in saved["fitted"] and "swap" in out and "(fitted)" in out
    assert saved["seconds_per_unit"] == pytest.approx(TRUTH["seconds_per_unit"], rel=0.15)
    assert saved["units"]["swap"] == pytest.approx(TRUTH["swap"], rel=0.35)


def test_one_bad_run_is_left_out_and_named(runs, capsys, tmp_path):
    save = tmp_path / "p.json"
    out, _ = profile_cli(capsys, runs["hooks"], runs["global"], runs["slow"], runs["global2"], "--save", save)
    saved = json.loads(save.read_text())
    assert [Path(r["run"]).name for r in saved["runs"] if r["left_out"]] == [runs["slow"].name]
    assert f"left out {runs['slow']}" in out and "(left out of the fit)" in out
    assert saved["seconds_per_unit"] == pytest.approx(TRUTH["seconds_per_unit"], rel=0.15)
    assert saved["units"]["swap"] == pytest.approx(TRUTH["swap"], rel=0.35)


def test_fit_needs_two_group_counts_to_separate_the_swap(runs):
    obs = [o for name in ("hooks", "flux") for o in observe(runs[name])[0]]
    result = fit(obs)
    assert result.fitted[:1] == ["seconds_per_unit"] and "swap" not in result.fitted
    assert any("swap not fitted" in n for n in result.notes)


def test_a_failed_run_is_skipped_and_nothing_to_fit_is_exit_2(runs, capsys, tmp_path):
    failed = runs["failed"]          # scenario 07: the LoRA node failed before any step
    assert json.loads((failed / "run.json").read_text())["status"] == "failed"
    out, _ = profile_cli(capsys, runs["flux"], failed, "--save", tmp_path / "p.json")
    assert f"{failed}: skipped, no per-step sampler timings (status failed)" in out
    assert main(["profile", str(failed), "--save", str(tmp_path / "q.json")]) == 2
    assert "no run has per-step sampler timings" in capsys.readouterr().err
    assert not (tmp_path / "q.json").exists()
    assert main(["profile", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_check_cost_uses_the_fitted_profile(tmp_path, capsys):
    """`recipe check --cost` turns units into seconds with what `recipe profile` fitted."""
    import json as _json
    from compiler.cli.main import main as _main
    from compiler.check.cost import UNITS
    profile_file = tmp_path / "profile.json"
    profile_file.write_text(_json.dumps({"server": "http://gpu:8188", "seconds_per_unit": 2.0,
                                         "units": dict(UNITS)}))
    recipe = str(Path(__file__).resolve().parents[1] / "recipes/sd15-duo.yaml")
    assert _main(["check", recipe, "--cost", "--compare", "speed", "--profile", str(profile_file),
                  "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    total = float(next(l for l in out.splitlines() if l.strip().startswith("total")).split()[1])
    line = next(l for l in out.splitlines() if "on server" in l)
    assert f"about {total * 2.0:.0f} s of sampling on http://gpu:8188" in line
    assert _main(["check", recipe, "--cost", "--profile", str(tmp_path / "none.json")]) == 2
