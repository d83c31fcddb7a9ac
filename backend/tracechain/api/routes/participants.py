"""Participants: created by the admin, each with an EVM address and API keys shown once; the keys a
participant holds (capture or read-only, rotated and revoked), and the fields it makes public."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field, field_validator

from tracechain import participants
from tracechain.api.deps import (
    AdminDep,
    Credentials,
    ParticipantDep,
    ReaderDep,
    ServicesDep,
    SessionDep,
    current_participant,
    is_admin,
)
from tracechain.api.problems import Problem
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_epc, gs1_key
from tracechain.services import Services
from tracechain.store import queries
from tracechain.store.models import ApiKey, KeyScope, Participant

router = APIRouter(prefix="/participants", tags=["participants"])

RoleName = Literal["manufacturer", "carrier", "customs", "retailer", "auditor"]


class ParticipantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[RoleName] = Field(min_length=1)
    party_id: str | None = Field(
        None, alias="partyId", description="GLN as an EPC URN (pgln/sgln) or Digital Link"
    )
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    address: str | None = Field(None, description="Own EVM address, for participants that sign client-side")

    @field_validator("address")
    @classmethod
    def _checksummed(cls, value: str | None) -> str | None:
        if value is not None and not is_address(value):
            raise ValueError("not an EVM address")
        return to_checksum_address(value) if value else None

    @field_validator("party_id")
    @classmethod
    def _canonical(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return canonical_epc(value)
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from exc


class ParticipantPublic(BaseModel):
    id: str
    name: str
    roles: list[str]
    party_id: str | None = Field(serialization_alias="partyId")
    country: str
    address: str
    custodial_key: bool = Field(serialization_alias="custodialKey")


class ParticipantCreated(ParticipantPublic):
    api_key: str = Field(
        serialization_alias="apiKey", description="A capture key, shown once; only its hash is stored"
    )


def _public(participant: Participant) -> dict[str, object]:
    return {
        "id": participant.id,
        "name": participant.name,
        "roles": participant.roles,
        "party_id": participant.party_id,
        "country": participant.country,
        "address": participant.address,
        "custodial_key": participant.encrypted_key is not None,
    }


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ParticipantCreated, response_model_by_alias=True
)
def create_participant(body: ParticipantCreate, _: AdminDep, services: ServicesDep) -> dict:  # type: ignore[type-arg]
    """Create a participant and grant its roles on chain, through the outbox in the same transaction."""
    try:
        enrolled = participants.enrol(
            services.submitter,
            services.registry,
            services.vault,
            name=body.name,
            roles=body.roles,
            party_id=body.party_id,
            country=body.country,
            address=body.address,
        )
    except participants.ParticipantExists as exc:
        raise Problem(409, "Participant exists", str(exc)) from exc
    return {**_public(enrolled.participant), "api_key": enrolled.capture_key}


@router.get("", response_model=list[ParticipantPublic], response_model_by_alias=True)
def list_participants(_: AdminDep, session: SessionDep) -> list[dict]:  # type: ignore[type-arg]
    return [_public(p) for p in queries.participants_by_enrolment(session)]


@router.get("/me", response_model=ParticipantPublic, response_model_by_alias=True)
def whoami(participant: ReaderDep) -> dict:  # type: ignore[type-arg]
    return _public(participant)


# ---------------------------------------------------------------- API keys


class KeyCreate(BaseModel):
    scope: KeyScope = Field(description="capture: everything the participant may do; read: reads only")
    label: str = Field("", max_length=100, description="What the key is for (shown in the key list)")


class KeyPublic(BaseModel):
    id: str
    scope: str
    label: str
    created_at: datetime = Field(serialization_alias="createdAt")
    revoked_at: datetime | None = Field(serialization_alias="revokedAt")


class KeyIssued(KeyPublic):
    api_key: str = Field(serialization_alias="apiKey", description="Shown once; only its hash is stored")


def _key_public(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "scope": key.scope,
        "label": key.label,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def _key_owner(participant_id: str, session: SessionDep, services: Services, credentials: Credentials) -> str:
    """The participant whose keys are managed: the admin manages anyone's, a participant its own
    (`me`) with a capture key."""
    if is_admin(services, credentials):
        if participant_id == "me" or queries.participant(session, participant_id) is None:
            raise Problem(404, "Not Found", f"no participant {participant_id}")
        return participant_id
    caller = current_participant(services, credentials)
    if participant_id not in ("me", caller.id):
        raise Problem(404, "Not Found", f"no participant {participant_id} whose keys you manage")
    return caller.id


@contextmanager
def _own_key_problems() -> Iterator[None]:
    try:
        yield
    except participants.NoSuchKey as exc:
        raise Problem(404, "Not Found", str(exc)) from exc
    except participants.KeyRevoked as exc:
        raise Problem(409, "Key revoked", str(exc)) from exc


@router.get("/{participant_id}/keys", response_model=list[KeyPublic], response_model_by_alias=True)
def list_keys(
    participant_id: str, session: SessionDep, services: ServicesDep, credentials: Credentials
) -> list[dict[str, object]]:
    """The participant's API keys, revoked ones too; never the secrets. `me` for your own."""
    owner = _key_owner(participant_id, session, services, credentials)
    return [_key_public(key) for key in queries.api_keys_of(session, owner)]


