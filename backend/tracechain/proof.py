"""The proof bundle: one self-contained JSON document that lets anyone check a product's history
against the chain without trusting the service that produced it (`tracechain verify`).

A *full* bundle holds every event whole, with its disclosure seed, so a verifier recomputes both
its hash id and the commitment its records carry. A *partial* bundle shows of each event only the
fields the caller chose (`disclose`), and for the rest their salted hashes (`tracechain.disclosure`):
it still verifies, and says which fields it withheld. A partial bundle also leaves out the records
of items that were merely packed beside the product, since they would name other goods.

Who may see which fields is not decided here: the caller says so per event.

Disclosing `#hashId` shows the event's CBV hash id, an *unsalted* SHA-256 of its whole content: a
reader who can guess the withheld values (a quantity, an order number of a known format) can test
guesses against it. Disclose it only where the link to the event's id is needed, e.g. for an event
an error declaration withdraws (a declaration's eventID is that id, and is public in the bundle).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from tracechain.chain.artifacts import build_info
from tracechain.chain.eip712 import Domain
from tracechain.chain.trace_event import Kind, subject_id
from tracechain.disclosure import HASH_ID_FIELD, EventFields
from tracechain.store.queries import RecordRow
from tracechain.trace import Trace, TraceEntry

BUNDLE_FORMAT = "tracechain-proof/2"

Disclose = Callable[[TraceEntry], Collection[str] | None]
"""Per event, the names of the fields to show (`tracechain.disclosure`: its body's top-level keys,
`#hashId`, `#context`); None shows that event whole."""


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def proof_bundle(trace: Trace, domain: Domain, disclose: Disclose | None = None) -> dict[str, Any]:
    """The trace's events in EPCIS 2.0, each with its chain records: the signed fields, the
    signature and where the chain logged it (its EventRecorded log, or in merkle mode the
    BatchAnchored log of its batch with the root and the record's inclusion proof).

    `disclose` None: the full bundle, every event whole. Otherwise a partial bundle: each event as
    `disclose(entry)` chooses, and only the records of the subjects a verifier must hold whole (the
    product, the units it travelled in, its ingredients)."""
    info = build_info()
    if disclose is None:
        events = [_full_entry(entry, list(entry.event.records)) for entry in trace.entries]
    else:
        followed = {subject_id(epc) for epc in (trace.epc, *trace.units, *trace.ingredients)}
        events = []
        for entry in trace.entries:
            records = [record for record in entry.event.records if record.subject in followed]
            if records:
                events.append(_partial_entry(entry, records, disclose(entry)))
    return {
        "format": BUNDLE_FORMAT,
        "disclosure": "full" if disclose is None else "partial",
        "epc": trace.epc,
        "verdict": trace.verdict.value,
        "chain": {
            "chainId": domain.chain_id,
            "registry": domain.verifying_contract,
            "domain": domain.as_dict(),
        },
        "contracts": {
            "compiler": info["compiler"],
            "evmVersion": info["evmVersion"],
            "inputSha256": info["inputSha256"],
            "sourceSha256": info["sources"],
        },
        "events": events,
    }


def _full_entry(entry: TraceEntry, records: list[RecordRow]) -> dict[str, Any]:
    """The event whole: its content, context and id, and the seed its fields are salted from (a
    declaration's records commit to its declaration, not to salted fields: it has no seed here)."""
    event = entry.event
    return {
        **_placing(entry),
        "eventID": event.event_id,
        "context": event.context,
        "event": event.body,
        **({} if event.declaration else {"seed": _hex(event.disclosure_seed)}),
        "records": [_record(record) for record in records],
    }


def _partial_entry(
    entry: TraceEntry, records: list[RecordRow], names: Collection[str] | None
) -> dict[str, Any]:
    event = entry.event
    if names is None:
        return _full_entry(entry, records)
    if event.declaration:
        # What its records commit to: the withdrawn event's id and the declaration.
        return {
            **_placing(entry),
            "eventID": event.event_id,
            "errorDeclaration": event.body.get("errorDeclaration"),
            "records": [_record(record) for record in records],
        }
    fields = EventFields.of(event.body, event.context, event.event_id, event.disclosure_seed)
    shown = set(names)
    return {
        **_placing(entry),
        **({"eventID": event.event_id} if HASH_ID_FIELD in shown else {}),
        **fields.disclose(shown).as_json(),
        "records": [_record(record) for record in records],
    }


def _placing(entry: TraceEntry) -> dict[str, Any]:
    """Where the event stands in the trace (the service's reading; verify checks the records)."""
    return {
        "relation": entry.relation,
        "via": entry.via,
        "statement": entry.statement.value,
    }


def _record(record: RecordRow) -> dict[str, Any]:
    return {
        "subject": _hex(record.subject),
        "subjectEpc": record.subject_epc,
        "kind": Kind(record.kind).name.lower(),
        "eventHash": _hex(record.event_hash),
        "counterpart": record.counterpart,
        "ref": _hex(record.ref),
        "time": record.time,
        "prevHead": _hex(record.prev_head),
        "head": _hex(record.head),
        "signer": record.signer,
        "signature": {"r": _hex(record.r), "vs": _hex(record.vs)} if record.r and record.vs else None,
        "transaction": record.tx_hash,
        "block": record.block_number,
        "logIndex": record.log_index,
        "anchor": {"root": _hex(record.anchor_root), "proof": record.merkle_proof}
        if record.anchor_root
        else None,
    }
