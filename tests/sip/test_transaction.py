"""RFC 3261 §17 transactions with timers driven by a fixed clock."""

from __future__ import annotations

import gc
import itertools

from atende.sip.message import Request, Response, make_response, parse_message
from atende.sip.transaction import (
    T1,
    T2,
    T4,
    Deliver,
    Send,
    State,
    TimedOut,
    TransactionLayer,
)

UDP = ("udp", "10.0.0.1", 5060)
TCP = ("tcp", "10.0.0.1", 40000)


def request(method: str = "INVITE", branch: str = "z9hG4bKabc", cseq: int = 1,
            to_tag: str = "") -> Request:
    raw = (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        f"To: <sip:bob@example.com>{';tag=' + to_tag if to_tag else ''}\r\n"
        "Call-ID: call-1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


def sends(actions: list[object]) -> list[object]:
    return [a.message for a in actions if isinstance(a, Send)]


def run_timers(layer: TransactionLayer, until: float) -> list[tuple[float, object]]:
    """Advance the clock deadline by deadline, as the asyncio adapter does."""
    out: list[tuple[float, object]] = []
    while (d := layer.next_deadline()) is not None and d <= until:
        out.extend((d, a) for a in layer.tick(d))
    return out


def test_new_request_is_delivered_and_retransmission_absorbed() -> None:
    layer = TransactionLayer()
    actions = layer.receive(request(), UDP, 0.0)
    assert len(actions) == 1 and isinstance(actions[0], Deliver)
    txn = actions[0].transaction
    assert txn is not None and txn.state == State.PROCEEDING
    assert layer.receive(request(), UDP, 0.1) == []  # nothing sent yet: absorbed
    ringing = make_response(request(), 180, to_tag="t")
    layer.send_response(txn, ringing, 0.2)  # type: ignore[arg-type]
    # The last provisional goes again, as sent (a response is kept as its bytes).
    assert sends(layer.receive(request(), UDP, 0.3)) == [ringing.encode()]
    assert txn.request is not None  # type: ignore[union-attr]  # (a CANCEL answers it)


def test_server_invite_non_2xx_retransmits_on_timer_g_until_ack() -> None:
    layer = TransactionLayer()
    txn = layer.receive(request(), UDP, 0.0)[0].transaction  # type: ignore[union-attr]
    busy = make_response(request(), 486, to_tag="t")
    layer.send_response(txn, busy, 0.0)  # type: ignore[arg-type]
    fired = run_timers(layer, 8.0)
    times = [t for t, a in fired if isinstance(a, Send)]
    assert times == [T1, 3 * T1, 7 * T1, 15 * T1]  # G doubles: 0.5, 1, 2, 4 (capped at T2)
    ack = request("ACK")
    assert layer.receive(ack, UDP, 8.0) == []  # absorbed by the transaction
    assert txn.state == State.CONFIRMED  # type: ignore[union-attr]
    assert run_timers(layer, 8.0 + T4 - 0.01) == []
    run_timers(layer, 8.0 + T4)
    assert txn.state == State.TERMINATED  # type: ignore[union-attr]
    assert layer.server == {}


def test_timer_g_caps_at_t2_and_timer_h_gives_up() -> None:
    layer = TransactionLayer()
    txn = layer.receive(request(), UDP, 0.0)[0].transaction  # type: ignore[union-attr]
    layer.send_response(txn, make_response(request(), 500), 0.0)  # type: ignore[arg-type]
    fired = run_timers(layer, 64 * T1)
    times = [t for t, a in fired if isinstance(a, Send)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) == T2
    assert any(isinstance(a, TimedOut) for _, a in fired)
    assert fired[-1][0] == 64 * T1
    assert txn.state == State.TERMINATED  # type: ignore[union-attr]


def test_reliable_transport_has_no_retransmissions() -> None:
    layer = TransactionLayer()
    txn = layer.receive(request(), TCP, 0.0)[0].transaction  # type: ignore[union-attr]
    layer.send_response(txn, make_response(request(), 486), 0.0)  # type: ignore[arg-type]
    assert "G" not in txn.timers  # type: ignore[union-attr]
    layer.receive(request("ACK"), TCP, 0.5)
    run_timers(layer, 0.5)  # Timer I is zero on TCP
    assert layer.server == {}


def test_server_invite_2xx_moves_to_accepted_then_terminates_on_timer_l() -> None:
    layer = TransactionLayer()
    txn = layer.receive(request(), UDP, 0.0)[0].transaction  # type: ignore[union-attr]
    layer.send_response(txn, make_response(request(), 200, to_tag="t"), 0.0)  # type: ignore[arg-type]
    assert txn.state == State.ACCEPTED  # type: ignore[union-attr]
    assert txn.last_sent is None  # type: ignore[union-attr]  # its dialog repeats the 2xx
    assert layer.receive(request(), UDP, 1.0) == []  # RFC 6026: INVITE retransmission absorbed
    assert layer.retransmission(request())
    # The ACK for a 2xx has its own branch: it goes to the TU, not the transaction.
    ack = request("ACK", branch="z9hG4bKother")
    (d,) = layer.receive(ack, UDP, 1.0)
    assert isinstance(d, Deliver) and d.transaction is None
    assert layer.receive(request(), UDP, 64 * T1 - 0.01) == []  # absorbed to the end
    run_timers(layer, 64 * T1)
    assert layer.server == {} and len(layer.lingering) == 0
    # Timer L is over: the same request again is a new one.
    (d,) = layer.receive(request(), UDP, 64 * T1 + 1)
    assert isinstance(d, Deliver) and d.transaction is not None


def test_server_non_invite_keeps_final_response_for_timer_j() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="t", cseq=2)
    txn = layer.receive(bye, UDP, 0.0)[0].transaction  # type: ignore[union-attr]
    ok = make_response(bye, 200)
    assert sends(layer.send_response(txn, ok, 0.0)) == [ok.encode()]  # type: ignore[arg-type]
    # Answered, it lets its request go (it lingers 32 s) and answers copies as it did.
    assert txn.request is None  # type: ignore[union-attr]
    assert sends(layer.receive(bye, UDP, 5.0)) == [ok.encode()]
    assert run_timers(layer, 64 * T1 - 0.01) == []
    assert sends(layer.receive(bye, UDP, 64 * T1 - 0.01)) == [ok.encode()]
    run_timers(layer, 64 * T1)
    assert layer.server == {} and len(layer.lingering) == 0
    (d,) = layer.receive(bye, UDP, 64 * T1 + 1)  # Timer J is over: a new request
    assert isinstance(d, Deliver) and d.transaction is not None


