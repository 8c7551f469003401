"""deploy/compose.yaml holds together (no container runtime runs it here): its atende
nodes' settings are valid and each its own where they must differ, the same where they
must be shared, and Kamailio's dispatcher list names exactly those nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet

from atende.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def nodes() -> dict[str, dict[str, str]]:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return {name: {k: str(v) for k, v in svc["environment"].items()}
            for name, svc in compose["services"].items() if name.startswith("atende-")}


def test_the_nodes_settings_are_valid_shared_and_distinct(tmp_path: Path) -> None:
    found = nodes()
    assert len(found) == 2
    key = Fernet.generate_key().decode()
    settings = []
    for env in found.values():
        values = {k.removeprefix("ATENDE_").lower(): v for k, v in env.items()}
        values["secret_key"] = key  # ${ATENDE_SECRET_KEY} in the file
        settings.append(Settings(**values, data_dir=tmp_path))
    a, b = settings
    for same in ("database_url", "redis_url", "sip_proxies", "drain_timeout_s"):
        assert getattr(a, same) == getattr(b, same), same
    assert a.database_url and a.database_url.startswith("postgresql+psycopg://")
    for own in ("node_id", "sip_port", "api_port"):
        assert getattr(a, own) != getattr(b, own), own
    assert a.rtp_port_max < b.rtp_port_min or b.rtp_port_max < a.rtp_port_min
    assert a.drain_timeout_s > 0


def test_the_dispatcher_lists_exactly_the_nodes() -> None:
    listed = sorted(
        line.split()[1] for line in
        (DEPLOY / "kamailio" / "dispatcher.compose.list").read_text().splitlines()
        if line.strip() and not line.startswith("#"))
    ports = sorted(f"sip:127.0.0.1:{env['ATENDE_SIP_PORT']}" for env in nodes().values())
    assert listed == ports
    for env in nodes().values():
        assert "127.0.0.1/32" in env["ATENDE_SIP_PROXIES"].split(",")
