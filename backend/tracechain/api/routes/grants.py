"""Grants: a participant lets another (an auditor, customs, a partner) read its events in full, all of
them or those naming one identifier or of one business step; listed and revocable."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field, model_validator

from tracechain import grants
from tracechain.api.deps import (
    Credentials,
    ServicesDep,
    SessionDep,
    current_participant,
    current_reader,
    is_admin,
)
from tracechain.api.problems import Problem
from tracechain.epcis.identifiers import InvalidIdentifier
from tracechain.store import queries
from tracechain.store.models import Grant, Participant

router = APIRouter(prefix="/grants", tags=["grants"])


class GrantCreate(BaseModel):
    grantee: str = Field(description="Participant id of who may read")
    scope: Literal["all", "subject", "bizStep"] = Field(
        description="all: every event of the grantor; subject: those naming `subject`; bizStep: those "
        "of `bizStep`"
    )
    subject: str | None = Field(None, description="EPC URN or Digital Link (scope subject)")
    biz_step: str | None = Field(None, alias="bizStep", description="CBV business step (scope bizStep)")
    grantor: str | None = Field(None, description="Participant id of the grantor: only the admin names one")

    @model_validator(mode="after")
    def _value_fits_scope(self) -> GrantCreate:
        if (self.scope == "subject") != (self.subject is not None):
            raise ValueError("`subject` is given exactly when the scope is subject")
        if (self.scope == "bizStep") != (self.biz_step is not None):
            raise ValueError("`bizStep` is given exactly when the scope is bizStep")
        return self


class GrantPublic(BaseModel):
    id: str
    grantor: str
    grantee: str
    scope: str
    value: str | None
    created_at: datetime = Field(serialization_alias="createdAt")
    revoked_at: datetime | None = Field(serialization_alias="revokedAt")


def _public(grant: Grant) -> dict[str, object]:
    return {
        "id": grant.id,
        "grantor": grant.grantor_id,
        "grantee": grant.grantee_id,
        "scope": grant.scope,
        "value": grant.value,
        "created_at": grant.created_at,
        "revoked_at": grant.revoked_at,
    }


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=GrantPublic, response_model_by_alias=True
)
def create_grant(
    body: GrantCreate, session: SessionDep, services: ServicesDep, credentials: Credentials
) -> dict[str, object]:
    """Let `grantee` read your events in full (the admin may grant on a participant's behalf)."""
    if is_admin(services, credentials):
        if body.grantor is None:
            raise Problem(422, "Invalid grant", "grantor: the admin names whose events it grants")
        grantor = _participant(session, body.grantor, "grantor")
    else:
        grantor = current_participant(services, credentials)
        if body.grantor not in (None, grantor.id):
            raise Problem(403, "Forbidden", "you may grant access to your own events only")
    grantee = _participant(session, body.grantee, "grantee")
    try:
        grant = grants.give_grant(session, grantor, grantee, body.scope, body.subject, body.biz_step)
    except grants.GrantToSelf as exc:
        raise Problem(422, "Invalid grant", str(exc)) from exc
    except InvalidIdentifier as exc:
        raise Problem(422, "Invalid grant", f"subject: {exc}") from exc
    return _public(grant)


@router.get("", response_model=list[GrantPublic], response_model_by_alias=True)
def list_grants(
    session: SessionDep, services: ServicesDep, credentials: Credentials
) -> list[dict[str, object]]:
    """The grants you gave and received, revoked ones too; the admin sees every grant."""
    if is_admin(services, credentials):
        return [_public(grant) for grant in queries.grants_involving(session)]
    caller = current_reader(services, credentials)
    return [_public(grant) for grant in queries.grants_involving(session, caller.id)]


@router.delete("/{grant_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def revoke_grant(
    grant_id: str, session: SessionDep, services: ServicesDep, credentials: Credentials
) -> Response:
    """The grantee stops reading at once; the grant stays listed, with when it was revoked."""
    grantor_id = None if is_admin(services, credentials) else current_participant(services, credentials).id
    try:
        grants.revoke_grant(session, grant_id, grantor_id)
    except grants.NoSuchGrant as exc:
        raise Problem(404, "Not Found", str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _participant(session: SessionDep, participant_id: str, field: str) -> Participant:
    found = queries.participant(session, participant_id)
    if found is None:
        raise Problem(422, "Invalid grant", f"{field}: no participant has id {participant_id!r}")
    return found