def test_on_a_reliable_transport_an_answered_request_is_forgotten_at_once() -> None:
    layer = TransactionLayer()
    options = request("OPTIONS", "z9hG4bKudp", cseq=1)
    txn = layer.receive(options, UDP, 0.0)[0].transaction  # type: ignore[union-attr]
    layer.send_response(txn, make_response(options, 200), 0.0)  # type: ignore[arg-type]
    bye = request("BYE", to_tag="t", cseq=2)
    txn = layer.receive(bye, TCP, 1.0)[0].transaction  # type: ignore[union-attr]
    layer.send_response(txn, make_response(bye, 200), 1.0)  # type: ignore[arg-type]
    run_timers(layer, 1.0)  # Timer J is zero on TCP: no copies to wait for
    assert layer.server == {} and not layer.retransmission(bye)
    assert len(layer.lingering) == 1  # the UDP one, for its 32 s


def test_cancel_finds_its_invite() -> None:
    layer = TransactionLayer()
    txn = layer.receive(request(), UDP, 0.0)[0].transaction  # type: ignore[union-attr]
    cancel = request("CANCEL")
    (d,) = layer.receive(cancel, UDP, 0.1)
    assert isinstance(d, Deliver) and d.transaction is not txn
    assert layer.find_invite_for_cancel(cancel) is txn


def response_to(req: Request, status: int, to_tag: str = "b1") -> Response:
    resp = make_response(req, status, to_tag=to_tag)
    again = parse_message(resp.encode())
    assert isinstance(again, Response)
    return again


def test_client_non_invite_retransmits_with_timer_e_and_times_out_with_f() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="t", cseq=5)
    txn, actions = layer.send_request(bye, UDP, 0.0)
    assert sends(actions) == [bye]
    fired = run_timers(layer, 64 * T1)
    times = [t for t, a in fired if isinstance(a, Send)]
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # 0.5, 1, 2, 4, then every T2
    assert isinstance(fired[-1][1], TimedOut) and fired[-1][0] == 64 * T1
    assert txn.state == State.TERMINATED


def test_client_non_invite_provisional_then_final() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="t", cseq=5)
    txn, _ = layer.send_request(bye, UDP, 0.0)
    layer.receive(response_to(bye, 100), UDP, 0.1)
    assert txn.state == State.PROCEEDING
    fired = run_timers(layer, 4.7)
    assert [t for t, a in fired if isinstance(a, Send)] == [0.5, 4.5]  # T2 in Proceeding
    (d,) = layer.receive(response_to(bye, 200), UDP, 5.0)
    assert isinstance(d, Deliver)
    assert txn.state == State.COMPLETED
    assert layer.receive(response_to(bye, 200), UDP, 5.1) == []  # absorbed
    run_timers(layer, 5.0 + T4)
    assert layer.client == {}


