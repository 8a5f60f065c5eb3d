"""cli/main.py imports only the module of the command asked for, from its
COMMAND_MODULES table: the table must name exactly the commands each module
has, and each must parse when it is built alone."""
from __future__ import annotations

import importlib

import pytest

cli_main = importlib.import_module("compiler.cli.main")   # `compiler.cli.main` is also the function


@pytest.mark.parametrize("commands", list(cli_main.COMMAND_MODULES), ids="-".join)
def test_each_module_has_the_commands_the_table_says(commands, capsys):
    module = cli_main.COMMAND_MODULES[commands]()
    assert set(module.COMMANDS) == set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as info:   # built alone, it knows its command
            cli_main.build_parser(command).parse_args([command, "--help"])
        assert info.value.code == 0 and f"usage: recipe {command}" in capsys.readouterr().out


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["--help"])
    out = capsys.readouterr().out
    every = set(cli_main.COMMANDS) | {c for cs in cli_main.COMMAND_MODULES for c in cs}
    assert all(name in out for name in every), sorted(n for n in every if n not in out)


def test_a_typo_is_answered_with_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main.main(["rnu", "x.yaml"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "invalid choice: 'rnu'" in err and "'watch'" in err
