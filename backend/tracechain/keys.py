"""Secrets at rest: participant signing keys under AES-256-GCM, API keys stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tracechain.errors import ConfigurationError, TracechainError

_NONCE_BYTES = 12
API_KEY_PREFIX = "tc_"


class KeyDecryptionFailed(TracechainError):
    """A stored key does not decrypt: wrong master secret, or the row was altered."""


class KeyVault:
    """Encrypts private keys under a key derived from the master secret.

    The participant's address is bound in as associated data, so a ciphertext copied onto another
    participant's row does not decrypt.
    """

    def __init__(self, master_secret: str) -> None:
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tracechain/key-vault", info=b"v1")
        self._aead = AESGCM(kdf.derive(master_secret.encode()))
        stamps = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"tracechain/verification-stamps", info=b"v1"
        )
        self.stamp_key = stamps.derive(master_secret.encode())
        """What the service's verification stamps are keyed with (`tracechain.stamps`)."""

    def encrypt(self, private_key: bytes, address: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, private_key, address.lower().encode())

    def decrypt(self, blob: bytes, address: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], address.lower().encode())
        except InvalidTag as exc:
            raise KeyDecryptionFailed(f"the stored key of {address} does not decrypt") from exc


_CHECKED = b"tracechain: the master secret"
_CHECK_BINDING = "key-check"


class WrongMasterSecret(ConfigurationError):
    """The master secret is not the one the database's keys are encrypted under."""

    def __init__(self) -> None:
        super().__init__(
            "TRACECHAIN_MASTER_SECRET is not the secret this database's participant keys are encrypted "
            "under: set the one it was first served with (keys encrypted under it cannot be read otherwise)"
        )


def check_value(vault: KeyVault) -> bytes:
    """A known value under the vault's key: stored once, then `require_same_secret` opens it."""
    return vault.encrypt(_CHECKED, _CHECK_BINDING)


def require_same_secret(vault: KeyVault, stored_check: bytes) -> None:
    """Raises WrongMasterSecret unless `stored_check` was made under the vault's master secret."""
    try:
        opened = vault.decrypt(stored_check, _CHECK_BINDING)
    except KeyDecryptionFailed:
        opened = None
    if opened != _CHECKED:
        raise WrongMasterSecret()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    """API keys carry 256 random bits, so one fast hash is enough: nothing to brute-force."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
