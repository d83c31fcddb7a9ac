"""The consumer trace: a product's verified journey by EPC or by GS1 Digital Link path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates

from tracechain.api.deps import ServicesDep, SessionDep
from tracechain.api.problems import Problem
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_epc
from tracechain.proof import proof_bundle
from tracechain.settlement import orders_for_shipments, public_settlement
from tracechain.store import queries
from tracechain.trace import Trace, build_trace, trace_document
from tracechain.web.page import build_page

router = APIRouter(tags=["trace"])

LinkType = Annotated[str | None, Query(alias="linkType", description="gs1:pip, gs1:traceability or linkset")]


def _found_trace(epc: str, session: SessionDep, services: ServicesDep) -> Trace:
    canonical = canonical_epc(epc)
    trace = build_trace(session, canonical, services.registry.domain)
    if not trace.entries:
        raise Problem(404, "Not Found", f"tracechain holds no events for {canonical}")
    return trace


def _trace(epc: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    trace = _found_trace(epc, session, services)
    return {**trace_document(trace), "settlement": _settlement(session, trace)}


def _settlement(session: SessionDep, trace: Trace) -> list[dict[str, Any]]:
    """The settlement state of orders paying for the product's shipments (the units it travelled in)."""
    return [public_settlement(row) for row in orders_for_shipments(session, {trace.epc, *trace.units})]


@router.get("/trace/{epc:path}/proof")
def proof(epc: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    """A self-contained proof bundle: check it with `tracechain verify BUNDLE --rpc URL`."""
    return proof_bundle(_found_trace(epc, session, services), services.registry.domain)


@router.get("/trace/{epc:path}")
def trace_by_epc(epc: str, session: SessionDep, services: ServicesDep) -> dict[str, Any]:
    """By EPC URN (`urn:epc:id:sgtin:…`) or a URL-encoded GS1 Digital Link."""
    return _trace(epc, session, services)


LINKSET_MEDIA_TYPE = "application/linkset+json"
_templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "web" / "templates"))


@router.get("/01/{gtin}/21/{serial}", response_model=None)
def resolve_serial(
    gtin: str,
    serial: str,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    link_type: LinkType = None,
) -> Response | dict[str, Any]:
    """GS1 Digital Link of one item (GTIN + serial), as its QR code carries it.

    Browsers get the consumer page, programs the JSON trace; `linkType` picks one as GS1 resolvers
    do: `gs1:pip` the page, `gs1:traceability` the trace, `linkset` every link."""
    return _resolve(f"/01/{gtin}/21/{serial}", request, session, services, link_type)


@router.get("/01/{gtin}/10/{lot}", response_model=None)
def resolve_lot(
    gtin: str,
    lot: str,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    link_type: LinkType = None,
) -> Response | dict[str, Any]:
    """GS1 Digital Link of a lot (GTIN + batch/lot): the same choices as for an item."""
    return _resolve(f"/01/{gtin}/10/{lot}", request, session, services, link_type)


def _resolve(
    path: str, request: Request, session: SessionDep, services: ServicesDep, link_type: str | None
) -> Response | dict[str, Any]:
    wanted = (link_type or "").removeprefix("gs1:")
    if wanted == "linkset" or LINKSET_MEDIA_TYPE in request.headers.get("accept", ""):
        return _linkset(path, request)
    html = wanted == "pip" or (wanted != "traceability" and _prefers_html(request))
    if not html:
        return _trace(f"https://id.gs1.org{path}", session, services)
    try:
        epc = canonical_epc(f"https://id.gs1.org{path}")
    except InvalidIdentifier as exc:
        return _page_not_found(request, path, str(exc), 400)
    trace = build_trace(session, epc, services.registry.domain)
    if not trace.entries:
        return _page_not_found(request, epc, "tracechain holds no events for it.", 404)
    signers = {entry.event.signer for entry in trace.entries}
    page = build_page(
        trace,
        queries.participants_by_address(session, signers),
        str(request.base_url).rstrip("/"),
        _settlement(session, trace),
    )
    return _templates.TemplateResponse(request, "product.html", {"page": page})


def _prefers_html(request: Request) -> bool:
    """Browsers list text/html first; programs ask for JSON or for anything."""
    accept = request.headers.get("accept", "")
    html, json = accept.find("text/html"), accept.find("application/json")
    return html != -1 and (json == -1 or html < json)


def _page_not_found(request: Request, identifier: str, reason: str, status: int) -> Response:
    context = {"identifier": identifier, "reason": reason}
    return _templates.TemplateResponse(request, "not_found.html", context, status_code=status)


def _linkset(path: str, request: Request) -> JSONResponse:
    base = str(request.base_url).rstrip("/")
    anchor = f"{base}{path}"
    links = {
        "anchor": anchor,
        "https://gs1.org/voc/defaultLink": [{"href": f"{anchor}?linkType=gs1:pip", "type": "text/html"}],
        "https://gs1.org/voc/pip": [
            {"href": f"{anchor}?linkType=gs1:pip", "type": "text/html", "title": "Product journey"}
        ],
        "https://gs1.org/voc/traceability": [
            {
                "href": f"{anchor}?linkType=gs1:traceability",
                "type": "application/json",
                "title": "Verified trace",
            }
        ],
    }
    return JSONResponse({"linkset": [links]}, media_type=LINKSET_MEDIA_TYPE)
