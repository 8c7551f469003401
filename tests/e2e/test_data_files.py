"""What atende keeps on disk is its own user's only (issue 16.16): transcripts, call audio
and keys are not for every local account to read."""

from __future__ import annotations

import stat
from pathlib import Path

from atende.server import keep_private
from tests.peers.atende import AtendeProcess


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_running_server_keeps_its_files_private(atende: AtendeProcess) -> None:
    data = Path(atende.env["ATENDE_DATA_DIR"])
    files = [p for p in data.rglob("*") if p.is_file()]
    assert mode(data) == 0o700
    assert {"api.key", "secret.key"} <= {p.name for p in files}
    assert any(p.suffix in (".db", ".sqlite") for p in files) or "postgresql" in \
        atende.env.get("ATENDE_DATABASE_URL", "")
    loose = [f"{p}: {oct(mode(p))}" for p in [data, *data.rglob("*")] if mode(p) & 0o077]
    assert not loose, loose


def test_what_an_earlier_version_left_open_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "recordings").mkdir(parents=True)
    (data / "recordings").chmod(0o755)
    call = data / "recordings" / "call.wav"
    call.write_bytes(b"RIFF")
    call.chmod(0o644)
    db = data / "atende.db"
    db.write_bytes(b"")
    db.chmod(0o664)
    data.chmod(0o755)
    elsewhere = tmp_path / "shared.txt"  # a link out of the folder is not followed
    elsewhere.write_text("x")
    elsewhere.chmod(0o644)
    (data / "link").symlink_to(elsewhere)
    keep_private(data)
    assert [mode(p) for p in (data, data / "recordings", call, db)] == [
        0o700, 0o700, 0o600, 0o600]
    assert mode(elsewhere) == 0o644
