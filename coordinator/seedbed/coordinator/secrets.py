"""Encryption at rest of connection secrets (Fernet: AES-128-CBC with HMAC-SHA256).

The key comes from ``SEEDBED_SECRET_KEY`` (a Fernet key: 32 url-safe base64 bytes). Without it, a
key file ``secret.key`` is created in the data folder, readable by its owner only: fine for one
machine; a cluster sets the key explicitly so every coordinator can read what another stored.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from seedbed.coordinator.errors import FailedPreconditionError

log = logging.getLogger(__name__)


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = base64.urlsafe_b64decode(key)

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256 of this box's key, the purpose as its info):
        what signs worker tokens is never the key that encrypts the secrets."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(self._key)

    @classmethod
    def from_key_or_file(cls, key: str, data_dir: Path) -> SecretBox:
        if key:
            try:
                return cls(key.encode())
            except ValueError as exc:
                raise ValueError(
                    "SEEDBED_SECRET_KEY is not a valid key (32 url-safe base64 bytes): generate one with "
                    "cryptography's Fernet.generate_key()"
                ) from exc
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
            log.warning("created a new secret key at %s (set SEEDBED_SECRET_KEY for a cluster)", path)
        return cls(path.read_bytes().strip())

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise FailedPreconditionError(
                "a stored secret cannot be decrypted with this coordinator's key (SEEDBED_SECRET_KEY "
                "changed?): store the connection's secret again"
            ) from None
