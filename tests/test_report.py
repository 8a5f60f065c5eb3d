"""A sweep's contact sheet and report.html. The report is opened from disk in
headless Chromium (no server, no network) and must load every image and
show every label, which the test checks from outside with its own script
(the page itself says nothing unless pictures are missing); the contact
sheet is a grid with rows and columns from the two axes."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from compiler.cli.main import main
from compiler.ab.contact import BG, FAINT, caption, layout

try:
    from .comfy_server import ComfyTestServer
except ImportError:   # tests/ is not a package: pytest puts it on sys.path instead
    from comfy_server import ComfyTestServer

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RECIPE = f"""\
extends: sd15-duo.yaml
name: duo
vars: {{light: soft daylight}}
characters:
  a: {{prompt: "{{{{ trigger }}}}, 25yo woman, {{{{ vars.light }}}}"}}
sweep:
  sampler.seed: [1, 2, 3]
  vars.light: [rembrandt, "window light <from> camera left"]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A finished 6-job sweep (one server, transcript 11), shared by this module."""
    tmp = tmp_path_factory.mktemp("report")
    shutil.copy(ROOT / "recipes/sd15-duo.yaml", tmp)   # a recipe extends only files beside it
    (tmp / "duo.yaml").write_text(RECIPE, encoding="utf-8")
    with ComfyTestServer("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.005) as srv:
        code = main(["run", str(tmp / "duo.yaml"), "--sweep", "--server", srv.url, "--out", str(tmp / "out")])
    assert code == 0
    (folder,) = (tmp / "out" / "duo").iterdir()
    return folder


def chromium(url: str, profile: Path, *extra: str) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


# The test's own check, run in the page from outside: the product page carries no test verdict.
CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var labels = Array.prototype.slice.call(document.querySelectorAll('.label'));
  var blank = labels.filter(function (l) {
    var r = l.getBoundingClientRect(); return !l.textContent.trim() || r.width === 0 || r.height === 0; });
  var b = document.body;
  b.setAttribute('data-images', (imgs.length - broken.length) + '/' + imgs.length);
  b.setAttribute('data-labels', (labels.length - blank.length) + '/' + labels.length);
  b.setAttribute('data-missing-shown', String(!document.getElementById('missing').hidden));
});
</script>"""


def checked_dom(folder: Path, profile: Path) -> str:
    """report.html as Chromium lays it out, with CHECK's findings on <body>.
    The checked copy sits beside the original, so every relative link holds."""
    page = (folder / "report.html").read_text("utf-8")
    probe = folder / "report.checked.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    try:
        return chromium(probe.as_uri(), profile, "--dump-dom")
    finally:
        probe.unlink()


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs "
                                                              "Debian's chromium package)")


@needs_chromium
def test_report_renders_in_chromium_with_every_image_and_label(swept, tmp_path):
    dom = checked_dom(swept, tmp_path / "profile")
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-images="7/7"' in body, body       # six runs and the contact sheet
    assert 'data-labels="6/6"' in body and 'data-missing-shown="false"' in body
    labels = re.findall(r'<div class="label">([^<]*)</div>', dom)
    assert labels == [j["label"].replace("<", "&lt;").replace(">", "&gt;")
                      for j in json.loads((swept / "sweep.json").read_text())["jobs"]]
    shot = tmp_path / "shot.png"
    chromium((swept / "report.html").as_uri(), tmp_path / "profile2", f"--screenshot={shot}",
             "--window-size=1200,900")
    assert Image.open(shot).size == (1200, 900)


