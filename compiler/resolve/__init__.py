"""Stages 1-3, in the order they run: the loader (loader.py: marks, duplicate
keys) -> presets (presets.py: extends:, --preset) -> the resolve passes
(passes.py RESOLVE_PASSES: --set, variants aside, the schema check,
shorthand, family defaults, templates, regions, input files, family
requirements) -> a frozen Recipe. The schema check is one of the passes, not
a stage before them. compiler.pipeline drives these and then lowering and
the advisor.
"""
__all__ = ["Context", "resolve_document", "resolve_file", "resolve_loaded"]


def __getattr__(name: str):
    # Loaded on first use: importing any resolve module (schema.py for
    # suggest(), written.py for run folders) must not load every pass.
    if name in __all__:
        from compiler.resolve import passes
        return getattr(passes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
