"""Participants: created by the admin, each with an EVM address and an API key shown once."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Literal

from eth_account import Account
from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracechain.api.deps import AdminDep, ParticipantDep, ServicesDep, SessionDep
from tracechain.api.problems import Problem
from tracechain.api.services import Services
from tracechain.chain.registry import Role
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_epc
from tracechain.keys import hash_api_key, new_api_key
from tracechain.store.models import Participant

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
    api_key: str = Field(serialization_alias="apiKey", description="Shown once; only its hash is stored")


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
    with services.submitter.outbox() as session:
        return _create(body, session, services)


def _create(body: ParticipantCreate, session: Session, services: Services) -> dict:  # type: ignore[type-arg]
    if body.address:
        address, encrypted_key = body.address, None
    else:
        account = Account.from_key(os.urandom(32))
        address = account.address
        encrypted_key = services.vault.encrypt(bytes(account.key), address)
    for column, value in (("address", address), ("partyId", body.party_id)):
        field = Participant.address if column == "address" else Participant.party_id
        if value and session.scalars(select(Participant).where(field == value)).first():
            raise Problem(409, "Participant exists", f"a participant with {column} {value} exists already")
    api_key = new_api_key()
    participant = Participant(
        id=str(uuid.uuid4()),
        name=body.name,
        roles=sorted(set(body.roles)),
        party_id=body.party_id,
        country=body.country,
        address=address,
        encrypted_key=encrypted_key,
        api_key_hash=hash_api_key(api_key),
        created_at=datetime.now(UTC),
    )
    session.add(participant)
    for role in participant.roles:
        fn = services.registry.contract.functions.grantRole(Role.by_name(role), address)
        services.submitter.prepare_call(session, fn)
    return {**_public(participant), "api_key": api_key}


@router.get("", response_model=list[ParticipantPublic], response_model_by_alias=True)
def list_participants(_: AdminDep, session: SessionDep) -> list[dict]:  # type: ignore[type-arg]
    return [_public(p) for p in session.scalars(select(Participant).order_by(Participant.created_at))]


@router.get("/me", response_model=ParticipantPublic, response_model_by_alias=True)
def whoami(participant: ParticipantDep) -> dict:  # type: ignore[type-arg]
    return _public(participant)
