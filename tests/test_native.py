"""A package's compiled build (scripts/compile-native.py, for the SIP core) is used only
while it is exactly the sources' build, and then for every module of the package;
otherwise every module is imported from its source (``atende.native``)."""

from __future__ import annotations

import importlib.machinery
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import atende.sip
import atende.sip.message
from atende.native import RECORD, build_is_current, write_record

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
SRC = Path(atende.sip.__file__).resolve().parent.parent.parent


def fake_build(src: Path) -> Path:
    """A package of two modules, with (empty) compiled files and the build's record."""
    package = src / "pkg" / "sip"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in ("alpha", "beta"):
        (package / f"{name}.py").write_text(f"NAME = {name!r}\n")
        (package / f"{name}{SUFFIX}").write_bytes(b"")
    (src / f"abc__mypyc{SUFFIX}").write_bytes(b"")
    write_record(package, f"abc__mypyc{SUFFIX}")
    return package


def test_the_build_is_current_only_while_it_matches_every_source(tmp_path: Path) -> None:
    package = fake_build(tmp_path)
    assert build_is_current(package)

    beta = package / "beta.py"
    beta.write_text("NAME = 'changed'\n")  # edited, not rebuilt
    assert not build_is_current(package)
    beta.write_text("NAME = 'beta'\n")
    assert build_is_current(package)

    (package / f"alpha{SUFFIX}").unlink()  # one module not built
    assert not build_is_current(package)
    (package / f"alpha{SUFFIX}").write_bytes(b"")

    (package / "gamma.py").write_text("")  # a module the build never saw
    assert not build_is_current(package)
    (package / "gamma.py").unlink()

    (tmp_path / f"abc__mypyc{SUFFIX}").unlink()  # the shared library gone
    assert not build_is_current(package)
    (tmp_path / f"abc__mypyc{SUFFIX}").write_bytes(b"")
    assert build_is_current(package)

    record = json.loads((package / RECORD).read_text())
    (package / RECORD).write_text(json.dumps({**record, "suffix": ".other.so"}))
    assert not build_is_current(package)  # built for another Python
    (package / RECORD).write_text("{not json")
    assert not build_is_current(package)
    (package / RECORD).unlink()
    assert not build_is_current(package)


IMPORTS = """
import atende.sip, atende.sip.message as m, atende.sip.grammar as g
msg = m.parse_message(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\\r\\nVia: SIP/2.0/UDP 127.0.0.1;"
                      b"branch=z9hG4bK1\\r\\nFrom: <sip:b@127.0.0.1>;tag=1\\r\\n"
                      b"To: <sip:a@127.0.0.1>\\r\\nCall-ID: c\\r\\nCSeq: 1 OPTIONS\\r\\n"
                      b"Max-Forwards: 70\\r\\nContent-Length: 0\\r\\n\\r\\n")
print(atende.sip.COMPILED, m.__file__, g.__file__, msg.from_.tag)
"""


def imported(src: Path) -> tuple[bool, str, str, str]:
    out = subprocess.run([sys.executable, "-c", IMPORTS], env={"PYTHONPATH": str(src)},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    compiled, message, grammar, tag = out.split()
    return compiled == "True", message, grammar, tag


@pytest.mark.skipif(not atende.sip.COMPILED,
                    reason="no current compiled build of atende.sip (make install makes one)")
def test_a_source_edited_after_the_build_puts_every_module_back_to_python(
        tmp_path: Path) -> None:
    assert atende.sip.message.__file__ is not None
    assert atende.sip.message.__file__.endswith(SUFFIX)  # this process runs the build
    copy = tmp_path / "src"
    shutil.copytree(SRC / "atende" / "sip", copy / "atende" / "sip")
    for module in ("__init__.py", "native.py"):
        shutil.copy(SRC / "atende" / module, copy / "atende" / module)
    for shared in SRC.glob(f"*__mypyc{SUFFIX}"):
        shutil.copy(shared, copy / shared.name)

    compiled, message, grammar, tag = imported(copy)
    assert compiled and message.startswith(str(copy)) and message.endswith(SUFFIX)
    assert grammar.endswith(SUFFIX) and tag == "1"

    with (copy / "atende" / "sip" / "grammar.py").open("a") as f:
        f.write("# edited after the build\n")
    compiled, message, grammar, tag = imported(copy)
    assert not compiled and tag == "1"
    assert message == str(copy / "atende" / "sip" / "message.py")  # unchanged, yet Python
    assert grammar == str(copy / "atende" / "sip" / "grammar.py")