@needs_chromium
def test_chromium_sees_a_missing_image(swept, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(swept, copy)
    gone = next(copy.glob("03-*/*.png"))
    gone.unlink()
    dom = checked_dom(copy, tmp_path / "profile")
    assert 'data-images="6/7"' in dom and 'data-missing-shown="true"' in dom
    warning = re.search(r'<div id="missing"[^>]*>([^<]*)</div>', dom).group(1)
    assert warning.startswith("1 of 7 pictures did not load: ") and gone.relative_to(copy).as_posix() in warning


def test_the_page_says_nothing_of_checks_and_warns_of_pictures_already_missing(swept, tmp_path):
    from compiler.ab.report import render_report
    page = (swept / "report.html").read_text()
    text = re.sub(r"<script>.*?</script>|<style>.*?</style>|<[^>]+>", " ", page, flags=re.S)
    assert "labels shown" not in text and "checking images" not in text and "images," not in text
    assert '<div id="missing" role="alert" hidden></div>' in page
    copy = tmp_path / "copy"
    shutil.copytree(swept, copy)
    gone = next(copy.glob("03-*/*.png"))
    gone.unlink()
    later = render_report(copy, json.loads((copy / "sweep.json").read_text()))
    assert f'<div id="missing" role="alert">1 picture is missing: {gone.relative_to(copy).as_posix()}</div>' in later


def test_report_is_static_and_self_contained(swept):
    page = (swept / "report.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and not [r for r in refs if "://" in r or r.startswith(("/", "//"))]
    assert "<link" not in page and "<script src" not in page and "@import" not in page
    for ref in refs:
        from urllib.parse import unquote
        assert (swept / unquote(ref)).is_file(), ref


def test_report_shows_differences_seeds_and_timings(swept):
    page = (swept / "report.html").read_text()
    d = json.loads((swept / "sweep.json").read_text())
    job = d["jobs"][3]   # seed=2 / light=window light <from> camera left
    card = page.split(f'id="job-{job["index"] + 1}"')[1].split("</section>")[0]
    assert "window light &lt;from&gt; camera left" in card          # escaped, not markup
    assert "sampler.seed: 5 → 2" in card
    assert "characters.a.prompt: &quot;roxygirl04, 25yo woman, soft daylight&quot; → " in card
    assert "vars.light:" in card and "seed 2" in card
    run = json.loads((swept / job["folder"] / "run.json").read_text())
    assert run["timings"] and all(f"<td>{t['node']}</td>" in card for t in run["timings"])


def test_contact_sheet_grid_rows_and_columns_are_the_two_axes(swept):
    d = json.loads((swept / "sweep.json").read_text())
    grid = layout(d["axes"], d["jobs"])
    assert grid.rows == ("seed = 1", "seed = 2", "seed = 3")
    assert grid.columns == ("light = rembrandt", "light = window light <from> camera left")
    assert grid.cells == ((0, 1), (2, 3), (4, 5))
    assert caption(d["jobs"][3], d["axes"]) == "seed = 2 / light = window light <from> camera left"
    sheet = Image.open(swept / "contact.png").convert("RGB")
    pixels = list(zip(*[iter(sheet.tobytes())] * 3))   # RGB triples, row by row
    grey = [(i % sheet.width, i // sheet.width) for i, c in enumerate(pixels) if c == (96, 96, 96)]
    assert len(runs(sorted({x for x, _ in grey}))) == 2      # the pictures: two columns ...
    assert len(runs(sorted({y for _, y in grey}))) == 3      # ... of three rows
    colours = set(pixels)
    assert BG in colours and any(max(c) < 80 for c in colours)   # and dark text: the labels


def runs(values: list) -> list:
    """[1, 2, 3, 7, 8] -> [[1, 2, 3], [7, 8]]"""
    out = []
    for v in values:
        if out and v == out[-1][-1] + 1:
            out[-1].append(v)
        else:
            out.append([v])
    return out


def test_layouts_for_one_three_and_failed():
    axes = [{"key": "variant", "label": "variant", "values": ["a", "b"]},
            {"key": "sampler.seed", "label": "seed", "values": ["1", "2"]},
            {"key": "vars.light", "label": "light", "values": ["x", "y", "z"]}]
    jobs = [{"index": i, "label": str(i), "coords": {"variant": v, "seed": s, "light": li}}
            for i, (v, s, li) in enumerate((v, s, li) for v in "ab" for s in "12" for li in "xyz")]
    grid = layout(axes, jobs)
    assert grid.rows == ("variant = a / seed = 1", "variant = a / seed = 2", "variant = b / seed = 1",
                         "variant = b / seed = 2")
    assert grid.columns == ("light = x", "light = y", "light = z") and grid.cells[3] == (9, 10, 11)
    one = layout(axes[:1], [{"index": 0, "label": "a", "coords": {"variant": "a"}},
                            {"index": 1, "label": "b", "coords": {"variant": "b"}}])
    assert one.cells == ((0, 1),) and one.title == "variant"


def test_failed_cells_are_marked_on_the_sheet(tmp_path):
    from compiler.ab.contact import write_contact_sheet
    data = {"recipe": "x", "axes": [{"key": "variant", "label": "variant", "values": ["a", "b"]}],
            "jobs": [{"index": 0, "label": "a", "coords": {"variant": "a"}, "status": "failed", "images": []},
                     {"index": 1, "label": "b", "coords": {"variant": "b"}, "status": "success",
                      "images": ["b.png"]}]}
    Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / "b.png")
    sheet = Image.open(write_contact_sheet(tmp_path, data)).convert("RGB")
    colours = {sheet.getpixel((x, y)) for x in range(0, sheet.width, 5) for y in range(0, sheet.height, 5)}
    assert FAINT in colours and (10, 200, 10) in colours


def test_cells_are_labelled_only_with_what_the_headers_do_not_say(swept):
    from compiler.ab.contact import cell_caption
    d = json.loads((swept / "sweep.json").read_text())
    grid = layout(d["axes"], d["jobs"])
    assert [cell_caption(grid, j, d["axes"]) for j in d["jobs"]] == [""] * 6      # rows and columns say it all
    assert cell_caption(grid, {**d["jobs"][0], "status": "failed"}, d["axes"]) == "(failed)"
    assert cell_caption(grid, {**d["jobs"][0], "status": "failed"}, d["axes"], has_image=False) == ""
    axes = [{"key": "variant", "label": "variant", "values": ["a", "b"]}]
    jobs = [{"index": 0, "label": "a", "coords": {"variant": "a"}}, {"index": 1, "label": "b", "coords": {"variant": "b"}}]
    one = layout(axes, jobs)                                                       # one axis: no headers
    assert [cell_caption(one, j, axes) for j in jobs] == ["variant = a", "variant = b"]


def test_each_picture_fills_its_cell_with_crisp_pixels_when_enlarged(tmp_path):
    from compiler.ab.contact import THUMB, write_contact_sheet
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (200, 200, 10)]
    small = Image.new("RGB", (2, 2))
    small.putdata(colours)                       # a 2x2 checker: any blending would make new colours
    small.save(tmp_path / "a.png")
    Image.new("RGB", (1024, 512), (10, 200, 200)).save(tmp_path / "b.png")   # shrunk to THUMB wide
    data = {"recipe": "x", "axes": [{"key": "variant", "label": "variant", "values": ["a", "b"]}],
            "jobs": [{"index": i, "label": v, "coords": {"variant": v}, "status": "success", "images": [f"{v}.png"]}
                     for i, v in enumerate("ab")]}
    sheet = Image.open(write_contact_sheet(tmp_path, data)).convert("RGB")
    counts = {c: n for n, c in sheet.getcolors(sheet.width * sheet.height)}
    assert [counts.get(c) for c in colours] == [(THUMB // 2) ** 2] * 4       # enlarged 128x, nothing blended
    assert counts[(10, 200, 200)] == THUMB * THUMB // 2                      # 256x128: it fills the cell's width
