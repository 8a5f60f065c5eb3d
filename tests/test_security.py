"""A shared recipe is safe to compile and run (README: trust model).

Each hostile input is refused with exit 2 before anything outside the
recipe's folder is read and before anything is uploaded: the reads are
counted at the one bounded reader (compiler.files.read_regular, as the
loader and the input pass call it), the uploads at a real test server's
/upload/image.
"""
from __future__ import annotations

import os
import shutil
import stat
import textwrap
from pathlib import Path

import pytest

import compiler.resolve.inputs as inputs
import compiler.resolve.loader as loader
from compiler.cli.main import main
from compiler.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SCENARIO = "11-success-sd15-checkpoint-two-characters-cfg6"
BASE = """\
model: {family: sd15, checkpoint: tiny-sd15.safetensors}
canvas: {width: 256, height: 256}
characters: {a: {prompt: a portrait}}
"""


@pytest.fixture
def reads(monkeypatch):
    """Every path the loader and the input pass read, as real paths."""
    seen = []
    for module in (loader, inputs):
        real = module.read_regular

        def counting(path, limit, real=real):
            seen.append(os.path.realpath(path))
            return real(path, limit)
        monkeypatch.setattr(module, "read_regular", counting)
    return seen


@pytest.fixture
def secret(tmp_path_factory) -> Path:
    """A file outside any recipe's folder, that must never be read."""
    path = tmp_path_factory.mktemp("home") / "id_rsa.png"
    shutil.copy(DATA / "photo.png", path)   # even a real image outside is refused
    return path


def recipe(folder: Path, extra: str, name: str = "r.yaml") -> str:
    path = folder / "project" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BASE + textwrap.dedent(extra), encoding="utf-8")
    return str(path)


def run(capsys, path: str, srv, *args) -> tuple:
    code = main(["run", path, "--server", srv.url, "--out", str(Path(path).parent / "out"), "--plain", *args])
    return code, capsys.readouterr().err


def uploads(srv) -> list:
    return [r for r in srv.requests if r.path == "/upload/image"]


@pytest.mark.parametrize("field", ["image", "mask"])
def test_an_image_outside_the_folder_is_neither_read_nor_uploaded(field, comfy_server, tmp_path, secret,
                                                                   reads, capsys):
    rel = os.path.relpath(secret, tmp_path / "project")
    path = recipe(tmp_path, f"image: {{file: {rel}}}\n")
    if field == "mask":
        Path(path).write_text(BASE.replace("{prompt: a portrait}", f"{{prompt: a portrait, region: {{mask: {secret}}}}}"))
    srv = comfy_server(SCENARIO)
    code, err = run(capsys, path, srv)
    assert code == 2 and "is outside the recipe's folder" in err and err.count("\n") == 1, err
    assert str(secret) not in reads
    assert uploads(srv) == [] and not any(r.path == "/prompt" for r in srv.requests)


def test_set_cannot_reach_outside_either(comfy_server, tmp_path, secret, reads, capsys):
    path = recipe(tmp_path, "")
    srv = comfy_server(SCENARIO)
    code, err = run(capsys, path, srv, "--set", f"image.file={secret}")
    assert code == 2 and err.startswith("error: --set image.file: "), err
    assert str(secret) not in reads and uploads(srv) == []


def test_allow_path_widens_the_folder_on_purpose(comfy_server, tmp_path, secret, reads, capsys):
    path = recipe(tmp_path, f"image: {{file: {secret}}}\n")
    srv = comfy_server(SCENARIO)
    code, err = run(capsys, path, srv, "--allow-path", str(secret.parent))
    assert code == 0, err
    assert str(secret) in reads and len(uploads(srv)) == 1


def test_a_text_file_named_png_is_refused_before_upload(comfy_server, tmp_path, reads, capsys):
    path = recipe(tmp_path, "image: {file: photo.png}\n")
    (Path(path).parent / "photo.png").write_text("not an image at all\n")
    srv = comfy_server(SCENARIO)
    code, err = run(capsys, path, srv)
    assert code == 2 and "is not an image Pillow can read" in err, err
    assert uploads(srv) == []


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "folder"])
def test_a_special_file_is_refused_before_upload(kind, comfy_server, tmp_path, capsys):
    path = recipe(tmp_path, "image: {file: photo.png}\n")
    target = Path(path).parent / "photo.png"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero-link":
        os.symlink("/dev/zero", target)   # its real path is outside: refused by confinement
    else:
        target.mkdir()
    srv = comfy_server(SCENARIO)
    code, err = run(capsys, path, srv)
    assert code == 2 and err.count("\n") == 1, err
    assert uploads(srv) == []


def test_a_symlink_out_of_the_folder_is_refused(tmp_path, secret, reads, capsys):
    path = recipe(tmp_path, "image: {file: photo.png}\n")
    os.symlink(secret, Path(path).parent / "photo.png")
    assert main(["compile", path]) == 2
    assert "`photo.png` is outside the recipe's folder" in capsys.readouterr().err
    assert str(secret) not in reads