def test_client_invite_acks_non_2xx_itself() -> None:
    layer = TransactionLayer()
    inv = request()
    txn, _ = layer.send_request(inv, UDP, 0.0)
    fired = run_timers(layer, 1.6)
    assert [t for t, a in fired if isinstance(a, Send)] == [0.5, 1.5]  # Timer A doubles
    layer.receive(response_to(inv, 180), UDP, 1.7)
    assert run_timers(layer, 10.0) == []  # a provisional stops Timer A
    actions = layer.receive(response_to(inv, 486), UDP, 11.0)
    (ack,) = sends(actions)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.top_via.branch == inv.top_via.branch
    assert ack.to.tag == "b1" and ack.cseq.number == inv.cseq.number
    assert any(isinstance(a, Deliver) for a in actions)
    # A retransmitted final response is ACKed again, not delivered twice.
    again = layer.receive(response_to(inv, 486), UDP, 11.5)
    assert [type(a) for a in again] == [Send]
    run_timers(layer, 11.0 + 32.0)
    assert txn.state == State.TERMINATED


def test_client_invite_times_out_with_timer_b() -> None:
    layer = TransactionLayer()
    txn, _ = layer.send_request(request(), UDP, 0.0)
    fired = run_timers(layer, 64 * T1)
    assert isinstance(fired[-1][1], TimedOut)
    assert txn.state == State.TERMINATED


def test_client_invite_2xx_retransmissions_reach_the_tu() -> None:
    layer = TransactionLayer()
    inv = request()
    txn, _ = layer.send_request(inv, UDP, 0.0)
    assert isinstance(layer.receive(response_to(inv, 200), UDP, 0.1)[0], Deliver)
    assert txn.state == State.ACCEPTED
    assert isinstance(layer.receive(response_to(inv, 200), UDP, 0.6)[0], Deliver)
    run_timers(layer, 0.1 + 64 * T1)
    # After Timer M the transaction is gone, and a stray 2xx still reaches the TU.
    (d,) = layer.receive(response_to(inv, 200), UDP, 40.0)
    assert isinstance(d, Deliver) and d.transaction is None


def test_timers_of_many_transactions_fire_in_deadline_order_and_ended_ones_are_forgotten(
        ) -> None:
    layer = TransactionLayer()
    # 300 non-INVITE requests answered at staggered times: each lingers in Completed
    # (timer J, 64*T1 on UDP) and is forgotten when J fires.
    for i in range(300):
        [deliver] = layer.receive(request("OPTIONS", f"z9hG4bKo{i}", cseq=i), UDP, 0.0)
        assert isinstance(deliver, Deliver) and deliver.transaction is not None
        layer.send_response(deliver.transaction,  # type: ignore[arg-type]
                            make_response(deliver.message, 200, to_tag="t"), i * 0.01)
    # One INVITE answered 486: G retransmits at T1, 2*T1 … until the ACK stops it.
    [deliver] = layer.receive(request("INVITE", "z9hG4bKinv"), UDP, 0.0)
    layer.send_response(deliver.transaction,  # type: ignore[arg-type]
                        make_response(deliver.message, 486, to_tag="t"), 0.0)
    assert layer.next_deadline() == T1
    fired = run_timers(layer, 1.6)
    assert [d for d, _ in fired] == [T1, T1 + 2 * T1]  # G at 0.5 and 1.5: resends
    layer.receive(request("ACK", "z9hG4bKinv"), UDP, 1.6)  # G and H stop, I starts
    assert layer.next_deadline() == 1.6 + T4
    deadlines = [d for d, _ in run_timers(layer, 64 * T1 + 3.0)]
    assert deadlines == sorted(deadlines)
    assert len(layer.server) == 0  # each forgotten as its last timer fired
    assert layer.next_deadline() is None


def test_a_lingering_transaction_is_nothing_for_the_garbage_collector() -> None:
    """Finished transactions linger up to 32 s, tens of thousands at a high call rate, and
    every full collection walked each one: once they only wait for copies of their
    request they are plain values (and their timers' entries too)."""
    layer = TransactionLayer()

    def tracked() -> int:
        gc.collect()  # tuples of plain values are let go by a collection,
        gc.collect()  # those holding them by the next
        return len(gc.get_objects())

    before = tracked()
    for i in range(500):
        [deliver] = layer.receive(request("OPTIONS", f"z9hG4bKg{i}", cseq=i), UDP, 0.0)
        assert isinstance(deliver, Deliver) and deliver.transaction is not None
        layer.send_response(deliver.transaction,  # type: ignore[arg-type]
                            make_response(deliver.message, 200, to_tag="t"), 0.0)
        del deliver
    assert len(layer.lingering) == 500 and layer.next_deadline() == 64 * T1
    assert tracked() - before <= 50  # none of the 500
    # Their time still runs out, and they are then forgotten.
    assert run_timers(layer, 64 * T1) == [] and len(layer.lingering) == 0
    assert layer.next_deadline() is None
