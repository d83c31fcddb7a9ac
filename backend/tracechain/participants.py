"""Participants: enrolled by the admin, each with an EVM address (its own wallet's, or one whose key
the service generates and holds encrypted) and its roles granted on chain; the API keys it holds
(capture or read-only, rotated and revoked), and the fields of its events it makes public."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account import Account
from sqlalchemy.orm import Session

from tracechain.chain.registry import Role, TraceRegistry
from tracechain.errors import TracechainError
from tracechain.keys import KeyVault, hash_api_key, new_api_key
from tracechain.store import queries
from tracechain.store.models import ApiKey, KeyScope, Participant, PublicFields
from tracechain.submission import Submitter


class ParticipantExists(TracechainError):
    """Another participant has the address or the party id (GLN) asked for."""

    def __init__(self, field: str, value: str) -> None:
        self.field, self.value = field, value
        super().__init__(f"a participant with {field} {value} exists already")


class NoSuchKey(TracechainError):
    """The participant holds no API key of that id."""

    def __init__(self, key_id: str, participant_id: str) -> None:
        self.key_id, self.participant_id = key_id, participant_id
        super().__init__(f"no API key {key_id} of participant {participant_id}")


class KeyRevoked(TracechainError):
    """The API key was revoked already: it can be neither rotated nor revoked again."""

    def __init__(self, key_id: str, revoked_at: datetime) -> None:
        self.key_id, self.revoked_at = key_id, revoked_at
        super().__init__(f"API key {key_id} was revoked at {revoked_at.isoformat()}")


@dataclass(frozen=True)
class IssuedKey:
    secret: str
    """The API key itself, shown once: only its hash is stored."""
    key: ApiKey


@dataclass(frozen=True)
class Enrolled:
    participant: Participant
    capture_key: str
    """Its first API key (scope capture), shown once."""


def enrol(
    submitter: Submitter,
    registry: TraceRegistry,
    vault: KeyVault,
    *,
    name: str,
    roles: Sequence[str],
    party_id: str | None,
    country: str,
    address: str | None,
) -> Enrolled:
    """Store a participant with a capture key and queue the grants of its roles on chain, in one
    transaction of the outbox: the grants are sent only if the participant is stored.

    `address` is the participant's own wallet's, for one that signs client-side; without it the
    service generates a key and holds it encrypted. Raises ParticipantExists if another participant
    has the address or `party_id`.
    """
    with submitter.outbox() as session:
        if address:
            encrypted_key = None
        else:
            account = Account.from_key(os.urandom(32))
            address = account.address
            encrypted_key = vault.encrypt(bytes(account.key), address)
        if queries.participant_with_address(session, address) is not None:
            raise ParticipantExists("address", address)
        if party_id and queries.participant_with_party_id(session, party_id) is not None:
            raise ParticipantExists("partyId", party_id)
        participant = Participant(
            id=str(uuid.uuid4()),
            name=name,
            roles=sorted(set(roles)),
            party_id=party_id,
            country=country,
            address=address,
            encrypted_key=encrypted_key,
            created_at=datetime.now(UTC),
        )
        session.add(participant)
        session.flush()  # the key's row refers to the participant's
        issued = issue_key(session, participant.id, KeyScope.CAPTURE, "initial")
        for role in participant.roles:
            submitter.prepare_call(session, registry.grant_role_call(Role.by_name(role), address))
        return Enrolled(participant, issued.secret)


# ---------------------------------------------------------------- API keys


def issue_key(session: Session, participant_id: str, scope: str, label: str) -> IssuedKey:
    secret = new_api_key()
    key = ApiKey(
        id=str(uuid.uuid4()),
        participant_id=participant_id,
        key_hash=hash_api_key(secret),
        scope=scope,
        label=label,
        created_at=datetime.now(UTC),
        revoked_at=None,
    )
    session.add(key)
    return IssuedKey(secret, key)


def rotate_key(session: Session, participant_id: str, key_id: str) -> IssuedKey:
    """A new key with the same scope and label as the participant's key `key_id`, which is revoked.
    Raises NoSuchKey, or KeyRevoked for a key revoked already."""
    old = _unrevoked_key(session, participant_id, key_id)
    old.revoked_at = datetime.now(UTC)
    return issue_key(session, participant_id, old.scope, old.label)


def revoke_key(session: Session, participant_id: str, key_id: str) -> None:
    """Raises NoSuchKey, or KeyRevoked for a key revoked already."""
    _unrevoked_key(session, participant_id, key_id).revoked_at = datetime.now(UTC)


def _unrevoked_key(session: Session, participant_id: str, key_id: str) -> ApiKey:
    key = queries.api_key(session, key_id)
    if key is None or key.participant_id != participant_id:
        raise NoSuchKey(key_id, participant_id)
    if key.revoked_at is not None:
        raise KeyRevoked(key_id, key.revoked_at)
    return key


# ---------------------------------------------------------------- public fields


def make_fields_public(session: Session, participant_id: str, gtin: str, fields: Sequence[str]) -> list[str]:
    """Show these fields of the participant's events about one product class (its GTIN) to the
    public too; an empty list returns to the consumer view alone. Returns the fields now shown."""
    row = queries.public_fields(session, participant_id, gtin)
    if row is None:
        row = PublicFields(participant_id=participant_id, gtin=gtin, fields=[])
        session.add(row)
    row.fields = sorted(set(fields))
    return row.fields
