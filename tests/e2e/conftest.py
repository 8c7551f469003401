"""Servers shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.atende import AtendeProcess
from tests.peers.debian import require


@pytest.fixture(scope="session")
def atende(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtendeProcess]:
    """atende with its defaults, as `make run` starts it (but on free loopback ports)."""
    require("espeak-ng")
    proc = AtendeProcess(Path(tmp_path_factory.mktemp("atende")), (20000, 20999))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def atende_strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtendeProcess]:
    """atende that rings for 3 s before answering and only takes direct calls from
    127.0.0.1, for CANCEL and the direct-call guard."""
    proc = AtendeProcess(Path(tmp_path_factory.mktemp("atende-strict")), (21000, 21999),
                         ATENDE_ANSWER_DELAY_MS="3000", ATENDE_ALLOW_DIRECT="127.0.0.1/32")
    proc.start()
    yield proc
    proc.stop()
