"""Migrations over data already there: 0016 (domains) lets two domains use one extension
and keeps every call and trunk pointing at its assistant (SQLite rebuilds the table)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from atende.store.db import make_engine, migrate


def upgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    migrate(engine, revision)
    engine.dispose()


def test_domains_keep_the_calls_of_existing_assistants(store_url: str) -> None:
    upgrade(store_url, "0015")
    engine = make_engine(store_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO assistants (id, name, extension, language, voice, rules, "
            "is_default, created_at, mode, record) VALUES ('a1', 'Desk', '8000', 'en', "
            "'piper', '{}', true, :now, 'pipeline', false)"), {"now": now})
        conn.execute(sa.text(
            "INSERT INTO calls (id, channel, direction, from_uri, to_uri, assistant_id, "
            "status, invite_at, attempts, recorded) VALUES ('c1', 'sip', 'inbound', 'a', "
            "'b', 'a1', 'completed', :now, 0, false)"), {"now": now})
    upgrade(store_url, "head")
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT assistant_id FROM calls")).scalar() == "a1"
        assert conn.execute(sa.text("SELECT domain_uuid FROM assistants")).scalar() is None
        for i, domain in enumerate(("d-one", "d-two")):  # the same extension, twice
            conn.execute(sa.text(
                "INSERT INTO assistants (id, name, extension, language, voice, rules, "
                "is_default, created_at, mode, record, domain_uuid) VALUES (:id, 'Desk', "
                "'8000', 'en', 'piper', '{}', false, :now, 'pipeline', false, :d)"),
                {"id": f"a{i + 2}", "now": now, "d": domain})
        assert conn.execute(sa.text("SELECT count(*) FROM assistants WHERE extension = "
                                    "'8000'")).scalar() == 3
    engine.dispose()
