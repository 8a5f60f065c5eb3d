"""cli/main.py imports only the module of the command asked for, from its
COMMAND_MODULES table: the table must name exactly the commands each module
adds (and has handlers for), and each must parse when it is built alone."""
from __future__ import annotations

import importlib
import re

import pytest

cli_main = importlib.import_module("compiler.cli.main")   # `compiler.cli.main` is also the function
EVERY = set(cli_main.COMMANDS) | {c for cs in cli_main.COMMAND_MODULES for c in cs}


def listed(parser) -> set:
    """The sub-commands a parser's help lists, one per line, four spaces in."""
    return set(re.findall(r"^    ([a-z][a-z-]*)(?:\s|$)", parser.format_help(), re.M))


@pytest.mark.parametrize("commands", list(cli_main.COMMAND_MODULES), ids="-".join)
def test_each_module_adds_and_handles_what_the_table_says(commands, capsys):
    module = cli_main.COMMAND_MODULES[commands]()
    assert set(module.COMMANDS) == set(commands)
    # Built for one of them: this file's own commands plus exactly that module's.
    assert listed(cli_main.build_parser(commands[0])) - set(cli_main.COMMANDS) == set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as info:
            cli_main.build_parser(command).parse_args([command, "--help"])
        assert info.value.code == 0 and f"usage: recipe {command}" in capsys.readouterr().out


def test_help_lists_every_command():
    assert listed(cli_main.build_parser()) == EVERY


def test_a_typo_is_answered_with_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main.main(["rnu", "x.yaml"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "invalid choice: 'rnu'" in err
    assert all(f"'{name}'" in err for name in EVERY)


def test_every_command_module_is_in_the_table():
    """A module under compiler/cli/ that adds commands but has no row would
    never be imported: its commands would be `invalid choice`."""
    import pkgutil
    import compiler.cli as package
    rows = {frozenset(commands) for commands in cli_main.COMMAND_MODULES}
    found = 0
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"compiler.cli.{info.name}")
        if hasattr(module, "add_commands"):
            found += 1
            assert frozenset(module.COMMANDS) in rows, info.name
    assert found == len(cli_main.COMMAND_MODULES)
