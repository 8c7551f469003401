"""Compile atende's SIP core, media plane and SIP channel (src/atende/sip,
src/atende/media, src/atende/channels/sip: the packages of ``atende.native.PACKAGES``)
to C with mypyc, in place.

The modules stay plain Python: mypyc compiles the same typed code (checked by `mypy
--strict` anyway) into extension modules that sit beside their sources, which Python
imports first. A SIP message costs about half as much to parse, a call about a fifth
less of the event loop, an RTP call's media about a quarter less (docs/performance.md).
`make install` runs this whenever a source changes; without a C compiler or Python's
headers it says so, and atende runs the sources.

The last step writes the build's record (`src/atende/native.json`): as a compiled
package is imported, `atende.native` checks the record against the sources, and the
sources run while it is missing or older than one of them.

`python scripts/compile-native.py [--clean]`: build, or remove what a build left."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
BUILD = ROOT / "build" / "native"
sys.path.insert(0, str(SRC))
from atende.native import (  # noqa: E402  (not installed)
    PACKAGES,
    RECORD,
    SUFFIX,
    sources,
    write_record,
)

FOLDERS = [SRC.joinpath(*package.split(".")) for package in PACKAGES]


def clean() -> None:
    """Every compiled file under src/atende, not only PACKAGES': one left from a package
    no longer compiled would be imported before its source, unchecked."""
    RECORD.unlink(missing_ok=True)
    for built in [*(SRC / "atende").rglob(f"*{SUFFIX}"), *SRC.glob(f"*__mypyc{SUFFIX}")]:
        built.unlink()
    shutil.rmtree(BUILD, ignore_errors=True)


def build() -> int:
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        print("compile-native: this Python has no C headers (Debian: python3-dev); "
              "atende runs its pure Python", file=sys.stderr)
        return 0
    if shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        print("compile-native: no C compiler (Debian: gcc); atende runs its pure Python",
              file=sys.stderr)
        return 0
    from mypyc.build import mypycify
    from setuptools import setup

    clean()  # the record goes first: a build that fails half-way is never taken
    files = [str(p.relative_to(SRC)) for f in FOLDERS for p in sources(f)]
    os.chdir(SRC)  # mypyc names the modules after their paths from here
    # Checked with the project's mypy settings (third-party modules without types are
    # taken as `mypy src` takes them).
    extensions = mypycify(["--config-file", str(ROOT / "pyproject.toml"), *files],
                          opt_level="3", target_dir=str(BUILD / "c"))
    setup(name="atende-native", ext_modules=extensions, script_name="compile-native.py",
          script_args=["--quiet", "build_ext", "--inplace", "--parallel", "2",
                       "--build-temp", str(BUILD / "temp"), "--build-lib", str(BUILD / "lib")])
    missing = [p.name for f in FOLDERS for p in sources(f) if not p.with_suffix(SUFFIX).exists()]
    shared = sorted(SRC.glob(f"*__mypyc{SUFFIX}"))  # the code of all of them, one library
    if missing or len(shared) != 1:
        print(f"compile-native: not built: {', '.join(missing) or 'the shared library'}",
              file=sys.stderr)
        return 1
    write_record(RECORD, FOLDERS, shared[0].name)
    print(f"compile-native: {len(files)} modules compiled ({', '.join(PACKAGES)})")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--clean"]:
        clean()
        sys.exit(0)
    sys.exit(build())
