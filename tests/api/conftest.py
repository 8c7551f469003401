"""The API as several tenants use it: an admin key and keys of two FusionPBX domains."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from atende.agent.brain import DEFAULT_RULES
from atende.api.app import create_api
from atende.api.assistants import AssistantService, assistants_router
from atende.api.hooks import Hooks, hooks_router
from atende.api.providers import ProviderService, providers_router
from atende.api.stats import stats_router
from atende.store import apikeys, models
from atende.store.db import Store
from atende.store.secrets import SecretBox, new_key

DOMAIN_A = "6f1c2e0a-5b7d-4e8f-9a01-23456789abcd"
DOMAIN_B = "0b9d8c7e-6f5a-4b3c-8d2e-1f0a9b8c7d6e"


@dataclass
class Tenants:
    store: Store
    box: SecretBox
    admin: TestClient  # a key of no domain
    a: TestClient  # domain A's key
    b: TestClient  # domain B's key


@pytest.fixture
def tenants(store_url: str) -> Iterator[Tenants]:
    store = Store(store_url)
    asyncio.run(store.init(DEFAULT_RULES.to_dict()))
    keys = {name: apikeys.new_key() for name in ("admin", "a", "b")}
    for name, domain in (("admin", None), ("a", DOMAIN_A), ("b", DOMAIN_B)):
        asyncio.run(store.run(apikeys.create(name, keys[name], domain)))
    box = SecretBox(new_key().encode())

    async def prepare(a: models.Assistant) -> None:
        pass  # voices: tests/api/test_assistants.py

    app = create_api(store, [assistants_router(AssistantService(store, box, prepare)),
                             providers_router(ProviderService(store, box)),
                             hooks_router(Hooks(store)),
                             stats_router(store)])
    clients = [TestClient(app, headers={"Authorization": f"Bearer {keys[n]}"})
               for n in ("admin", "a", "b")]
    with clients[0], clients[1], clients[2]:
        yield Tenants(store, box, *clients)
