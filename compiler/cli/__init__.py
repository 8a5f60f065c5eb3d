"""The `recipe` command: a thin shell, the only place errors become exit codes.
"""
from compiler.cli.main import main

__all__ = ["main"]
