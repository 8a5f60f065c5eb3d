"""A sweep's contact sheet (contact.png): every job's first image in a
labelled grid, so an A/B comparison is one picture.

With two axes that vary, rows are the first and columns the second
("light = rembrandt" down the side, "seed = 2" across the top); with more,
columns are the last axis and rows every combination of the others; with
one, a single row (wrapped after six). Each picture is scaled to fill its
cell (nearest-neighbour when enlarging, so a 64-pixel draft shows its
pixels rather than a blur), and a cell is captioned only with what the row
and column headers do not already say: with headers, nothing but a failed
job's status; without them (one axis, one run), what differs.
"""
from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

from compiler.files import write_atomic

__all__ = ["Grid", "layout", "caption", "cell_caption", "write_contact_sheet"]

THUMB = 256         # longest side of a picture on the sheet: every picture is scaled to it
PAD = 12
LINE = 18           # caption line height at the default font size
WRAP_SINGLE = 6     # one axis: this many per row
BG, INK, FAINT, BAD = (250, 250, 248), (20, 20, 20), (225, 225, 220), (170, 30, 30)


@dataclass(frozen=True)
class Grid:
    title: str
    rows: Tuple[str, ...]              # row headers ("" when rows mean nothing)
    columns: Tuple[str, ...]           # column headers ("" likewise)
    cells: Tuple[Tuple[Optional[int], ...], ...]   # job index per (row, column), None: empty


def _axis_text(axis: dict, value: str) -> str:
    return f"{axis['label']} = {value}"


def layout(axes: Sequence[dict], jobs: Sequence[dict]) -> Grid:
    """Where each job goes; `axes` and `jobs` as sweep.json has them."""
    varying = [a for a in axes if len(a["values"]) > 1]
    by_coords = {tuple(j["coords"][a["label"]] for a in varying): j["index"] for j in jobs}
    if len(varying) <= 1:
        order = [by_coords.get((v,)) for v in varying[0]["values"]] if varying else [j["index"] for j in jobs]
        width = min(WRAP_SINGLE, max(1, len(order)))
        cells = [tuple(order[i:i + width]) + (None,) * (width - len(order[i:i + width]))
                 for i in range(0, len(order), width)]
        title = f"{varying[0]['label']}" if varying else "one run"
        return Grid(title, ("",) * len(cells), ("",) * width, tuple(cells))
    col, row_axes = varying[-1], varying[:-1]
    rows = list(itertools.product(*[a["values"] for a in row_axes]))
    cells = tuple(tuple(by_coords.get(r + (c,)) for c in col["values"]) for r in rows)
    row_names = tuple(" / ".join(_axis_text(a, v) for a, v in zip(row_axes, r)) for r in rows)
    title = f"rows: {' / '.join(a['label'] for a in row_axes)}    columns: {col['label']}"
    return Grid(title, row_names, tuple(_axis_text(col, v) for v in col["values"]), cells)


def _font(size: int = 14) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:        # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font, width: int, lines: int) -> List[str]:
    """Greedy word wrap to `width` pixels, at most `lines` lines (the last cut with …)."""
    out, current = [], ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if font.getlength(trial) <= width or not current:
            current = trial
        else:
            out.append(current)
            current = word
    out.append(current)
    if len(out) > lines:
        out = out[:lines]
        while out[-1] and font.getlength(out[-1] + "…") > width:
            out[-1] = out[-1][:-1]
        out[-1] += "…"
    return out


def _thumb(path: Optional[Path], box: int = THUMB) -> Optional[Image.Image]:
    """The picture scaled so its longest side fills `box`: nearest-neighbour
    when enlarging (crisp pixels), Lanczos when shrinking."""
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except OSError:          # missing or unreadable: the cell says so instead
        return None
    scale = box / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)


def write_contact_sheet(folder: Path, data: dict) -> Path:
    """contact.png in the sweep folder, from sweep.json's `axes` and `jobs`."""
    grid = layout(data["axes"], data["jobs"])
    jobs = {j["index"]: j for j in data["jobs"]}
    thumbs = {i: _thumb(folder / j["images"][0]) if j.get("images") else None for i, j in jobs.items()}
    font, small = _font(15), _font(13)
    box = THUMB
    captions = {i: cell_caption(grid, j, data["axes"], thumbs[i] is not None) for i, j in jobs.items()}
    lines = max([0] + [len(_wrap(t, small, box, 3)) for t in captions.values() if t])
    cell_w, cell_h = box + PAD, box + PAD + (lines * LINE + 4 if lines else 0)
    side = 0 if not any(grid.rows) else int(min(max(font.getlength(r) for r in grid.rows), 2 * box)) + 2 * PAD
    top = 2 * LINE + PAD + (2 * LINE + PAD if any(grid.columns) else 0)
    sheet = Image.new("RGB", (side + len(grid.columns) * cell_w + PAD, top + len(grid.rows) * cell_h + PAD), BG)
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), f"{data.get('recipe', '')} sweep    {grid.title}", fill=INK, font=font)
    for c, name in enumerate(grid.columns):
        for k, line in enumerate(_wrap(name, font, box, 2) if name else []):
            draw.text((side + c * cell_w + PAD + (box - font.getlength(line)) / 2, 2 * LINE + PAD + k * LINE),
                      line, fill=INK, font=font)
    for r, name in enumerate(grid.rows):
        lines = _wrap(name, font, side - 2 * PAD, 4) if name else []
        for k, line in enumerate(lines):
            draw.text((PAD, top + r * cell_h + (box - len(lines) * LINE) // 2 + k * LINE), line, fill=INK, font=font)
        for c, index in enumerate(grid.cells[r]):
            if index is not None:
                _cell(draw, sheet, (side + c * cell_w + PAD, top + r * cell_h, box), jobs[index],
                      thumbs[index], small, captions[index])
    return write_atomic(folder / "contact.png", _png(sheet))


def caption(job: dict, axes: Sequence[dict]) -> str:
    """What differs, as the sheet names it: "light = rembrandt / seed = 2"."""
    parts = [f"{a['label']} = {job['coords'][a['label']]}" for a in axes
             if len(a["values"]) > 1 and a["label"] in job.get("coords", {})]
    return " / ".join(parts) or job["label"]


def cell_caption(grid: Grid, job: dict, axes: Sequence[dict], has_image: bool = True) -> str:
    """What a cell must say that the headers do not: with row and column
    headers, only a job's status when it did not succeed (and its picture
    came anyway: an empty cell shows the status in its place); without
    headers, what differs (or the job's label), and that status."""
    ok = job.get("status", "success") == "success" or not has_image
    failed = "" if ok else f"({job.get('status')})"
    said = "" if any(grid.rows) or any(grid.columns) else caption(job, axes)
    return " ".join(t for t in (said, failed) if t)


def _cell(draw, sheet, at: Tuple[int, int, int], job: dict, thumb, font, text: str) -> None:
    x, y, box = at
    if thumb is not None:
        sheet.paste(thumb, (x + (box - thumb.width) // 2, y + (box - thumb.height) // 2))
    else:
        draw.rectangle([x, y, x + box - 1, y + box - 1], fill=FAINT)
        draw.text((x + PAD, y + box // 2 - LINE // 2), job.get("status", "no image"), fill=BAD, font=font)
    for k, line in enumerate(_wrap(text, font, box, 3) if text else []):
        draw.text((x, y + box + 4 + k * LINE), line, fill=INK, font=font)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    return buf.getvalue()
