"""A real store for the cluster's tests: SQLite and PostgreSQL, initialised."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from atende.store.db import Store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = Store(store_url)
    await s.init()
    yield s
    await s.close()
