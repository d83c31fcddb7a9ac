"""The consumer trace: a product's verified journey by EPC or by GS1 Digital Link path."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tracechain.api.deps import ServicesDep, SessionDep
from tracechain.api.problems import Problem
from tracechain.epcis.identifiers import canonical_epc
from tracechain.proof import proof_bundle
from tracechain.trace import Trace, build_trace, trace_document

router = APIRouter(tags=["trace"])


def _found_trace(epc: str, session: SessionDep, services: ServicesDep) -> Trace:
    canonical = canonical_epc(epc)
    trace = build_trace(session, canonical, services.registry.domain)
    if not trace.entries:
        raise Problem(404, "Not Found", f"tracechain holds no events for {canonical}")
    return trace


def _trace(epc: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    return trace_document(_found_trace(epc, session, services))


@router.get("/trace/{epc:path}/proof")
def proof(epc: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    """A self-contained proof bundle: check it with `tracechain verify BUNDLE --rpc URL`."""
    return proof_bundle(_found_trace(epc, session, services), services.registry.domain)


@router.get("/trace/{epc:path}")
def trace_by_epc(epc: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    """By EPC URN (`urn:epc:id:sgtin:…`) or a URL-encoded GS1 Digital Link."""
    return _trace(epc, session, services)


@router.get("/01/{gtin}/21/{serial}")
def trace_by_serial(gtin: str, serial: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    """GS1 Digital Link of one item (GTIN + serial), as its QR code carries it."""
    return _trace(f"https://id.gs1.org/01/{gtin}/21/{serial}", session, services)


@router.get("/01/{gtin}/10/{lot}")
def trace_by_lot(gtin: str, lot: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    """GS1 Digital Link of a lot (GTIN + batch/lot)."""
    return _trace(f"https://id.gs1.org/01/{gtin}/10/{lot}", session, services)