def test_a_huge_image_is_read_only_to_its_limit(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(inputs, "MAX_BYTES", 1000)
    path = recipe(tmp_path, "image: {file: big.png}\n")
    (Path(path).parent / "big.png").write_bytes(b"\x89PNG" + b"\0" * 5000)
    assert main(["compile", path]) == 2
    assert "cannot use `big.png`: larger than 1000 bytes" in capsys.readouterr().err


@pytest.mark.parametrize("extends", ["/etc/passwd", "/proc/self/environ", "../../../../../../../etc/passwd",
                                     "[../outside.yaml]"])
def test_extends_reads_nothing_outside_and_points_at_the_extends_line(extends, tmp_path, reads, capsys):
    (tmp_path / "outside.yaml").write_text("sampler: {seed: 1}\n")
    path = tmp_path / "project" / "r.yaml"
    path.parent.mkdir()
    path.write_text(f"name: r\nextends: {extends}\n" + BASE)
    assert main(["compile", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:2:") and "is outside the recipe's folder" in err, err
    assert reads == [os.path.realpath(path)]


def test_presets_one_folder_up_are_still_found(tmp_path, capsys):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "fast.yaml").write_text("sampler: {steps: 3}\n")
    path = recipe(tmp_path, "extends: fast\n")
    assert main(["compile", path, "--preset", "fast"]) == 0, capsys.readouterr().err


def test_preset_fan_out_is_loaded_once_per_file(tmp_path, reads, capsys):
    presets = tmp_path / "project" / "presets"
    presets.mkdir(parents=True)
    for i in range(12):   # each extends the next twice: 2^12 loads without memoising
        nxt = f"extends: [p{i + 1}, p{i + 1}]\n" if i < 11 else ""
        (presets / f"p{i}.yaml").write_text(f"{nxt}vars: {{v{i}: x}}\n")
    path = recipe(tmp_path, "extends: p0\n")
    assert main(["compile", path]) == 0, capsys.readouterr().err
    assert len(reads) == len(set(reads)) == 13


def test_a_long_preset_chain_is_one_line(tmp_path, capsys):
    presets = tmp_path / "project" / "presets"
    presets.mkdir(parents=True)
    for i in range(2000):
        (presets / f"p{i}.yaml").write_text(f"extends: p{i + 1}\n" if i < 1999 else "vars: {}\n")
    path = recipe(tmp_path, "extends: p0\n")
    assert main(["compile", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "presets extend each other more than 16 deep" in err, err


def test_output_to_a_device_leaves_the_device(tmp_path, capsys):
    """`-o /dev/null` as root used to rename a regular file over the device.
    A private copy of /dev/null (root only), so a failure breaks nothing else."""
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("only root can make a device node")
    path = recipe(tmp_path, "")
    assert main(["compile", path, "-o", str(null)]) == 0, capsys.readouterr().err
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_write_atomic_keeps_links_and_devices(tmp_path):
    """Through a link to a FIFO (a reader waits on it): the link and the FIFO stay."""
    import threading
    fifo, link = tmp_path / "fifo", tmp_path / "out"
    os.mkfifo(fifo)
    os.symlink(fifo, link)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(link, "x")
    reader.join(5)
    assert got == [b"x"] and link.is_symlink() and os.readlink(link) == str(fifo)
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, "x")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)


def test_git_revision_cannot_be_an_option(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    target = tmp_path / "written-by-git"
    code = main(["diff", "recipes/portrait.yaml", f"git:--output={target}:recipes/portrait.yaml"])
    assert code == 2 and not target.exists()
    assert "a revision cannot start with -" in capsys.readouterr().err


def test_terminal_escapes_are_shown_escaped(tmp_path, capsys):
    path = recipe(tmp_path, 'sampler: {name: "x\\e]0;owned\\a\\e[2J"}\n')
    assert main(["compile", path]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "x\\x1b]0;owned\\x07\\x1b[2J" in err


def test_check_looks_inside_variants_and_sweep(tmp_path, capsys):
    path = recipe(tmp_path, "variants:\n  fast: {sampler: {stpes: 4}}\nsweep:\n  sampler.cfg: [5, 500]\n")
    assert main(["check", path]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 2)[-1] for line in err] == [
        "in job `fast`: unknown key `stpes` (did you mean `steps`?)", "in job `cfg=500`: must be ≤ 100, not 500"]


def test_a_merge_key_with_an_override_is_not_a_duplicate(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("model: {family: sd15, checkpoint: x.safetensors}\n"
                    "characters:\n  a: &base {prompt: first, trigger: t}\n"
                    "  b:\n    <<: *base\n    prompt: other\n")
    assert main(["resolve", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "prompt: t, other" in out and "prompt: t, first" in out


def test_set_cannot_change_extends(tmp_path, capsys):
    path = recipe(tmp_path, "")
    assert main(["compile", path, "--set", "extends=[speed]"]) == 2
    assert "`extends` cannot be set with --set" in capsys.readouterr().err
