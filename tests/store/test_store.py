"""The store on both databases: what comes off the wire fits its columns."""

from __future__ import annotations

from datetime import UTC, datetime

from atende.store import models
from atende.store.db import Store, insert_call


async def test_overlong_sip_values_are_clipped_not_refused(store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    try:
        # A hostile or sloppy peer's From and Call-ID: longer than the columns.
        store.submit(insert_call(models.Call(
            id="long", channel="sip", direction="inbound", from_uri="sip:" + "a" * 2000,
            to_uri="sip:ai@h", from_display="D" * 900, external_id="x" * 5000,
            status="ringing", invite_at=datetime.now(UTC))))
        row = await store.get_call("long")
    finally:
        await store.close()
    assert row is not None
    assert len(row.from_uri) == 500 and row.from_uri.startswith("sip:aaa")
    assert row.from_display is not None and len(row.from_display) == 200
    assert row.external_id is not None and len(row.external_id) == 300


async def test_an_extension_reaches_the_callers_domain_first(store_url: str) -> None:
    store = Store(store_url)
    await store.init()
    now = datetime.now(UTC)

    def add(assistant_id: str, domain: str | None) -> None:
        store.submit(lambda s: s.add(models.Assistant(
            id=assistant_id, name=assistant_id, extension="8000", domain_uuid=domain,
            rules={}, created_at=now)))

    try:
        add("of-a", "domain-a")
        add("of-b", "domain-b")
        # Two domains' 8000 and none shared: a call from no domain reaches neither.
        assert await store.assistant_for("8000", None) is None
        found = await store.assistant_for("8000", "domain-b")
        assert found is not None and found.id == "of-b"
        assert await store.assistant_for("8000", "domain-c") is None
        add("shared", None)
        for domain, expected in (("domain-a", "of-a"), ("domain-c", "shared"),
                                 (None, "shared")):
            found = await store.assistant_for("8000", domain)
            assert found is not None and found.id == expected, domain
    finally:
        await store.close()
