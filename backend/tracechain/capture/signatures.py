"""Signatures posted by a participant that keeps its own key, for the records capture left unsigned."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tracechain.capture.write import stored_content
from tracechain.chain.eip712 import Domain, recover_signer
from tracechain.chain.trace_event import SignedEvent, TraceEvent
from tracechain.epcis.schema import DocumentProblem
from tracechain.errors import TracechainError
from tracechain.keys import KeyVault
from tracechain.stamps import VerificationStamps
from tracechain.store import queries
from tracechain.store.models import CaptureJob, CaptureStatus, Participant, RecordStatus


class InvalidSignatures(TracechainError):
    """Submitted signatures that are malformed, for records not awaiting one, or by another key."""

    def __init__(self, problems: list[DocumentProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.location}: {p.reason}" for p in problems))


def signing_requests_of(session: Session, job: CaptureJob) -> list[tuple[int, TraceEvent]]:
    """(record id, event) of each record of the job awaiting its participant's signature."""
    if job.status != CaptureStatus.AWAITING_SIGNATURES:
        return []
    records = queries.records_of_capture(session, job.id)
    return [(r.id, r.trace_event()) for r in records if r.status == RecordStatus.UNSIGNED]


def sign_records(
    session: Session,
    job: CaptureJob,
    participant: Participant,
    signatures: dict[int, bytes],
    domain: Domain,
    vault: KeyVault,
) -> None:
    """Attach signatures (65 bytes r‖s‖v, as wallets return them) to a job's unsigned records.

    All or nothing: one bad signature rejects them all. When none is left unsigned, the job's
    records are queued for the submitter. Each signature is recovered here, so each record is
    stamped (`tracechain.stamps`) with its event's content, whose hash id and commitment capture
    derived from it.
    """
    stamps = VerificationStamps(vault.stamp_key, domain.separator)
    records = {r.id: r for r in queries.records_of_capture(session, job.id)}
    problems: list[DocumentProblem] = []
    for record_id, signature in signatures.items():
        record = records.get(record_id)
        location = f"signatures[{record_id}]"
        if record is None or record.status != RecordStatus.UNSIGNED:
            problems.append(
                DocumentProblem(location, "no record of this job awaits a signature under this id")
            )
            continue
        if len(signature) != 65:
            problems.append(
                DocumentProblem(location, f"a signature has 65 bytes (r, s, v), not {len(signature)}")
            )
            continue
        r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
        recovery_id = v - 27 if v >= 27 else v
        vs = (s | (recovery_id << 255)).to_bytes(32, "big")
        signed = SignedEvent(record.trace_event(), participant.address, r, vs)
        if recovery_id not in (0, 1) or recover_signer(domain.separator, signed) != participant.address:
            problems.append(
                DocumentProblem(location, f"the signature is not {participant.address}'s over this record")
            )
            continue
        record.r, record.vs = r, vs
        record.verification_stamp = stamps.stamp(stored_content(stamps, record.event), signed, record.head)
    if problems:
        raise InvalidSignatures(problems)
    if all(record.r is not None for record in records.values()):
        for record in records.values():
            record.status = RecordStatus.QUEUED
        job.status = CaptureStatus.PENDING
