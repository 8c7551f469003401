"""The transaction layer's timer work as the number of live transactions grows: what one
wake-up (``next_deadline`` + ``tick``) and one new transaction cost with 100 … 20,000
transactions lingering (at 1,000 calls/s, finished ones alone are tens of thousands, as
each lingers up to 32 s); and what the user agent's wake-up (after every message) costs
with N calls up, whose dialogs it tracks. The cost should barely grow with the count."""

from __future__ import annotations

import time

from atende.channels.sip.ua import UserAgent
from atende.sip.dialog import Dialog
from atende.sip.message import Request, make_response, parse_message
from atende.sip.transaction import Deliver, ServerTransaction, TransactionLayer

SOURCE = ("udp", "192.0.2.10", 5060)


def options(i: int) -> Request:
    msg = parse_message((
        "OPTIONS sip:atende@192.0.2.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{i:x}\r\n"
        f"From: <sip:probe@example.com>;tag={i}\r\nTo: <sip:atende@192.0.2.1>\r\n"
        f"Call-ID: {i}@bench\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def deliver_new(layer: TransactionLayer, req: Request, now: float) -> ServerTransaction:
    """``req`` in: the server transaction made for it."""
    [deliver] = layer.receive(req, SOURCE, now)
    assert isinstance(deliver, Deliver) and isinstance(deliver.transaction, ServerTransaction)
    return deliver.transaction


def answered(layer: TransactionLayer, i: int, now: float) -> None:
    req = options(i)
    layer.send_response(deliver_new(layer, req, now), make_response(req, 200, to_tag="t"),
                        now)


def measure(live: int) -> tuple[float, float]:
    layer = TransactionLayer()
    for i in range(live):  # answered, lingering (timer J)
        answered(layer, i, i * 1e-4)
    requests = [options(live + i) for i in range(2000)]
    now = live * 1e-4
    start = time.perf_counter()
    for _ in range(2000):
        layer.next_deadline()
        layer.tick(now)
    wake = (time.perf_counter() - start) / 2000
    start = time.perf_counter()
    for req in requests:
        layer.send_response(deliver_new(layer, req, now), make_response(req, 200, to_tag="t"),
                            now)
    new = (time.perf_counter() - start) / 2000
    return wake, new


def invite(i: int) -> Request:
    msg = parse_message((
        "INVITE sip:atende@192.0.2.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKi{i:x}\r\n"
        f"From: <sip:caller@example.com>;tag={i}\r\nTo: <sip:atende@192.0.2.1>\r\n"
        f"Call-ID: {i}@bench\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@192.0.2.10>\r\n"
        "Content-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def measure_calls(calls: int) -> float:
    """One wake-up of the user agent's timers with ``calls`` answered and ACKed."""
    ua = UserAgent(clock=lambda: 1.0)
    for i in range(calls):
        dialog = Dialog.for_uas(invite(i), f"t{i}", "<sip:atende@192.0.2.1>")
        ua.track(dialog)
    start = time.perf_counter()
    for _ in range(2000):
        ua._next_deadline()  # what its timer loop does on every wake-up
        ua.tick()
    return (time.perf_counter() - start) / 2000


if __name__ == "__main__":
    for calls in (100, 1_000, 5_000):
        print(f"{calls:>6} calls up: the user agent's timer wake-up "
              f"{measure_calls(calls) * 1e6:7.1f} µs")
    for live in (100, 1_000, 5_000, 20_000):
        wake, new = measure(live)
        print(f"{live:>6} live transactions: a timer wake-up {wake * 1e6:7.1f} µs, "
              f"a transaction answered {new * 1e6:7.1f} µs")
