"""What a new user meets first: the README's first command, as written there."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from compiler.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def first_recipe_command() -> list:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S).group(1)
    command = block.split("&&")[-1].strip()          # after the venv set-up
    words = shlex.split(command)
    assert words[0].endswith("recipe"), command
    return words[1:]


def test_the_readmes_first_command_prints_no_warning(capsys, tmp_path, monkeypatch):
    args = first_recipe_command()
    assert args[:2] == ["compile", "recipes/portrait.yaml"]
    args[args.index("-o") + 1] = str(tmp_path / "portrait.api.json")
    monkeypatch.chdir(ROOT)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and err.startswith("wrote "), err
