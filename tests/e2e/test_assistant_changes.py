"""An assistant changed through the API answers its next call as changed: calls see an
assistant through the in-memory directory and a profile made once per row read, and
neither may outlive the change."""

from __future__ import annotations

from typing import Any

from tests.peers.atende import AtendeProcess
from tests.peers.sipclient import SipClient, UdpSocket, sdp_offer


async def greeted_with(atende: AtendeProcess, extension: str, caller: str) -> str:
    """Call ``extension`` as ``caller``; the greeting the assistant recorded saying."""
    c = await SipClient.open(("127.0.0.1", atende.sip_port), user=caller)
    media = await UdpSocket.open()
    try:
        d = c.new_dialog()
        ruri = f"sip:{extension}@127.0.0.1:{atende.sip_port}"
        assert (await c.call(d, sdp_offer("127.0.0.1", media.port), ruri=ruri)).status == 200

        def greeted(call: dict[str, Any]) -> bool:
            return call["from_user"] == caller and any(
                t["speaker"] == "assistant" for t in call["turns"])

        call = await atende.wait_for_call(greeted, timeout=20)
        c.send(c.request("BYE", d, ruri=d.target))
        assert (await c.final()).status == 200
        return str(next(t["text"] for t in call["turns"] if t["speaker"] == "assistant"))
    finally:
        c.close()
        media.close()


async def test_a_changed_greeting_is_the_next_calls(atende: AtendeProcess) -> None:
    r = atende.api.post("/v1/assistants", json={"name": "Changing", "extension": "changing",
                                                "greeting": "Good morning."})
    assert r.status_code == 201, r.text
    assistant = r.json()["id"]
    assert await greeted_with(atende, "changing", "before-change") == "Good morning."
    r = atende.api.patch(f"/v1/assistants/{assistant}", json={"greeting": "Good evening."})
    assert r.status_code == 200, r.text
    assert await greeted_with(atende, "changing", "after-change") == "Good evening."
