"""Settings from seed 003's .env names beside atende's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from atende.config import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASS", "OPENAI_API_KEY",
                 "GOOGLE_API_KEY", "ELEVENLABS_API_KEY", "ESL_HOST", "ESL_PORT",
                 "ESL_PASSWORD", "AUDIO_MODE", "ATENDE_DATABASE_URL", "ATENDE_ESL_HOST",
                 "ATENDE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    return monkeypatch


def test_the_seed_names_are_read_and_atende_names_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ESL_HOST", "pbx.seed")
    clean_env.setenv("ATENDE_ESL_HOST", "pbx.atende")
    clean_env.setenv("ESL_PORT", "8021")
    clean_env.setenv("AUDIO_MODE", "rtp")
    clean_env.setenv("OPENAI_API_KEY", "sk-seed")
    clean_env.setenv("GOOGLE_API_KEY", "g-seed")
    s = Settings()
    assert (s.esl_host, s.esl_port, s.audio_mode) == ("pbx.atende", 8021, "rtp")
    assert s.provider_keys == {"openai": "sk-seed", "gemini": "g-seed"}
    assert "sk-seed" not in repr(s) and s.esl_password.get_secret_value() == "ClueCon"


def test_db_parts_make_a_postgresql_url_unless_one_is_given(
        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DB_HOST", "10.0.0.5")
    clean_env.setenv("DB_NAME", "fusionpbx")
    clean_env.setenv("DB_USER", "fusionpbx")
    clean_env.setenv("DB_PASS", "p@ss/word")
    assert Settings().db_url == "postgresql+psycopg://fusionpbx:p%40ss%2Fword@10.0.0.5:5432/fusionpbx"
    clean_env.setenv("ATENDE_DATABASE_URL", "sqlite:////tmp/x.db")
    assert Settings().db_url == "sqlite:////tmp/x.db"


def test_a_dotenv_file_in_the_working_folder_is_read(clean_env: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AUDIO_MODE=rtp\nESL_PASSWORD=s3cret\nNOT_OURS=1\n")
    clean_env.setenv("AUDIO_MODE", "websocket")  # the environment wins over the file
    s = Settings()
    assert s.audio_mode == "websocket" and s.esl_password.get_secret_value() == "s3cret"
    (tmp_path / ".env").write_text("AUDIO_MODE=carrier-pigeon\n")
    clean_env.delenv("AUDIO_MODE")
    with pytest.raises(ValueError, match=r"AUDIO_MODE|audio_mode"):
        Settings()
