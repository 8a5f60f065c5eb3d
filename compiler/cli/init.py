"""`recipe init [NAME] --server HOST:PORT | --object-info PATH`: a commented
starter recipe from what a server has."""
from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from compiler.errors import Location, RecipeError

__all__ = ["COMMANDS", "add_commands", "schema_location"]


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("init", help="write a commented starter recipe from what a server has")
    p.add_argument("name", nargs="?", default="starter",
                   help="the recipe's name; it is written to NAME.yaml (default: starter)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of NAME.yaml")
    p.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--server", metavar="HOST:PORT", help="ask this ComfyUI server what it has")
    group.add_argument("--object-info", metavar="PATH", help="a saved GET /object_info answer")


def schema_location() -> str:
    """The installed recipe schema, as a file URI editors can open."""
    return Path(str(resources.files("compiler._schema").joinpath("recipe.schema.json"))).resolve().as_uri()


def cmd_init(args) -> int:
    from compiler.cli.common import catalogue_from
    from compiler.comfy.starter import starter_recipe
    from compiler.files import write_atomic
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name):
        raise RecipeError(f"a recipe name is letters, digits, `.`, `_` and `-`, not {args.name!r}")
    target = Path(args.output or f"{args.name}.yaml")
    if target.exists() and not args.force:
        raise RecipeError("the file exists; pick another NAME or -o FILE, or add --force", Location(str(target)))
    text = starter_recipe(catalogue_from(args), args.name, schema_location())
    write_atomic(target, text)
    print(f"wrote {target}: check it with `recipe check {target}`", file=sys.stderr)
    return 0


COMMANDS: Mapping[str, Callable] = MappingProxyType({"init": cmd_init})
