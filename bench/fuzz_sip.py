"""Mutation fuzzing of a running atende's SIP port (loopback only): sends mutated SIP
messages over UDP and over TCP, in batches, and after each batch checks that a valid
OPTIONS is still answered. Prints messages sent, replies by status, tracebacks the server
logged, its memory before and after. Not a CI test: run it against `make run`:

    python bench/fuzz_sip.py --port 5060 --pid $(pgrep -f 'atende serve') \\
        --log /path/to/atende.log --udp 1000000 --tcp 10000

(With no --pid/--log it starts an atende of its own in a temporary folder.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers.atende import AtendeProcess

SEED = (
    "INVITE sip:assistant@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/{t} 127.0.0.1:{p};branch=z9hG4bK{b};rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Fuzz" <sip:fuzz@127.0.0.1>;tag={b}\r\n'
    "To: <sip:assistant@127.0.0.1>\r\n"
    "Call-ID: {b}@fuzz\r\nCSeq: 1 INVITE\r\n"
    "Contact: <sip:fuzz@127.0.0.1:{p}>\r\n"
    "Content-Type: application/sdp\r\nContent-Length: {n}\r\n\r\n{sdp}")
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
TRICKY = [b" ", b"\t", b"\r\n", b":", b";", b",", b"=", b"@", b"<", b">", b'"', b"\\",
          b"%", b"0", b"9", "²".encode(), b"\x00", b"\xff", b"SIP/2.0", b"\r\n\r\n",
          b"Content-Length: 99999\r\n", b"Via: x\r\n"]
METHODS = ["INVITE", "OPTIONS", "BYE", "CANCEL", "ACK", "REGISTER", "INFO", "REFER", "XYZ"]


def seed(transport: str, port: int, rng: random.Random, method: str | None = None) -> bytes:
    method = method or rng.choice(METHODS)
    body = SDP if method == "INVITE" else ""
    text = SEED.format(t=transport, p=port, b=secrets.token_hex(5), n=len(body), sdp=body)
    return text.replace("INVITE", method).encode()


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(out) + 1)
        piece = rng.choice(TRICKY) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 4))
        action = rng.random()
        if action < 0.4:
            out[at:at] = piece
        elif action < 0.8:
            out[at:at + len(piece)] = piece
        else:
            del out[at:at + rng.randint(1, 8)]
    return bytes(out)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def probe(port: int) -> bool:
    """A valid OPTIONS over UDP gets its 200 within 10 s (sent again every half second:
    the server's socket buffer may still be full of fuzz, and UDP drops what overflows)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        options = seed("UDP", s.getsockname()[1], random.Random(0), "OPTIONS")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s.sendto(options, ("127.0.0.1", port))
            try:
                while True:
                    if s.recv(65535).startswith(b"SIP/2.0 200"):
                        return True
            except TimeoutError:
                pass
        return False


def fuzz_udp(port: int, count: int, rng: random.Random, statuses: collections.Counter[str]
             ) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        me = s.getsockname()[1]
        for i in range(count):
            s.sendto(mutate(seed("UDP", me, rng), rng), ("127.0.0.1", port))
            if i % 50 == 0:
                time.sleep(0.002)  # stay under the flood limit's burst, mostly
            try:
                while True:
                    data = s.recv(65535)
                    statuses[data[8:11].decode("latin-1") if data.startswith(b"SIP/2.0 ")
                             else "other"] += 1
            except BlockingIOError:
                pass


async def fuzz_tcp(port: int, count: int, rng: random.Random,
                   statuses: collections.Counter[str]) -> None:
    sent = 0
    while sent < count:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        me = writer.get_extra_info("sockname")[1]
        for _ in range(rng.randint(1, 20)):
            if writer.is_closing():
                break  # atende closed a stream it could not frame: a new connection
            writer.write(mutate(seed("TCP", me, rng), rng))
            sent += 1
            await asyncio.sleep(0)
        try:
            await writer.drain()
            data = await asyncio.wait_for(reader.read(65535), 0.2)
            statuses["tcp " + (data[8:11].decode("latin-1") if data.startswith(b"SIP/2.0 ")
                               else "closed" if not data else "other")] += 1
        except (TimeoutError, ConnectionError):
            statuses["tcp silent"] += 1
        writer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--log", type=Path)
    ap.add_argument("--udp", type=int, default=100_000)
    ap.add_argument("--tcp", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()
    own: AtendeProcess | None = None
    if args.port is None:
        own = AtendeProcess(Path(tempfile.mkdtemp(prefix="atende-fuzz-")), (26000, 26999),
                            ATENDE_SIP_RATE_PER_S="100000", ATENDE_ABUSE_MAX_FAILURES="1000000")
        own.start()
        assert own.proc is not None
        args.port, args.pid, args.log = own.sip_port, own.proc.pid, own.log_path
    rng = random.Random(16)
    statuses: collections.Counter[str] = collections.Counter()
    rss0 = rss_kb(args.pid) if args.pid else 0
    started = time.monotonic()
    alive = True
    try:
        for done in range(0, args.udp, args.batch):
            fuzz_udp(args.port, min(args.batch, args.udp - done), rng, statuses)
            if not probe(args.port):
                alive = False
                print(f"no answer to OPTIONS after {done + args.batch} UDP messages")
        asyncio.run(fuzz_tcp(args.port, args.tcp, rng, statuses))
        if not probe(args.port):
            alive = False
            print("no answer to OPTIONS after the TCP messages")
        log = args.log.read_text(errors="replace") if args.log else ""
        print(f"sent: {args.udp} over UDP, {args.tcp} over TCP in "
              f"{time.monotonic() - started:.0f} s")
        print("replies:", dict(sorted(statuses.items())))
        print(f"tracebacks in the log: {log.count('Traceback')}")
        if args.pid:
            print(f"RSS: {rss0 // 1024} MB before, {rss_kb(args.pid) // 1024} MB after")
        print(f"valid OPTIONS answered after every batch: {'yes' if alive else 'NO'}")
    finally:
        if own is not None:
            own.stop()


if __name__ == "__main__":
    main()
