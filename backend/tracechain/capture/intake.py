"""The one way events enter tracechain, for EPCIS capture and the plain API alike: a document whose
caller holds a place in the capture queue (`Services.capture_admission`) is prepared beside the
others waiting and captured in its group's transaction (`group_commit`); a big one is captured in
a thread of its own, a chunk at a time, its job answering at once and reporting its progress."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracechain.capture.document import (
    CHUNK_EVENTS,
    CaptureInterrupted,
    capture_document,
    capture_in_chunks,
    fail_streamed_job,
    open_streamed_job,
)
from tracechain.capture.prepare import (
    MAX_JSON_DEPTH,
    CaptureLimitExceeded,
    DocumentRejected,
    ErrorBehaviour,
    InvalidJson,
    PreparedDocument,
    StoredKey,
    prepare_document,
)
from tracechain.capture.signatures import signing_requests_of
from tracechain.chain.trace_event import TraceEvent
from tracechain.epcis.stream import UnreadableDocument, event_chunks, read_outline
from tracechain.epcis.xml import InvalidXml, read_xml_outline, xml_event_chunks
from tracechain.errors import TracechainError
from tracechain.store import queries
from tracechain.store.models import CaptureJob, Participant

if TYPE_CHECKING:  # services.py builds the capture queue this module waits in
    from tracechain.services import Services

log = logging.getLogger(__name__)


class ConcurrentCapture(TracechainError):
    """Another capture stored some of the same events while this one ran, twice: send it again."""

    def __init__(self) -> None:
        super().__init__("a concurrent capture touched the same events; send it again")


@dataclass(frozen=True)
class Submitted:
    """A document's capture job as its submitter is answered: with the records it must sign, if it
    keeps its own key, or, while a big document is captured, how far that has got."""

    job: CaptureJob
    to_sign: list[tuple[int, TraceEvent]] = field(default_factory=list)
    """(record id, event) of each record awaiting the participant's signature."""
    progress: tuple[int, int] | None = None
    """While a streamed document is captured: (events read and kept so far, events in it)."""


def submit(
    services: Services,
    participant: Participant,
    document: Any,
    behaviour: ErrorBehaviour = ErrorBehaviour.ROLLBACK,
) -> Submitted:
    """Capture a document whose place in the capture queue the caller holds."""
    services.capture_limits.check(document)
    # What needs no lock: schema, hashes, effects, and which events are stored already. Stored
    # events stay stored, so that answer can only miss events a capture stored meanwhile; taken for
    # new, those are refused by the insert (IntegrityError) or by custody (commissioned twice),
    # and the capture runs again, reading them inside the lock.
    with services.preparing:
        prepared = prepare_document(document, behaviour)
        stored = _stored_events(services, participant, prepared)
    return services.captures.run(
        lambda session: _capture(session, services, participant, prepared, stored), len(prepared.events)
    )


def _stored_events(
    services: Services, participant: Participant, prepared: PreparedDocument
) -> set[StoredKey]:
    with services.sessions() as session:
        return queries.events_captured_by(session, set(prepared.hash_ids), participant.address)


def _capture(
    session: Session,
    services: Services,
    participant: Participant,
    prepared: PreparedDocument,
    stored: set[StoredKey],
) -> Submitted:
    """The capture, in the transaction of its group (`group_commit`), after the captures before it.

    `stored` was read before the capture lock: a capture since (of this group or before it) may
    have stored some of these events, which then makes the insert fail (IntegrityError) or custody
    refuse (commissioned twice). Either way that attempt's savepoint is rolled back and it runs
    again, reading which events are stored inside the lock, where the answer is final."""
    domain = services.registry.domain
    try:
        with session.begin_nested():
            result = capture_document(session, participant, prepared, services.vault, domain, stored)
            return Submitted(result.job, signing_requests_of(session, result.job))
    except DocumentRejected:
        if queries.events_captured_by(session, set(prepared.hash_ids), participant.address) == stored:
            raise  # refused for what it says, not for what was stored meanwhile
    except IntegrityError:
        pass
    try:
        result = capture_document(session, participant, prepared, services.vault, domain, None)
        return Submitted(result.job, signing_requests_of(session, result.job))
    except IntegrityError as exc:
        raise ConcurrentCapture() from exc


# ---------------------------------------------------------------- big documents, streamed


@dataclass(frozen=True)
class StreamedDocument:
    """A big document as its first pass read it: everything but its events (`shell`), how many
    events it holds, and its events, a chunk at a time, read from its file when asked for."""

    shell: dict[str, Any]
    event_count: int
    chunks: Iterator[list[Any]]


def streamed_json(spool: IO[bytes]) -> StreamedDocument:
    """A spooled JSON document's outline (`stream.read_outline`), refused as a whole document is
    if it is not JSON or nests too deep."""
    try:
        outline = read_outline(spool, MAX_JSON_DEPTH)
    except UnreadableDocument as exc:
        if exc.too_deep:
            raise CaptureLimitExceeded("how deep a document nests", MAX_JSON_DEPTH, None, None) from exc
        raise InvalidJson(str(exc)) from exc
    return StreamedDocument(outline.shell, outline.event_count, event_chunks(spool, CHUNK_EVENTS))


