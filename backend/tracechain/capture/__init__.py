"""Capture: an EPCIS document becomes stored events and signed chain records.

The whole document is checked before anything is written: the schema, identifiers, parties, and
every event's effect against the custody projection (the contract's rules in `custody.py`, applied
to the state the chain will have once the queued records land). Under the EPCIS error behaviour
`rollback` (the default) one bad event rejects the document with every reason found; under
`proceed` the bad events are left out, each reason kept in the capture job's errors, and the rest
is captured as if the document had held only them. Accepted events are signed over their subjects'
projected heads and queued for the submitter in the same database transaction, so a crash loses or
duplicates nothing.

The stages, each a module: `prepare` (the document alone, before the capture lock), `accept`
(which events are new and may be), `sign` (custody checked, records signed), `write` (rows
stored); `document` runs them over a document or a stream of chunks; `intake` is the way in, the
capture queue and group commit in front; `signatures` takes the signatures of participants that
keep their own key.
"""

from tracechain.capture.document import (
    CHUNK_EVENTS,
    Capture,
    CaptureInterrupted,
    capture_document,
    capture_in_chunks,
    fail_streamed_job,
    open_streamed_job,
)
from tracechain.capture.intake import ConcurrentCapture, Submitted, start_streamed, submit
from tracechain.capture.prepare import (
    MAX_JSON_DEPTH,
    CaptureLimitExceeded,
    CaptureLimits,
    DocumentRejected,
    ErrorBehaviour,
    InvalidJson,
    PreparedDocument,
    StoredKey,
    prepare_document,
)
from tracechain.capture.signatures import InvalidSignatures, sign_records, signing_requests_of
from tracechain.capture.write import stored_content

__all__ = [
    "CHUNK_EVENTS",
    "MAX_JSON_DEPTH",
    "Capture",
    "CaptureInterrupted",
    "CaptureLimitExceeded",
    "CaptureLimits",
    "ConcurrentCapture",
    "DocumentRejected",
    "ErrorBehaviour",
    "InvalidJson",
    "InvalidSignatures",
    "PreparedDocument",
    "StoredKey",
    "Submitted",
    "capture_document",
    "capture_in_chunks",
    "fail_streamed_job",
    "open_streamed_job",
    "prepare_document",
    "sign_records",
    "signing_requests_of",
    "start_streamed",
    "stored_content",
    "submit",
]
