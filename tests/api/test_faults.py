"""A route that fails unexpectedly answers 500 and the connection stays open (issue 16.10:
after a 500, uvicorn dropped the keep-alive connection) — on a real uvicorn server."""

from __future__ import annotations

import asyncio

import uvicorn
from fastapi import APIRouter

from atende.agent.brain import DEFAULT_RULES
from atende.api.app import create_api
from atende.store import apikeys
from atende.store.db import Store
from tests.peers.net import free_port


async def test_a_failing_route_answers_500_and_keeps_the_connection(store_url: str) -> None:
    store = Store(store_url)
    await store.init(DEFAULT_RULES.to_dict())
    key = apikeys.new_key()
    await store.run(apikeys.create("tests", key))
    broken = APIRouter()

    @broken.get("/v1/broken")
    async def fails() -> dict[str, str]:
        raise RuntimeError("a bug")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_api(store, [broken]), host="127.0.0.1",
                                           port=port, log_config=None, lifespan="off"))
    serving = asyncio.get_running_loop().create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path, status in (("/v1/broken", b"500"), ("/health", b"200"),
                             ("/v1/broken", b"500"), ("/v1/calls", b"200")):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                         "\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 " + status), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            if status == b"500":
                assert b"internal error" in body and b"a bug" not in body
        writer.close()
    finally:
        server.should_exit = True
        await serving
        await store.close()
