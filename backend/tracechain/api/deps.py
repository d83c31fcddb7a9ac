"""Request dependencies: services, a database session per request, and who is calling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tracechain.api.problems import Problem
from tracechain.keys import hash_api_key, same_secret
from tracechain.services import Services
from tracechain.settlement import Settlement
from tracechain.store import queries
from tracechain.store.models import KeyScope, Participant
from tracechain.visibility import ADMIN, ANONYMOUS, Viewer

_bearer = HTTPBearer(auto_error=False, description="A participant's API key, or the admin token")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """One transaction per request: committed if the route returns, rolled back whole if it raises."""
    with services.sessions() as session, session.begin():
        yield session


# scope="function": the transaction commits before the response is sent, so a client that acts on
# an answer (fetching the order it just created) finds what the answer promised. The default scope
# would commit only after the response went out.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def is_admin(services: Services, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the caller sent the admin token (routes the admin and participants share ask this)."""
    return credentials is not None and same_secret(credentials.credentials, services.admin_token)


def require_admin(services: ServicesDep, credentials: Credentials) -> None:
    if not is_admin(services, credentials):
        raise Problem(401, "Unauthorized", "this needs the admin token as a Bearer credential")


def _key_holder(
    services: Services, credentials: HTTPAuthorizationCredentials | None
) -> tuple[Participant, str]:
    """The participant holding the key sent, and the key's scope. The lookup runs in a session of
    its own that is closed before the route runs: a request never holds one pooled connection
    while it waits for another (capture takes its own)."""
    if credentials is None:
        raise Problem(401, "Unauthorized", "send your API key as 'Authorization: Bearer <key>'")
    with services.sessions() as session:
        found = queries.participant_by_api_key_hash(session, hash_api_key(credentials.credentials))
    if found is None:
        raise Problem(401, "Unauthorized", "unknown or revoked API key")
    participant, key = found
    return participant, key.scope


def current_participant(services: ServicesDep, credentials: Credentials) -> Participant:
    """The caller, acting: only a capture key may capture, order, or manage keys and grants."""
    participant, scope = _key_holder(services, credentials)
    if scope != KeyScope.CAPTURE:
        raise Problem(403, "Forbidden", "this API key may only read; acting needs a capture key")
    return participant


def current_reader(services: ServicesDep, credentials: Credentials) -> Participant:
    """The caller, reading: any of its keys will do."""
    return _key_holder(services, credentials)[0]


def _viewer_of(participant: Participant) -> Viewer:
    return Viewer(participant.id, participant.address, participant.party_id)


def current_viewer(services: ServicesDep, credentials: Credentials) -> Viewer:
    """Who reads events: a participant by any of its keys, or the admin. Nobody else may."""
    if is_admin(services, credentials):
        return ADMIN
    return _viewer_of(_key_holder(services, credentials)[0])


def optional_viewer(services: ServicesDep, credentials: Credentials) -> Viewer:
    """Who reads a trace: anyone; a key that does not hold is refused rather than read as nobody,
    so a caller never mistakes the public view for its own."""
    return ANONYMOUS if credentials is None else current_viewer(services, credentials)


def settlement_of(services: ServicesDep) -> Settlement:
    """The service's settlement; 503 saying why when this chain has no settlement token."""
    if services.settlement is None:
        raise Problem(503, "Settlement unavailable", services.settlement_unavailable or "no settlement token")
    return services.settlement


AdminDep = Annotated[None, Depends(require_admin)]
ParticipantDep = Annotated[Participant, Depends(current_participant)]
ReaderDep = Annotated[Participant, Depends(current_reader)]
ViewerDep = Annotated[Viewer, Depends(current_viewer)]
OptionalViewerDep = Annotated[Viewer, Depends(optional_viewer)]
SettlementDep = Annotated[Settlement, Depends(settlement_of)]
