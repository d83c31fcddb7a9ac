"""The consumer trace: a product's verified journey by EPC or by GS1 Digital Link path.

Anyone may read a trace and its proof bundle, in the public view; a participant's key shows it each
event as `visibility` lets it see it (its own in full, a partner's without business transactions)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates

from tracechain.api.deps import OptionalViewerDep, ServicesDep, SessionDep
from tracechain.api.problems import Problem
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_epc, canonical_identifier
from tracechain.proof import proof_bundle
from tracechain.settlement import public_settlement
from tracechain.store import queries
from tracechain.trace import Trace, build_trace, trace_document
from tracechain.visibility import ANONYMOUS, Viewer, product_class, seen_trace
from tracechain.web.page import DESCRIBED_VOCABULARIES, build_page, elements_named

router = APIRouter(tags=["trace"])

LinkType = Annotated[str | None, Query(alias="linkType", description="gs1:pip, gs1:traceability or linkset")]


def _found_trace(epc: str, session: SessionDep, services: ServicesDep) -> Trace:
    canonical = canonical_identifier(epc)  # a private URI an event named is traced as written
    trace = build_trace(session, canonical, services.registry.domain, services.stamps)
    if not trace.entries:
        raise Problem(404, "Not Found", f"tracechain holds no events for {canonical}")
    return trace


def _seen(session: SessionDep, viewer: Viewer, trace: Trace) -> Trace:
    """The trace as the viewer may see it."""
    events = [entry.event for entry in trace.entries]
    access = queries.access_of(
        session,
        viewer,
        {epc for event in events for epc in event.epcs},
        {event.signer for event in events},
        product_class(trace.epc),
    )
    # Only a participant can be a party to an event: nobody else needs the events' parties read.
    named = viewer.participant_id is not None
    parties = queries.parties_of_events(session, [event.row_id for event in events]) if named else {}
    return seen_trace(trace, access, parties)


def _trace(epc: str, session: SessionDep, services: ServicesDep, viewer: Viewer) -> dict[str, Any]:
    trace = _seen(session, viewer, _found_trace(epc, session, services))
    return {**trace_document(trace), "settlement": _settlement(session, trace)}


def _settlement(session: SessionDep, trace: Trace) -> list[dict[str, Any]]:
    """Whether orders paying for the product's shipments (the units it travelled in) are paid: no
    amounts, shares or parties, whoever asks (the parties read their orders at /orders)."""
    return [
        public_settlement(row) for row in queries.orders_for_shipments(session, {trace.epc, *trace.units})
    ]


@router.get("/trace/{epc:path}/proof")
def proof(
    epc: str,
    session: SessionDep,
    services: ServicesDep,
    viewer: OptionalViewerDep,
    view: Annotated[str | None, Query(description="`public`: the public bundle, whoever asks")] = None,
) -> dict[str, Any]:
    """A self-contained proof bundle: check it with `tracechain verify BUNDLE --rpc URL`.

    Without a key, or with `view=public`, the public bundle: each event's public fields, proven
    against what its signer committed to on chain, the others withheld by name. With a key, each
    event as the caller may see it: its own and those granted to it in full."""
    if view not in (None, "public"):
        raise Problem(400, "Invalid view", f"view is `public` or left out, not {view!r}")
    trace = _found_trace(epc, session, services)
    seen = _seen(session, ANONYMOUS if view == "public" else viewer, trace)
    shown = {entry.event.row_id: entry.shown for entry in seen.entries}
    if all(fields is None for fields in shown.values()):  # all of it in full: the full bundle
        return proof_bundle(trace, services.registry.domain)
    return proof_bundle(trace, services.registry.domain, disclose=lambda entry: shown[entry.event.row_id])


@router.get("/trace/{epc:path}")
def trace_by_epc(
    epc: str, session: SessionDep, services: ServicesDep, viewer: OptionalViewerDep
) -> dict[str, Any]:
    """By EPC URN (`urn:epc:id:sgtin:…`), a URL-encoded GS1 Digital Link, or the private URI an
    event named."""
    return _trace(epc, session, services, viewer)


LINKSET_MEDIA_TYPE = "application/linkset+json"
_templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "web" / "templates"))


@router.get("/01/{gtin}/21/{serial}", response_model=None)
def resolve_serial(
    gtin: str,
    serial: str,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    viewer: OptionalViewerDep,
    link_type: LinkType = None,
) -> Response | dict[str, Any]:
    """GS1 Digital Link of one item (GTIN + serial), as its QR code carries it.

    Browsers get the consumer page, programs the JSON trace; `linkType` picks one as GS1 resolvers
    do: `gs1:pip` the page, `gs1:traceability` the trace, `linkset` every link."""
    return _resolve(f"/01/{gtin}/21/{serial}", request, session, services, viewer, link_type)


@router.get("/01/{gtin}/10/{lot}", response_model=None)
def resolve_lot(
    gtin: str,
    lot: str,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    viewer: OptionalViewerDep,
    link_type: LinkType = None,
) -> Response | dict[str, Any]:
    """GS1 Digital Link of a lot (GTIN + batch/lot): the same choices as for an item."""
    return _resolve(f"/01/{gtin}/10/{lot}", request, session, services, viewer, link_type)


def _resolve(
    path: str,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    viewer: Viewer,
    link_type: str | None,
) -> Response | dict[str, Any]:
    wanted = (link_type or "").removeprefix("gs1:")
    if wanted == "linkset" or LINKSET_MEDIA_TYPE in request.headers.get("accept", ""):
        return _linkset(path, request)
    html = wanted == "pip" or (wanted != "traceability" and _prefers_html(request))
    if not html:
        return _trace(f"https://id.gs1.org{path}", session, services, viewer)
    try:
        epc = canonical_epc(f"https://id.gs1.org{path}")
    except InvalidIdentifier as exc:
        return _page_not_found(request, path, str(exc), 400)
    trace = build_trace(session, epc, services.registry.domain, services.stamps)
    if not trace.entries:
        return _page_not_found(request, epc, "tracechain holds no events for it.", 404)
    trace = _seen(session, viewer, trace)
    signers = {entry.event.signer for entry in trace.entries}
    page = build_page(
        trace,
        queries.participants_by_address(session, signers),
        str(request.base_url).rstrip("/"),
        _settlement(session, trace),
        queries.master_data_described(session, signers, DESCRIBED_VOCABULARIES, elements_named(trace)),
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
