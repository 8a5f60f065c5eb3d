"""Where a run gets a server's node catalogue: a `CatalogueProvider`, owned by
whoever calls (one run, a watch session, a sweep lane), never a module global.

It fetches GET /object_info on first use and keeps that answer. A graph that
needs a model file or node class the held catalogue lacks makes it ask the
server once more before the check reports it: the user may have just added the
file (a long `recipe watch` must see a LoRA copied onto the server). A
catalogue fetched by that very call is not fetched again. With a `cache_dir`,
each distinct catalogue is also kept on disk, by content hash.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Optional

from compiler.check.catalogue import absent_from
from compiler.comfy.object_info import Catalogue
from compiler.files import write_atomic
from compiler.ir.graph import Graph

__all__ = ["CatalogueProvider"]


class CatalogueProvider:
    def __init__(self, client, cache_dir: Optional[Path] = None):
        self.client, self.cache_dir = client, cache_dir
        self.current: Optional[Catalogue] = None
        self.fetches = 0

    def get(self) -> Catalogue:
        """The catalogue held, fetched first if there is none yet."""
        return self.current or self.refetch()

    def refetch(self) -> Catalogue:
        """Ask the server again, and hold its answer from now on."""
        key = self.client.address.http_base
        catalogue = Catalogue(self.client.object_info(), key)
        self.fetches += 1
        if self.cache_dir is not None:
            target = Path(self.cache_dir) / re.sub(r"[^A-Za-z0-9.-]+", "_", key) / f"{catalogue.hash}.json"
            if not target.exists():
                write_atomic(target, json.dumps(catalogue.info))
        self.current = catalogue
        return catalogue

    def for_graphs(self, graphs: Iterable[Graph]) -> Catalogue:
        """The catalogue to check `graphs` against: the one held, or a fresh one
        (fetched at most once) when one of them needs what the held one lacks."""
        fresh = self.current is None
        catalogue = self.get()
        if not fresh and any(absent_from(g, catalogue) for g in graphs):
            catalogue = self.refetch()
        return catalogue
