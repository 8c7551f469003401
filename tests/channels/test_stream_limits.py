"""What a TCP connection opened to atende may cost (issue 16.4): a cap per address, idle
connections closed, and a message that is begun must be finished soon (slowloris). The
real transport on loopback sockets, with its limits shortened."""

from __future__ import annotations

import asyncio

from atende.channels.sip.transport import SipTransport, StreamLimits

LIMITS = StreamLimits(idle_s=0.6, message_s=0.4, per_address=3, sweep_s=0.05)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds``."""
    try:
        return await asyncio.wait_for(reader.read(1000), seconds) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


async def test_connections_opened_to_us_are_bounded() -> None:
    got: list[bytes] = []
    transport = SipTransport(lambda data, source: got.append(data), limits=LIMITS)
    await transport.start("127.0.0.1", 0)
    port = transport.port
    opened = []
    try:
        for _ in range(5):
            opened.append(await asyncio.open_connection("127.0.0.1", port))
        # Three from one address are taken; the fourth and fifth are closed at once.
        assert [await closed_within(r, 0.2) for r, _ in opened[3:]] == [True, True]
        (idle_r, _), (alive_r, alive_w), (slow_r, slow_w) = opened[:3]
        loop = asyncio.get_running_loop()
        start = loop.time()
        slow_w.write(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;")

        async def keep_alive() -> None:
            for _ in range(8):
                alive_w.write(b"\r\n\r\n")  # RFC 5626 pings keep it open
                await asyncio.sleep(0.15)

        async def trickle() -> None:
            for _ in range(20):
                slow_w.write(b"x")  # a byte now and then never finishes the message
                await asyncio.sleep(0.1)

        pinging = loop.create_task(keep_alive())
        trickling = loop.create_task(trickle())
        assert await closed_within(slow_r, 1.0)
        assert 0.35 <= loop.time() - start < 0.8
        assert await closed_within(idle_r, 1.0)
        assert 0.55 <= loop.time() - start < 1.2
        assert not alive_r.at_eof()
        await pinging
        trickling.cancel()
        assert got == []  # nothing half-sent was handed on
    finally:
        for _, w in opened:
            w.close()
        await transport.close()


async def test_connections_we_open_are_kept_while_idle() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def pbx(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # until we close it

    server = await asyncio.start_server(pbx, "127.0.0.1", 0)
    pbx_port = server.sockets[0].getsockname()[1]
    transport = SipTransport(lambda data, source: None, limits=LIMITS)
    await transport.start("127.0.0.1", 0)
    try:
        transport.send(b"\r\n\r\n", ("tcp", "127.0.0.1", pbx_port))
        await asyncio.sleep(1.2)  # twice the idle time
        assert ("tcp", "127.0.0.1", pbx_port) in transport.connections
        assert len(accepted) == 1 and not accepted[0].is_closing()
    finally:
        await transport.close()
        server.close()