@router.post(
    "/{participant_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyIssued,
    response_model_by_alias=True,
)
def create_key(
    participant_id: str,
    body: KeyCreate,
    session: SessionDep,
    services: ServicesDep,
    credentials: Credentials,
) -> dict[str, object]:
    """A new key for the participant: a read-only one for a dashboard, another capture key."""
    owner = _key_owner(participant_id, session, services, credentials)
    issued = participants.issue_key(session, owner, body.scope, body.label)
    return {**_key_public(issued.key), "api_key": issued.secret}


@router.post(
    "/{participant_id}/keys/{key_id}/rotation",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyIssued,
    response_model_by_alias=True,
)
def rotate_key(
    participant_id: str, key_id: str, session: SessionDep, services: ServicesDep, credentials: Credentials
) -> dict[str, object]:
    """A new key with the same scope and label; the old one stops working at once."""
    owner = _key_owner(participant_id, session, services, credentials)
    with _own_key_problems():
        issued = participants.rotate_key(session, owner, key_id)
    return {**_key_public(issued.key), "api_key": issued.secret}


@router.delete(
    "/{participant_id}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
def revoke_key(
    participant_id: str, key_id: str, session: SessionDep, services: ServicesDep, credentials: Credentials
) -> Response:
    """The key stops working at once; it stays listed, with when it was revoked."""
    owner = _key_owner(participant_id, session, services, credentials)
    with _own_key_problems():
        participants.revoke_key(session, owner, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- public fields


class PublicFieldsSet(BaseModel):
    fields: list[str] = Field(
        max_length=64,
        description="Top-level event fields to show the public, beyond the consumer view's own "
        "(e.g. `ilmd`, `quantityList`, an extension such as `acme:grade`)",
    )


class PublicFieldsPublic(BaseModel):
    gtin: str
    fields: list[str]


@router.get("/me/public-fields", response_model=list[PublicFieldsPublic])
def list_public_fields(participant: ReaderDep, session: SessionDep) -> list[dict[str, object]]:
    """The fields you make public, per product class."""
    return [
        {"gtin": row.gtin, "fields": row.fields} for row in queries.public_fields_of(session, participant.id)
    ]


@router.put("/me/public-fields/{gtin}", response_model=PublicFieldsPublic)
def set_public_fields(
    gtin: str, body: PublicFieldsSet, participant: ParticipantDep, session: SessionDep
) -> dict[str, object]:
    """Make more of your events about one product class (a GTIN) public: the consumer page, the
    public trace and the public proof bundle then show these fields too, proven like the others.
    An empty list returns to the consumer view alone."""
    try:
        gtin = gs1_key(f"https://id.gs1.org/01/{gtin}")
    except InvalidIdentifier as exc:
        raise Problem(422, "Invalid GTIN", str(exc)) from exc
    shown = participants.make_fields_public(session, participant.id, gtin, body.fields)
    return {"gtin": gtin, "fields": shown}
