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
