"""Secrets at rest: Fernet encryption with a key from the environment (rotation via MultiFernet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(ValueError):
    """A ciphertext that can't be opened with the configured keys."""


class SecretBox:
    """Encrypts small JSON documents (credentials); the first key encrypts, all keys decrypt."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("ENCRYPTION_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except (ValueError, TypeError) as exc:
            raise ValueError(
                "ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from exc

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode()

    def rotate(self, token: str) -> str:
        """The same secret sealed under the first (newest) key; SecretBoxError if no key opens it."""
        if not token:
            return token
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretBoxError("stored credentials can't be decrypted with ENCRYPTION_KEY") from exc

    def open(self, token: str) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise SecretBoxError("stored credentials can't be decrypted with ENCRYPTION_KEY") from exc


def instance_key(instance: Path) -> str:
    """A Fernet key kept in instance/ so the embedded default needs no set-up."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "encryption_key"
    if not path.exists():
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()
