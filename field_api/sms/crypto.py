"""The SMS key and the encryption of pending messages (AES-GCM, the row id bound in).

The key file (``FIELDOPS_SMS_KEY_PATH``, alias ``FIELDOPS_SMS_KEY_FILE``) holds a random secret
as hex, like the audit chain key (:mod:`field_api.keyfiles`): development and tests create it
on first use (mode 0600), production refuses to start without it. The AES-256 key is derived
from it (SHA-256 of a label and the secret). Each ciphertext is ``nonce (12 bytes) || AES-GCM``
with ``sms:<row id>:<field>`` as associated data, so a ciphertext copied to another row or
field does not decrypt.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from field_api import keyfiles
from field_api.config import Settings

NONCE_BYTES = 12

_lock = threading.Lock()
_cache: dict[str, SmsCipher] = {}


class SmsCipherError(RuntimeError):
    """A ciphertext does not decrypt under this key (another key, another row, tampered)."""


class SmsCipher:
    """Encrypts and decrypts one field of one outbox row."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(b"fieldops-sms-outbox:" + secret).digest())
        self.key_id = keyfiles.fingerprint(b"fieldops-sms:" + secret)

    def __repr__(self) -> str:
        return f"SmsCipher(key_id={self.key_id!r})"

    @staticmethod
    def _aad(row_id: int, field: str) -> bytes:
        return f"sms:{row_id}:{field}".encode()

    def encrypt(self, row_id: int, field: str, plaintext: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), self._aad(row_id, field))

    def decrypt(self, row_id: int, field: str, ciphertext: bytes) -> str:
        nonce, body = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, self._aad(row_id, field)).decode()
        except (InvalidTag, ValueError) as exc:
            raise SmsCipherError(f"SMS outbox row {row_id}: {field} does not decrypt") from exc


def cipher_for(settings: Settings) -> SmsCipher:
    """The cipher of ``settings``' key file (created in development, required in production).

    Raises:
        KeyFileError: production and no key file, or an unreadable one.
    """
    path = Path(settings.sms.key_path).resolve()
    cache_key = f"{path}:{settings.is_production}"
    with _lock:
        found = _cache.get(cache_key)
        if found is None:
            secret = keyfiles.load_secret(
                path, create_if_missing=not settings.is_production, what="SMS key"
            )
            found = _cache[cache_key] = SmsCipher(secret)
        return found
