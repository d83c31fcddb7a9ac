"""Grants: a participant lets another (an auditor, customs, a partner) read its events in full, all
of them or those naming one identifier or of one business step, until it revokes the grant; what a
grant shows is decided in `visibility`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from tracechain.epcis.identifiers import canonical_epc
from tracechain.epcis.mapping import bare_vocabulary
from tracechain.errors import TracechainError
from tracechain.store import queries
from tracechain.store.models import Grant, GrantScope, Participant


class GrantToSelf(TracechainError):
    """A participant named itself as grantee: it reads its own events in full already."""

    def __init__(self, participant_id: str) -> None:
        self.participant_id = participant_id
        super().__init__("grantee: a participant reads its own events already")


class NoSuchGrant(TracechainError):
    """No grant of that id, or none its grantor may revoke."""

    def __init__(self, grant_id: str) -> None:
        self.grant_id = grant_id
        super().__init__(f"no grant {grant_id} you gave")


def give_grant(
    session: Session,
    grantor: Participant,
    grantee: Participant,
    scope: str,
    subject: str | None = None,
    biz_step: str | None = None,
) -> Grant:
    """Let `grantee` read `grantor`'s events of `scope`: all of them, those naming `subject` (an
    EPC URN or Digital Link, stored canonical), or those of `biz_step` (stored bare). Raises
    GrantToSelf, or InvalidIdentifier for a subject that is none."""
    if grantee.id == grantor.id:
        raise GrantToSelf(grantor.id)
    value: str | None = None
    if scope == GrantScope.SUBJECT:
        value = canonical_epc(subject or "")
    elif scope == GrantScope.BIZ_STEP:
        value = bare_vocabulary(biz_step or "")
    grant = Grant(
        id=str(uuid.uuid4()),
        grantor_id=grantor.id,
        grantee_id=grantee.id,
        scope=scope,
        value=value,
        created_at=datetime.now(UTC),
        revoked_at=None,
    )
    session.add(grant)
    return grant


def revoke_grant(session: Session, grant_id: str, grantor_id: str | None) -> None:
    """The grantee stops reading at once; the grant stays, with when it was revoked. `grantor_id`
    None revokes anyone's grant (the admin); a participant's id, only a grant it gave, as someone
    else's is as good as none (NoSuchGrant: nothing leaks). Revoking twice keeps the first time."""
    grant = queries.grant(session, grant_id)
    if grant is None or (grantor_id is not None and grant.grantor_id != grantor_id):
        raise NoSuchGrant(grant_id)
    if grant.revoked_at is None:
        grant.revoked_at = datetime.now(UTC)
