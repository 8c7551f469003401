"""Servers shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.atende import AtendeProcess
from tests.peers.debian import require


@pytest.fixture(scope="session")
def atende(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtendeProcess]:
    """atende with its defaults, as `make run` starts it (but on free loopback ports, and
    retrying webhooks after 0.5 s, 1 s, 2 s … instead of 10 s, 20 s …)."""
    require("espeak-ng")
    proc = AtendeProcess(Path(tmp_path_factory.mktemp("atende")), (20000, 20999),
                         ATENDE_WEBHOOK_RETRY_BASE_S="0.5")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def atende_strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtendeProcess]:
    """atende with tight limits: rings 1.5 s before answering, takes direct calls only
    from 127.0.0.1, one call at a time, hangs up after 2 s without RTP and after 4 s in
    all, and sends requests to public addresses only (the default). Its tests must end
    their calls before they return. Its SIP bridge challenges with SHA-256 and MD5."""
    proc = AtendeProcess(Path(tmp_path_factory.mktemp("atende-strict")), (21000, 21999),
                         ATENDE_ANSWER_DELAY_MS="1500", ATENDE_ALLOW_DIRECT="127.0.0.1/32",
                         ATENDE_RTP_TIMEOUT_S="2", ATENDE_MAX_CALLS="1",
                         ATENDE_MAX_CALL_SECONDS="4", ATENDE_ALLOW_PRIVATE_URLS="",
                         ATENDE_BRIDGE_DIGEST="SHA-256,MD5")
    proc.start()
    yield proc
    proc.stop()
