"""Keys at rest: encrypted under the master secret and bound to their participant; API keys hashed."""

from __future__ import annotations

import os

import pytest

from tracechain.keys import KeyDecryptionFailed, KeyVault, hash_api_key, new_api_key

ADDRESS = "0x1111111111111111111111111111111111111111"


def test_a_key_decrypts_under_the_same_secret_and_address() -> None:
    key = os.urandom(32)
    blob = KeyVault("a" * 40).encrypt(key, ADDRESS)
    assert key not in blob
    assert KeyVault("a" * 40).decrypt(blob, ADDRESS) == key


def test_a_key_does_not_decrypt_under_another_secret() -> None:
    blob = KeyVault("a" * 40).encrypt(os.urandom(32), ADDRESS)
    with pytest.raises(KeyDecryptionFailed, match=ADDRESS):
        KeyVault("b" * 40).decrypt(blob, ADDRESS)


def test_a_key_copied_to_another_participant_does_not_decrypt() -> None:
    vault = KeyVault("a" * 40)
    blob = vault.encrypt(os.urandom(32), ADDRESS)
    with pytest.raises(KeyDecryptionFailed):
        vault.decrypt(blob, "0x2222222222222222222222222222222222222222")


def test_a_flipped_ciphertext_bit_is_detected() -> None:
    vault = KeyVault("a" * 40)
    blob = bytearray(vault.encrypt(os.urandom(32), ADDRESS))
    blob[20] ^= 1
    with pytest.raises(KeyDecryptionFailed):
        vault.decrypt(bytes(blob), ADDRESS)


def test_api_keys_are_random_and_stored_as_their_hash() -> None:
    first, second = new_api_key(), new_api_key()
    assert first != second and first.startswith("tc_") and len(first) > 40
    assert hash_api_key(first) != first and len(hash_api_key(first)) == 64
    assert hash_api_key(first) == hash_api_key(first)
