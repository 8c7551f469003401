"""Secrets at rest."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from atende.store.secrets import SecretBox, SecretError, new_key


def test_round_trip_and_key_file(tmp_path: Path) -> None:
    box = SecretBox.from_settings(None, tmp_path)
    token = box.encrypt("Sup3r-Secret-Pass")
    assert "Sup3r" not in token and box.decrypt(token) == "Sup3r-Secret-Pass"
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The same folder gives the same key next start.
    assert SecretBox.from_settings(None, tmp_path).decrypt(token) == "Sup3r-Secret-Pass"


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    token = SecretBox(new_key().encode()).encrypt("x")
    with pytest.raises(SecretError, match="wrong ATENDE_SECRET_KEY"):
        SecretBox(new_key().encode()).decrypt(token)
    with pytest.raises(SecretError, match="32 url-safe"):
        SecretBox.from_settings("not-a-key", tmp_path)
