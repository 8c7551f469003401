"""atende's packages compiled with mypyc (scripts/compile-native.py), used only while
they are exactly their sources' build.

The build leaves each module's extension beside its source, which Python imports first,
and one shared library with the code of them all, and last writes a record of the
sources it compiled (``native.json``, beside this file). As each compiled package is
imported, ``use_build`` checks that record against the sources: if any source changed
since, or any part of the build is missing, every module of every such package is
imported from its source instead, so an edit without a rebuild never runs stale code.
All or none: compiled modules call one another's compiled code, across packages too, so
one taken from its source beside the others would make two of each of its classes."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# What scripts/compile-native.py compiles; each one's __init__ calls ``use_build`` before
# anything else (tests/test_native.py checks).
PACKAGES = ("atende.sip", "atende.media", "atende.channels.sip")
RECORD = Path(__file__).resolve().with_name("native.json")
SRC = RECORD.parent.parent  # the folder on sys.path
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # of this Python's extension modules


def sources(package: Path) -> list[Path]:
    """What the build compiles of ``package``: every module but its ``__init__``, which
    stays Python to choose between the build and the sources."""
    return sorted(p for p in package.glob("*.py") if p.name != "__init__.py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _name(src: Path, path: Path) -> str:
    return ".".join(path.relative_to(src).with_suffix("").parts)


def write_record(record: Path, packages: Sequence[Path], shared: str) -> None:
    """After a build of ``packages`` (folders under ``record``'s grandparent, the folder
    on ``sys.path``): what it compiled; ``shared``: its library's file name, there."""
    src = record.parent.parent
    modules = {_name(src, p): _digest(p) for package in packages for p in sources(package)}
    record.write_text(json.dumps({"suffix": SUFFIX, "shared": shared, "modules": modules},
                                 indent=1, sort_keys=True) + "\n")


def current_build(record: Path = RECORD,
                  packages: Sequence[str] = PACKAGES) -> frozenset[str]:
    """``packages``, if the build ``record`` tells of is of them all, all there, for this
    Python, and made from their sources as they are now (no module changed, none added);
    else none of them."""
    src = record.parent.parent
    try:
        built = json.loads(record.read_text())
        modules: dict[str, str] = built["modules"]
        if built["suffix"] != SUFFIX or not (src / built["shared"]).is_file():
            return frozenset()
        names = frozenset(name.rpartition(".")[0] for name in modules)
        if names != set(packages):
            return frozenset()
        found = {_name(src, p): p for name in names
                 for p in sources(src.joinpath(*name.split(".")))}
        if found.keys() == modules.keys() and all(
                p.with_suffix(SUFFIX).is_file() and _digest(p) == modules[name]
                for name, p in found.items()):
            return names
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return frozenset()


class _FromSources:
    """Finds the modules of the packages it is given as their ``.py`` files, passing over
    their compiled ones (a finder of ``sys.meta_path``; not an ``importlib.abc``
    subclass, whose import costs more than all of this)."""

    def __init__(self) -> None:
        self.packages: dict[str, Path] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        parent, _, module = fullname.rpartition(".")
        folder = self.packages.get(parent)
        if folder is None or not (folder / f"{module}.py").is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, folder / f"{module}.py")


_built: frozenset[str] | None = None  # the record checked once, for the first package
_finder = _FromSources()


def use_build(name: str) -> bool:
    """Called by package ``name`` of PACKAGES as it is imported, before any of its
    modules: whether they will come from the compiled build. If not, none of PACKAGES
    will, imported yet or not."""
    global _built
    if _built is None:
        _built = current_build()
        if not _built:
            _finder.packages.update(
                (package, SRC.joinpath(*package.split("."))) for package in PACKAGES)
            sys.meta_path.insert(0, _finder)
    return name in _built


def summary() -> str:
    """Which code this process runs for PACKAGES, for its start-up log."""
    if _built:
        return "running the compiled build of " + ", ".join(sorted(_built))
    return ("running " + ", ".join(PACKAGES) + " from their sources, slower (no current "
            "compiled build: `make install` makes one)")
