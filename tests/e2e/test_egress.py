"""A server with the default egress policy refuses URLs that point inside (issue 16.11):
result webhooks (from the API and from trigger URLs), re-deliveries, HTTP tools and
model base URLs."""

from __future__ import annotations

import httpx

from tests.peers.atende import AtendeProcess
from tests.peers.sipclient import SipClient, sdp_offer


async def test_private_urls_are_refused_where_they_are_configured(
        atende_strict: AtendeProcess) -> None:
    a = atende_strict
    for url in ("http://127.0.0.1:5432/", "http://0x7f000001/", "http://[::1]/",
                "http://169.254.169.254/latest/", "https://user:pw@crm.example.com/"):
        r = a.api.post("/v1/calls", json={"phone_number": "+12025550123",
                                           "webhook_url": url})
        assert r.status_code == 422 and "webhook_url" in r.text, (url, r.text)
    r = a.api.post("/v1/hooks", json={"name": "ssrf"})
    assert r.status_code == 201, r.text
    hook = r.json()
    r = httpx.post(a.base + hook["url_path"], timeout=10,
                   json={"phone_number": "+12025550123", "webhook_url": "http://10.0.0.1/"})
    assert r.status_code == 422 and "private address" in r.text, r.text
    for field, value in (
            ("http_tools", [{"name": "crm", "description": "The CRM.",
                             "parameters": {"type": "object"},
                             "url": "http://169.254.169.254/latest/meta-data/"}]),
            ("llm", [{"provider": "openai", "model": "m", "base_url": "http://[::1]:8100/v1"}]),
            ("stt", {"provider": "deepgram", "base_url": "ws://127.0.0.1:9/"})):
        r = a.api.post("/v1/assistants", json={"name": "Inside", "extension": "inside",
                                               field: value})
        assert r.status_code == 422 and "ATENDE_ALLOW_PRIVATE_URLS" in r.text, r.text
    # A call that is over (refused: nobody is called "nobody") may have its result sent
    # again, but not inside either.
    c = await SipClient.open(("127.0.0.1", a.sip_port))
    try:
        d = c.new_dialog()
        c.send(c.request("INVITE", d, ruri=f"sip:nobody@127.0.0.1:{a.sip_port}",
                         body=sdp_offer("127.0.0.1", 4000)))
        assert (await c.final()).status == 404
        c.send(c.request("ACK", d, ruri=f"sip:nobody@127.0.0.1:{a.sip_port}",
                         new_branch=False))
    finally:
        c.close()
    call = await a.wait_for_call(lambda x: x["to_user"] == "nobody"
                                 and x["status"] == "rejected")
    r = a.api.post(f"/v1/calls/{call['id']}/deliveries", json={"url": "http://127.0.0.1:8100/"})
    assert r.status_code == 422 and "loopback" in r.text
    assert a.api.delete(f"/v1/hooks/{hook['id']}").status_code == 204
