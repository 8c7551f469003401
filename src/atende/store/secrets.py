"""Secrets at rest (SIP passwords, API keys): encrypted with Fernet (AES-128-CBC + HMAC).

The key comes from ATENDE_SECRET_KEY, or from ``secret.key`` in the data folder, created
on first start readable by its owner only. Losing the key means re-entering passwords;
keep it with your backups but apart from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretError(Exception):
    """A stored secret that cannot be decrypted."""

    pass


class SecretBox:
    """Encrypts the secrets atende stores (SIP passwords, provider keys, tool headers) with its
    secret key."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise SecretError("the secret key must be 32 url-safe base64-encoded bytes "
                              "(generate one with: atende secret-key)") from None

    @classmethod
    def from_settings(cls, key: str | None, data_dir: Path) -> SecretBox:
        if key:
            return cls(key.encode())
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def derive(self, label: str) -> str:
        """A secret of its own for ``label`` (hex), stable for this key: no extra file to
        keep, and it changes when the key is rotated."""
        return hmac.new(self._key, label.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError("cannot decrypt a stored secret: wrong ATENDE_SECRET_KEY or "
                              "secret.key?") from None


def new_key() -> str:
    return Fernet.generate_key().decode()
