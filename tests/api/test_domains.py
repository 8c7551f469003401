"""FusionPBX domains: two tenants on one atende, each with a secretary on extension 8000,
never see each other's secretaries, AI providers or calls; their keys reach nothing else of
the server. (Calls keeping to their domain: tests/e2e/test_freeswitch_call.py.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from atende.store.writes import insert_call
from tests.api.conftest import DOMAIN_A, DOMAIN_B, Tenants
from tests.api.test_providers import assistant, provider


def test_two_domains_with_the_same_extension_see_only_their_own(tenants: Tenants) -> None:
    t = tenants
    key_a = provider(t.a, type="llm", provider="openai", name="Our OpenAI",
                     api_key="sk-domain-a", model="gpt-4o-mini")
    key_b = provider(t.b, type="llm", provider="openai", name="Our OpenAI",  # same name
                     api_key="sk-domain-b", model="gpt-4o-mini")
    sec_a = assistant(t.a, greeting="Clinic A.", llm=[{"provider_id": key_a["id"]}])
    sec_b = assistant(t.b, greeting="Clinic B.", llm=[{"provider_id": key_b["id"]}])
    assert (sec_a["domain_uuid"], sec_b["domain_uuid"]) == (DOMAIN_A, DOMAIN_B)
    assert key_a["domain_uuid"] == DOMAIN_A and sec_a["extension"] == sec_b["extension"]

    # Each domain's key sees its own records only, by list and by id.
    assert [a["id"] for a in t.a.get("/v1/assistants").json()] == [sec_a["id"]]
    assert [p["id"] for p in t.b.get("/v1/providers").json()] == [key_b["id"]]
    for path in (f"/v1/assistants/{sec_a['id']}", f"/v1/providers/{key_a['id']}"):
        assert t.b.get(path).status_code == 404
        assert t.b.patch(path, json={"name": "mine now"}).status_code == 404
        assert t.b.delete(path).status_code == 404
        assert t.a.get(path).status_code == 200
    # Nor can it name the other's provider, or make records in the other domain.
    r = t.b.patch(f"/v1/assistants/{sec_b['id']}", json={"llm": [{"provider_id": key_a["id"]}]})
    assert r.status_code == 422 and f"no AI provider {key_a['id']!r}" in r.text
    r = t.b.post("/v1/assistants", json={"name": "x", "extension": "8001",
                                         "domain_uuid": DOMAIN_A})
    assert r.status_code == 403 and f"belongs to domain {DOMAIN_B}" in r.text
    # Within a domain the extension stays unique.
    r = t.a.post("/v1/assistants", json={"name": "Again", "extension": "8000"})
    assert r.status_code == 409 and sec_a["id"] in r.text

    # A key of no domain sees all of them, and can narrow to one domain.
    everyone = {a["id"] for a in t.admin.get("/v1/assistants").json()}
    assert {sec_a["id"], sec_b["id"]} < everyone  # with the default assistant
    assert [a["id"] for a in t.admin.get("/v1/assistants",
                                         params={"domain_uuid": DOMAIN_B}).json()] == [
        sec_b["id"]]
    assert t.admin.get(f"/v1/providers/{key_a['id']}").json()["used_by"] == [sec_a["id"]]
    # ... and can put a new record in a domain, spelled any way a UUID is written.
    r = t.admin.post("/v1/assistants", json={
        "name": "Admin-made", "extension": "8002", "domain_uuid": DOMAIN_A.upper()})
    assert r.status_code == 201 and r.json()["domain_uuid"] == DOMAIN_A
    bad = t.admin.post("/v1/assistants", json={"name": "x", "extension": "9",
                                               "domain_uuid": "tenant-a"})
    assert bad.status_code == 422 and "domain UUID" in bad.text
    default = next(a for a in t.admin.get("/v1/assistants").json() if a["is_default"])
    r = t.admin.patch(f"/v1/assistants/{r.json()['id']}", json={"is_default": True})
    assert r.status_code == 422 and "cannot belong to one" in r.text
    assert t.admin.get(f"/v1/assistants/{default['id']}").json()["is_default"]


def test_a_domains_calls_are_its_own(tenants: Tenants) -> None:
    t = tenants
    sec_a = assistant(t.a)
    sec_b = assistant(t.b)
    now = datetime.now(UTC)

    async def calls() -> None:
        for call_id, owner in (("call-a", sec_a["id"]), ("call-b", sec_b["id"]),
                               ("call-none", None)):
            t.store.submit(insert_call(
                id=call_id, channel="freeswitch", direction="inbound", from_uri="",
                to_uri="sip:8000@pbx", assistant_id=owner, status="completed",
                invite_at=now))
        await t.store.run(lambda s: None)

    asyncio.run(calls())
    listed = t.a.get("/v1/calls").json()
    assert [c["id"] for c in listed["items"]] == ["call-a"] and listed["total"] == 1
    assert t.a.get("/v1/calls/call-a").status_code == 200
    assert t.a.get("/v1/calls/call-b").status_code == 404
    assert t.a.get("/v1/calls/call-none").status_code == 404
    assert t.admin.get("/v1/calls").json()["total"] == 3


def test_a_domains_key_reaches_nothing_else_of_the_server(tenants: Tenants) -> None:
    t = tenants
    for method, path in (("GET", "/v1/hooks"), ("POST", "/v1/hooks"), ("GET", "/v1/stats")):
        r = t.a.request(method, path, json={"name": "mine"})
        assert r.status_code == 403, (path, r.text)
        assert f"belongs to domain {DOMAIN_A}" in r.json()["detail"]
        assert t.admin.request(method, path, json={"name": "mine"}).status_code in (200, 201)
    assert len(t.admin.get("/v1/hooks").json()) == 1  # the domain's POST made nothing
