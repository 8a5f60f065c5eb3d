"""Where a run gets a server's node catalogue: a `CatalogueProvider`, owned by
whoever calls (one run, a watch session, a sweep lane), never a module global.

It fetches GET /object_info on first use and keeps that answer. A graph that
needs a model file or node class the held catalogue lacks makes it ask the
server once more before the check reports it: the user may have just added the
file (a long `recipe watch` must see a LoRA copied onto the server). A
catalogue fetched by that very call is not fetched again. With a `cache_dir`,
each distinct catalogue is also kept on disk, by content hash.

`ClassCatalogues` is the same interface for a one-off `recipe run`: it asks
GET /object_info/{class} for only the classes the graph uses and keeps each
answer on disk, per server and per class, for `max_age` seconds, so a warm
run never fetches the whole 600 KB catalogue. Its catalogue holds those
classes alone (`scope` says so; its hash is theirs). A class the server lacks,
or a model file a held entry does not list, is asked for once more before
the check reports it.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Dict, Iterable, Optional, Set
from urllib.parse import quote

from compiler.check.catalogue import absent_from
from compiler.comfy.object_info import Catalogue
from compiler.files import write_atomic
from compiler.ir.graph import Graph

__all__ = ["CatalogueProvider", "ClassCatalogues", "FULL_SCOPE"]

FULL_SCOPE = "the full catalogue (GET /object_info)"


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
        catalogue = Catalogue(self.client.object_info(), key, FULL_SCOPE)
        self.fetches += 1
        if self.cache_dir is not None:
            target = Path(self.cache_dir) / _server_key(self.client) / f"{catalogue.hash}.json"
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


class ClassCatalogues:
    """Per server, per class, with a short expiry: the catalogue of the
    classes a run's graphs use. `fetches` counts GET /object_info/{class}."""

    def __init__(self, client, cache_dir: Optional[Path] = None, max_age: float = 300.0):
        self.client, self.max_age = client, max_age
        self.folder = (Path(cache_dir) / _server_key(client) / "classes") if cache_dir is not None else None
        self.current: Optional[Catalogue] = None
        self.fetches = 0
        self._held: Dict[str, tuple] = {}   # class -> (fetched at, entry or None), this session's

    def get(self) -> Catalogue:
        """The catalogue of the classes asked for so far (none yet: empty)."""
        return self.current or self._catalogue(set(self._held))

    def refetch(self) -> Catalogue:
        """Ask the server again for every class held."""
        for name in list(self._held):
            self._fetch(name)
        return self._catalogue(set(self._held))

    def for_graphs(self, graphs: Iterable[Graph]) -> Catalogue:
        graphs = list(graphs)
        names, fetched = {node.class_type for g in graphs for node in g}, set()
        for name in sorted(names):
            if not self._fresh(name):
                self._fetch(name)
                fetched.add(name)
        catalogue = self._catalogue(names)
        lacking = {g[node_id].class_type for g in graphs for node_id, _ in absent_from(g, catalogue)}
        if lacking - fetched:   # the server may have gained it since: ask once before reporting it
            for name in sorted(lacking - fetched):
                self._fetch(name)
            catalogue = self._catalogue(names)
        return catalogue

    def _fresh(self, name: str) -> bool:
        at, _ = self._held.get(name, (None, None))
        if at is None and self.folder is not None:
            at = self._load(name)
        return at is not None and time.time() - at < self.max_age

    def _load(self, name: str) -> Optional[float]:
        path = self.folder / f"{quote(name, safe='')}.json"
        try:
            at, entry = path.stat().st_mtime, json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict):
            return None
        self._held[name] = (at, entry)
        return at

    def _fetch(self, name: str) -> None:
        entry = self.client.object_info_of(name)
        self.fetches += 1
        self._held[name] = (time.time(), entry)
        if self.folder is not None and entry is not None:   # an unknown class is not kept: ask again next run
            write_atomic(self.folder / f"{quote(name, safe='')}.json", json.dumps(entry))

    def _catalogue(self, names: Set[str]) -> Catalogue:
        held = {name: self._held.get(name, (None, None))[1] for name in sorted(names)}
        info = {name: entry for name, entry in held.items() if entry is not None}
        catalogue = Catalogue(info, self.client.address.http_base,
                              f"the entries of the {len(info)} node classes the graph uses "
                              "(GET /object_info/{class}), not the full catalogue")
        self.current = catalogue
        return catalogue


def _server_key(client) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", client.address.http_base)
