"""A package's modules compiled with mypyc (scripts/compile-native.py), used only while
they are exactly its sources' build.

The build leaves each module's extension beside its source, which Python imports first,
and one shared library with the code of them all, and last writes a record of the
sources it compiled (``native.json``). As the package is imported, ``use_build`` checks
that record against the sources: if any source changed since, or any part of the build
is missing, every module of the package is imported from its source instead, so an edit
without a rebuild never runs stale code. All or none: compiled modules call one
another's compiled code, so one taken from its source beside the others would make two
of each of its classes."""

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

RECORD = "native.json"


def sources(package: Path) -> list[Path]:
    """What the build compiles: every module of ``package`` but its ``__init__``, which
    stays Python to choose between the build and the sources."""
    return sorted(p for p in package.glob("*.py") if p.name != "__init__.py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_record(package: Path, shared: str) -> None:
    """After a build of ``package``: what it compiled, ``shared`` its library's file name
    (in the folder ``package``'s top package is in)."""
    record = {"suffix": importlib.machinery.EXTENSION_SUFFIXES[0], "shared": shared,
              "modules": {p.stem: _digest(p) for p in sources(package)}}
    (package / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def build_is_current(package: Path) -> bool:
    """Whether ``package``'s compiled modules are all there, for this Python, and built
    from its sources as they are now."""
    try:
        record = json.loads((package / RECORD).read_text())
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        built: dict[str, str] = record["modules"]
        if record["suffix"] != suffix or not (package.parent.parent / record["shared"]).is_file():
            return False
        found = sources(package)
        return sorted(built) == [p.stem for p in found] and all(
            p.with_suffix(suffix).is_file() and _digest(p) == built[p.stem] for p in found)
    except (OSError, ValueError, KeyError, TypeError):
        return False


class _FromSources:
    """Finds a package's modules as their ``.py`` files, passing over their compiled ones
    (a finder of ``sys.meta_path``; not an ``importlib.abc`` subclass, whose import costs
    more than all of this)."""

    def __init__(self, name: str, package: Path) -> None:
        self.name = name
        self.package = package

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        parent, _, module = fullname.rpartition(".")
        source = self.package / f"{module}.py"
        if parent != self.name or not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def use_build(name: str, package: Path) -> bool:
    """Called by package ``name`` (in folder ``package``) as it is imported, before any of
    its modules: whether they will come from its compiled build (else from its sources)."""
    if build_is_current(package):
        return True
    sys.meta_path.insert(0, _FromSources(name, package))
    return False
