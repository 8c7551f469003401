"""Trunks with several nodes (on a real SQLite and PostgreSQL store): a node follows
trunks changed through another node (new ones are used, changed ones applied, deleted
ones dropped; one this node applied after the store was read is not undone by that older
read), and the extension trunks' registrations are shared out, one node each."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from atende.channels.sip.ua import UserAgent
from atende.cluster.nodes import beat, join, leave
from atende.cluster.trunks import TrunkFollower, rows, share_registrations, versions
from atende.store import models
from atende.store.db import Store
from atende.store.secrets import SecretBox
from atende.telephony.trunks import TrunkManager

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
BOX = SecretBox(Fernet.generate_key())


def carrier(trunk_id: str, name: str, at: datetime = T0) -> models.Trunk:
    """A DID trunk, as another node's API stores it."""
    return models.Trunk(
        id=trunk_id, name=name, kind="did", number="+12025550111", username="acme",
        password_enc=BOX.encrypt("Carrier-Pass-2024"), host="127.0.0.1", port=5070,
        transport="udp", number_format="intl_plus", country="US", inbound_auth="ip",
        allowed_ips=["127.0.0.1/32"], contact_user="c" + trunk_id,
        max_concurrent_calls=10, allowed_countries=["US"], created_at=at, updated_at=at)


async def test_changes_made_elsewhere_are_followed(store: Store) -> None:
    manager = TrunkManager(UserAgent(), BOX)
    follower = TrunkFollower(store, manager, "a", 15, lambda: T0)
    await store.run(lambda s: s.add_all([carrier("t1", "One"), carrier("t2", "Two")]))
    await follower.round()
    assert {t.config.name for t in manager.trunks.values()} == {"One", "Two"}
    assert manager.trunks["t1"].peer_ips == {"127.0.0.1"}

    def rename(s: object) -> None:
        row = s.get(models.Trunk, "t1")  # type: ignore[attr-defined]
        row.name, row.updated_at = "One, renamed", T0 + timedelta(minutes=1)

    await store.run(rename)
    await store.run(lambda s: s.delete(s.get(models.Trunk, "t2")))
    await follower.round()
    assert {t.config.name for t in manager.trunks.values()} == {"One, renamed"}
    assert await follower.round() == follower.every_s  # nothing more to do
    assert await manager.follow(await store.run(versions), time.monotonic(),
                                lambda ids: store.run(rows(ids))) == 0


async def test_an_older_read_does_not_undo_this_nodes_own_change(store: Store) -> None:
    manager = TrunkManager(UserAgent(), BOX)
    read_at = time.monotonic()
    stored = await store.run(versions)  # read before the trunk below existed
    row = carrier("t3", "Made here")
    await store.run(lambda s: s.add(row))
    await manager.apply(row)  # as this node's API does
    fetched: list[list[str]] = []

    async def fetch(ids: list[str]) -> list[models.Trunk]:
        fetched.append(ids)
        return []

    assert await manager.follow(stored, read_at, fetch) == 0
    assert "t3" in manager.trunks and fetched == []


def extension(trunk_id: str, enabled: bool = True) -> models.Trunk:
    row = carrier(trunk_id, f"Extension {trunk_id}")
    row.kind, row.number, row.enabled = "extension", trunk_id[-3:], enabled
    return row


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_each_extension_is_registered_by_one_node(store: Store) -> None:
    await store.run(lambda s: s.add_all([extension("e101"), extension("e102"),
                                         extension("e103"), extension("e104", False)]))
    await store.run(join("a", "a1", T0))
    mine, elsewhere = await store.run(share_registrations("a", T0, 15))
    assert (mine, elsewhere) == ({"e101", "e102", "e103"}, {})  # alone: all (enabled)

    # b joins: a keeps its share (two of three) and gives back the rest, which b takes.
    await store.run(join("b", "b1", at(1)))
    a_mine, _ = await store.run(share_registrations("a", at(2), 15))
    b_mine, b_else = await store.run(share_registrations("b", at(2), 15))
    assert len(a_mine) == 2 and len(b_mine) == 1 and not a_mine & b_mine
    assert a_mine | b_mine == {"e101", "e102", "e103"}
    assert b_else == dict.fromkeys(a_mine, "a")
    assert await store.run(share_registrations("a", at(3), 15)) == (a_mine, dict.fromkeys(
        b_mine, "b"))  # stable

    # b is not heard from for a lease: a takes its trunk back.
    await store.run(beat("a", "a1", at(20)))
    mine, elsewhere = await store.run(share_registrations("a", at(20), 15))
    assert (mine, elsewhere) == ({"e101", "e102", "e103"}, {})

    # a stops cleanly: its trunks are free for whoever comes next at once.
    await store.run(leave("a", at(21)))
    await store.run(beat("b", "b2", at(22)))
    mine, _ = await store.run(share_registrations("b", at(22), 15))
    assert mine == {"e101", "e102", "e103"}