def streamed_xml(spool: IO[bytes]) -> StreamedDocument:
    """A spooled EPCIS XML document's outline (`xml.read_xml_outline`: InvalidXml for whatever
    `document_from_xml` refuses), held to the depth a JSON document is, as a whole one is."""
    outline = read_xml_outline(spool)
    if outline.depth > MAX_JSON_DEPTH:
        raise CaptureLimitExceeded("how deep a document nests", MAX_JSON_DEPTH, None, None)
    chunks = xml_event_chunks(spool, outline, CHUNK_EVENTS)
    return StreamedDocument(outline.shell, outline.event_count, chunks)


def start_streamed(
    services: Services,
    participant: Participant,
    spool: IO[bytes],
    document: StreamedDocument,
    behaviour: ErrorBehaviour,
) -> Submitted:
    """Open the job of a spooled document read by its first pass (`streamed_json`, `streamed_xml`;
    one holding too many events is answered as a whole one is) and capture it in a thread of its
    own; the job answers at once, `capturing`, and reports its progress. The thread holds a place
    in the capture queue until it is done, as a waiting capture does. The spool is the thread's to
    close from then on (the caller's if this raises)."""
    limits = services.capture_limits
    if document.event_count > limits.max_events:
        raise CaptureLimitExceeded(
            "the events of a document",
            limits.max_events,
            document.event_count,
            "TRACECHAIN_CAPTURE_MAX_EVENTS",
        )
    if (
        not isinstance((document.shell.get("epcisBody") or {}).get("eventList"), list)
        or not document.event_count
    ):
        spool.close()
        return submit(services, participant, document.shell, behaviour)  # no event list to stream
    admission = services.capture_admission(0)  # a place, no bytes: its body is on disk
    admission.__enter__()  # held by the capture's thread from now on
    try:
        with services.sessions() as session, session.begin():
            job = open_streamed_job(session, participant, behaviour)
        services.capture_progress[job.id] = (0, document.event_count)
        thread = threading.Thread(
            target=_capture_streamed,
            args=(services, participant.id, job.id, spool, document, behaviour, admission),
            name=f"capture-{job.id}",
            daemon=True,
        )
        thread.start()
    except BaseException:
        admission.__exit__(None, None, None)
        raise
    return Submitted(job, progress=services.capture_progress.get(job.id))


def _capture_streamed(
    services: Services,
    participant_id: str,
    job_id: str,
    spool: IO[bytes],
    document: StreamedDocument,
    behaviour: ErrorBehaviour,
    admission: AbstractContextManager[None],
) -> None:
    """The capture of a spooled document, in one transaction under the capture lock; a refusal, or
    anything else that stops it, rolls it all back and fails the job, saying why."""
    total = document.event_count

    def accepted(read: int) -> None:
        services.capture_progress[job_id] = (read, total)

    try:
        with services.capturing() as session:
            participant = session.get(Participant, participant_id)
            assert participant is not None, "participants are never deleted"
            capture_in_chunks(
                session,
                participant,
                job_id,
                document.shell,
                document.chunks,
                behaviour,
                services.vault,
                services.registry.domain,
                services.capture_limits,
                accepted,
            )
    except DocumentRejected as exc:
        _fail(services, job_id, 400, "EPCIS document rejected", str(exc), exc.problems)
    except InvalidXml as exc:  # read whole by the first pass already: the file changed
        _fail(services, job_id, 400, "Invalid EPCIS XML", str(exc), exc.problems)
    except CaptureLimitExceeded as exc:
        _fail(services, job_id, 413, "Capture limit exceeded", str(exc), [])
    except CaptureInterrupted:
        log.warning("streamed capture %s was marked failed while it ran; rolled back", job_id)
    except Exception as exc:  # the thread's last word: the job must not stay `capturing`
        log.exception("streamed capture %s failed", job_id)
        _fail(services, job_id, 500, "Capture failed", f"{type(exc).__name__}: {exc}", [])
    finally:
        spool.close()
        services.capture_progress.pop(job_id, None)
        admission.__exit__(None, None, None)


def _fail(
    services: Services, job_id: str, status_code: int, title: str, detail: str, problems: list[Any]
) -> None:
    """The job failed: nothing of its document was stored (its transaction rolled back)."""
    errors: dict[str, Any] = {
        "type": "epcisException:ValidationException" if status_code == 400 else "about:blank",
        "title": title,
        "status": status_code,
        "detail": detail[:2000],
    }
    if problems:
        errors["errors"] = [{"location": p.location, "reason": p.reason} for p in problems]
    with services.sessions() as session, session.begin():
        fail_streamed_job(session, job_id, errors)
