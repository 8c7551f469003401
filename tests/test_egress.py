"""Where atende may send requests users point it at (issue 16.11): public addresses
only by default — checked on the URL and again on the addresses a name resolves to."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from atende.egress import EgressPolicy, guarded_client

STRICT = EgressPolicy()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8100/v1/calls",
    "http://localhost:5432/",
    "http://api.localhost/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.8/crm",
    "http://192.168.1.1/",
    "http://100.64.0.1/",           # carrier-grade NAT
    "http://0x7f000001/",           # 127.0.0.1, as a resolver reads it
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://[::1]:8100/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "https://user:pass@crm.example.com/hook",
    "ftp://crm.example.com/",
])
def test_urls_refused_by_default(url: str) -> None:
    assert STRICT.check_url(url) is not None


def test_public_urls_and_what_the_operator_allows() -> None:
    assert STRICT.check_url("https://crm.example.com/atende?x=1") is None
    assert STRICT.check_url("https://8.8.8.8/") is None
    lan = EgressPolicy("10.1.0.0/16, 192.168.1.20/32")
    assert lan.check_url("http://10.1.2.3:8080/") is None
    assert lan.check_url("http://192.168.1.20/") is None
    assert lan.check_url("http://192.168.1.21/") is not None
    assert lan.check_url("http://127.0.0.1/") is not None
    assert EgressPolicy("all").check_url("http://127.0.0.1:9/") is None
    assert STRICT.refusal(ipaddress.ip_address("127.0.0.1")) is not None
    assert "ATENDE_ALLOW_PRIVATE_URLS" in (STRICT.check_url("http://10.0.0.1/") or "")


async def test_a_name_that_resolves_to_this_machine_is_refused_when_connecting() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        # "localhost" passes no URL check here: only the resolved address can stop it.
        async with guarded_client(STRICT) as client:
            with pytest.raises(httpx.ConnectError, match="is a loopback address"):
                await client.get(f"http://localhost:{port}/")
        async with guarded_client(EgressPolicy("127.0.0.0/8")) as client:
            r = await client.get(f"http://localhost:{port}/")
            assert r.status_code == 200 and r.text == "ok"
    finally:
        server.close()
