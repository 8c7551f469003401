"""What the API refuses before a route reads the request (issue 16, items 8-10): strangers
before their body, bodies past the route's size, and JSON that cannot be stored and read
back — against the running server, over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx

from tests.peers.atende import AtendeProcess

CALL = {"phone_number": "+351912345678", "trunk_id": "none-such"}


async def raw_exchange(atende: AtendeProcess, head: str) -> bytes:
    """Send only a request's head (its body promised but never sent) and read what comes
    back: an answer here proves that nothing waited for the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", atende.api_port)
    try:
        writer.write(head.encode())
        return await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()


async def test_strangers_are_refused_before_their_body_is_read(atende: AtendeProcess) -> None:
    r = httpx.post(atende.base + "/v1/calls", content=b"{not json", timeout=10,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    r = httpx.post(atende.base + "/v1/calls", content=b"{}", timeout=10,
                   headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"})
    assert r.status_code == 401 and r.json()["detail"] == "unknown or revoked API key"
    answer = await raw_exchange(atende, (
        "POST /v1/assistants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 150000000\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 401 ")


async def test_bodies_past_the_route_limit_get_413_as_they_arrive(
        atende: AtendeProcess) -> None:
    answer = await raw_exchange(atende, (
        "POST /v1/calls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {atende.api_key}\r\nContent-Length: 100000000\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"phone_number": "+351912345678", "task": "'
        for _ in range(400):
            yield b"x" * 1024
        yield b'"}'

    r = atende.api.post("/v1/calls", content=chunks(),
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than this route takes" in r.json()["detail"]
    # An assistant's route takes more (rules and prompts run long): 300 KB reaches the
    # route, which says what is wrong with it.
    r = atende.api.post("/v1/assistants", json={"name": "Long", "extension": "long-prompt",
                                                "prompt": "Be kind. " * 37000})
    assert r.status_code == 422 and "prompt" in r.text[:300]


def test_json_that_cannot_be_stored_and_read_back_gets_422(atende: AtendeProcess) -> None:
    before = atende.api.get("/v1/calls").json()["total"]
    deep: object = "bottom"
    for _ in range(300):
        deep = {"d": deep}
    for body, says in (
            (json.dumps({**CALL, "metadata": {"n": float("nan")}}), "NaN"),
            ('{"phone_number": "+351912345678", "metadata": {"x": Infinity}}', "Infinity"),
            ('{"phone_number": "+351912345678", "task": "\\ud800 call"}', "surrogate"),
            (json.dumps({**CALL, "metadata": deep}), "nested too deeply"),
            ('{"phone_number": "1", "metadata": {"l": ' + "[" * 40 + "]" * 40 + "}}",
             "nested too deeply")):
        r = atende.api.post("/v1/calls", content=body.encode(),
                            headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and says in r.json()["detail"], (says, r.text[:200])
    # The same for a rule set, and on a trigger URL (whose token is checked later).
    r = atende.api.post("/v1/assistants", json={"name": "Deep", "extension": "deep",
                                                "rules": deep})
    assert r.status_code == 422 and "nested too deeply" in r.text
    r = httpx.post(atende.base + "/v1/hooks/hk_whatever", content=json.dumps(
        {"phone_number": "1", "metadata": deep}).encode(), timeout=10,
        headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "nested too deeply" in r.text
    # Nothing was queued, and the calls can still be listed.
    listed = atende.api.get("/v1/calls")
    assert listed.status_code == 200 and listed.json()["total"] == before
