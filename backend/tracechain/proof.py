"""The proof bundle: one self-contained JSON document that lets anyone check a product's history
against the chain without trusting the service that produced it (`tracechain verify`)."""

from __future__ import annotations

from typing import Any

from tracechain.chain.artifacts import build_info
from tracechain.chain.eip712 import Domain
from tracechain.chain.trace_event import Kind
from tracechain.trace import Trace

BUNDLE_FORMAT = "tracechain-proof/1"


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def proof_bundle(trace: Trace, domain: Domain) -> dict[str, Any]:
    """Every event of the trace in EPCIS 2.0 with its CBV hash id, and for each of its chain records
    the signed fields, the signature and where the chain logged it: its EventRecorded log, or in
    merkle mode the BatchAnchored log of its batch with the root and the record's inclusion proof."""
    info = build_info()
    return {
        "format": BUNDLE_FORMAT,
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
        "events": [
            {
                "eventID": entry.event.event_id,
                "relation": entry.relation,
                "via": entry.via,
                "statement": entry.statement.value,
                "context": entry.event.context,
                "event": entry.event.body,
                "records": [
                    {
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
                        "signature": {"r": _hex(record.r), "vs": _hex(record.vs)}
                        if record.r and record.vs
                        else None,
                        "transaction": record.tx_hash,
                        "block": record.block_number,
                        "logIndex": record.log_index,
                        "anchor": {"root": _hex(record.anchor_root), "proof": record.merkle_proof}
                        if record.anchor_root
                        else None,
                    }
                    for record in entry.event.records
                ],
            }
            for entry in trace.entries
        ],
    }
