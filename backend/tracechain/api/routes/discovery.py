"""EPCIS discovery (REST binding): the top-level resources, what each lists, and the events of each
value: `/epcs`, `/bizSteps`, `/bizLocations`, `/readPoints`, `/dispositions`, `/eventTypes`, each
with `/{resource}/{id}` and `/{resource}/{id}/events`; and what `OPTIONS` answers on them all.

A listing names only values the caller is shown in an event it may see (`queries.values_shown`):
a participant does not learn of another's goods or sites by listing them, and a value it may not
see is as unknown as one nobody captured (404). `/{resource}/{id}/events` is `/events` with the
path's filter added (`answer_query`), so it answers every query parameter `/events` does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter, Request, Response, status

from tracechain.api.deps import SessionDep, ViewerDep
from tracechain.api.gs1_headers import EpcFormatDep, Negotiated, discovery_headers
from tracechain.api.negotiation import wants_xml
from tracechain.api.paging import NOT_ISSUED_HERE, next_page, not_issued_here, paging_of
from tracechain.api.problems import Problem
from tracechain.api.routes.events import QueryPage, answer_query, in_media_type, linked
from tracechain.epcis.epc_format import EpcFormat, identifier_in
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.identifiers import InvalidIdentifier, canonical_identifier, is_class
from tracechain.epcis.mapping import bare_vocabulary, identifiers_of
from tracechain.epcis.query import EVENT_TYPES, InvalidQuery, canonical_location
from tracechain.store import queries
from tracechain.visibility import Viewer

router = APIRouter(tags=["discovery"], dependencies=[Negotiated])

DEFAULT_PER_PAGE: Final = 30
"""The binding's default `perPage` for a listing."""
TOP_LEVEL: Final = (
    "events",
    "eventTypes",
    "epcs",
    "bizSteps",
    "bizLocations",
    "readPoints",
    "dispositions",
    "capture",
    "queries",
)


def collection(members: Iterable[str]) -> dict[str, Any]:
    """The binding's `Collection` document."""
    return {"@context": EPCIS_CONTEXT, "type": "Collection", "member": list(members)}


# ---------------------------------------------------------------- what each resource lists


def _epcs_of(shown: dict[str, Any]) -> list[str]:
    return [identifier for identifier, _role in identifiers_of(shown)]


def _place_of(field: str) -> Callable[[dict[str, Any]], list[str]]:
    def read(shown: dict[str, Any]) -> list[str]:
        place = shown.get(field)
        value = place.get("id") if isinstance(place, dict) else None
        return [_canonical_place(value)] if isinstance(value, str) else []

    return read


def _canonical_place(value: str) -> str:
    try:
        return canonical_location(value)
    except InvalidIdentifier:
        return value  # stored as captured; listed as it was written


def _word_of(field: str) -> Callable[[dict[str, Any]], list[str]]:
    def read(shown: dict[str, Any]) -> list[str]:
        value = shown.get(field)
        return [bare_vocabulary(value)] if isinstance(value, str) else []

    return read


@dataclass(frozen=True)
class Vocabulary:
    """A top-level resource: the values it lists, how a path spells one, and which query
    parameter(s) it fills for `/{resource}/{id}/events`."""

    name: str
    read: Callable[[dict[str, Any]], list[str]]
    """The canonical values an event (as the caller is shown it) has."""
    canonical: Callable[[str], str]
    """A value from the path, in any accepted spelling, as `read` writes it."""
    parameters: tuple[str, ...]
    """The query parameters naming this kind of value: the path fills the first that applies
    (`parameter_for`); a request may not add any of them, as `/events` would take it as another
    alternative and widen the query instead of narrowing it."""
    identifiers: bool = False
    """Values are GS1 identifiers, listed in the caller's `GS1-EPC-Format`."""

    def parameter_for(self, value: str) -> str:
        if self.name == "epcs" and (is_class(value) or value.startswith("urn:epc:class:")):
            return "MATCH_anyEPCClass"
        return self.parameters[0]


VOCABULARIES: Final = (
    Vocabulary(
        "epcs", _epcs_of, canonical_identifier, ("MATCH_anyEPC", "MATCH_anyEPCClass"), identifiers=True
    ),
    Vocabulary("bizSteps", _word_of("bizStep"), bare_vocabulary, ("EQ_bizStep",)),
    Vocabulary(
        "bizLocations",
        _place_of("bizLocation"),
        _canonical_place,
        ("EQ_bizLocation", "WD_bizLocation"),
        identifiers=True,
    ),
    Vocabulary(
        "readPoints",
        _place_of("readPoint"),
        _canonical_place,
        ("EQ_readPoint", "WD_readPoint"),
        identifiers=True,
    ),
    Vocabulary("dispositions", _word_of("disposition"), bare_vocabulary, ("EQ_disposition",)),
)
EVENT_TYPE_PARAMETER: Final = "eventType"


# ---------------------------------------------------------------- paging a listing


def _listing(request: Request, response: Response, values: Iterable[str], shown: Callable[[str], str]) -> Any:
    """One page of the sorted values, each as `shown` writes it; a `Link: rel="next"` header to the
    next page if there is one (the token holds the last value listed)."""
    paging = paging_of(request, DEFAULT_PER_PAGE, "a listing")
    after = None
    if paging.after is not None:
        owner, after = (
            paging.after if isinstance(paging.after, list) and len(paging.after) == 2 else (None, None)
        )
        if owner != request.url.path or not isinstance(after, str):
            raise not_issued_here(f"{NOT_ISSUED_HERE} for this listing")
    per_page = paging.per_page
    ordered = sorted(value for value in set(values) if after is None or value > after)
    page = ordered[:per_page]
    if len(ordered) > per_page:
        next_page(request, response, per_page, [request.url.path, page[-1]])
    return collection(shown(value) for value in page)


# ---------------------------------------------------------------- routes


@router.get("/")
def top_level() -> dict[str, Any]:
    """The EPCIS top-level resources this repository has."""
    return collection(TOP_LEVEL)


@router.get("/eventTypes")
def event_types(request: Request, response: Response, viewer: ViewerDep) -> Any:
    """The five EPCIS event types: the binding lists the types a repository supports, whether or
    not it holds events of each, so the list tells nobody what others captured."""
    return _listing(request, response, EVENT_TYPES, str)


def _event_type(event_type: str) -> str:
    if event_type not in EVENT_TYPES:
        raise Problem(
            404,
            "Not Found",
            f"no event type {event_type}: this repository has {', '.join(sorted(EVENT_TYPES))}",
            type="epcisException:NoSuchResourceException",
        )
    return event_type


@router.get("/eventTypes/{event_type}/events", response_model=None)
def events_of_type(
    event_type: str,
    request: Request,
    response: Response,
    session: SessionDep,
    viewer: ViewerDep,
    epc_format: EpcFormatDep,
) -> dict[str, Any] | Response:
    """`/events?eventType={eventType}` and the request's other query parameters; JSON or XML."""
    xml = wants_xml(request.headers.get("accept"))
    page = _events_where(
        request, session, viewer, (EVENT_TYPE_PARAMETER,), _event_type(event_type), epc_format
    )
    return in_media_type(xml, linked(request, response, page), page.contexts, response)


@router.get("/eventTypes/{event_type}")
def event_type_resources(event_type: str, viewer: ViewerDep) -> dict[str, Any]:
    _event_type(event_type)
    return collection(["events"])


def _events_where(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    parameters: tuple[str, ...],
    value: str,
    epc_format: EpcFormat,
    parameter: str | None = None,
) -> QueryPage:
    """A page of `/events` with `parameter` (default: the first of `parameters`) = `value` added to
    the request's own parameters, none of which may be one of `parameters`."""
    params = request.query_params.multi_items()
    clashing = sorted({name for name, _ in params if name in parameters})
    if clashing:
        raise InvalidQuery([(name, "the path names it already") for name in clashing])
    added = (parameter or parameters[0], value)
    page = answer_query(session, viewer, [*params, added], epc_format)
    if page.next_params is None:
        return page
    return QueryPage(page.document, [pair for pair in page.next_params if pair != added], page.contexts)


def _register(vocabulary: Vocabulary) -> None:
    name = vocabulary.name

    def canonical(value: str) -> str:
        if "|" in value:  # a query parameter reads "|" as "or"; a path names one value
            raise InvalidQuery([(name, f"{value!r}: one value, without '|'")])
        return vocabulary.canonical(value)

    def shown_to(viewer: Viewer, session: SessionDep, value: str) -> str:
        """The path's value, canonical, if the caller is shown it in an event it may see; else 404,
        whether nobody captured it or only others may see it."""
        found = canonical(value)
        probe = [(vocabulary.parameter_for(found), found), ("perPage", "1")]
        if not answer_query(session, viewer, probe).document["epcisBody"]["queryResults"]["resultsBody"][
            "eventList"
        ]:
            raise Problem(
                404,
                "Not Found",
                f"no {name} {found} in an event you may read",
                type="epcisException:NoSuchResourceException",
            )
        return found

    def listing(
        request: Request, response: Response, session: SessionDep, viewer: ViewerDep, epc_format: EpcFormatDep
    ) -> Any:
        values = queries.values_shown(session, viewer, vocabulary.read)
        if vocabulary.identifiers:
            return _listing(request, response, values, lambda value: identifier_in(value, epc_format))
        return _listing(request, response, values, str)

    def events_of(
        value: str,
        request: Request,
        response: Response,
        session: SessionDep,
        viewer: ViewerDep,
        epc_format: EpcFormatDep,
    ) -> dict[str, Any] | Response:
        xml = wants_xml(request.headers.get("accept"))
        found = shown_to(viewer, session, value)
        parameter = vocabulary.parameter_for(found)
        page = _events_where(request, session, viewer, vocabulary.parameters, found, epc_format, parameter)
        return in_media_type(xml, linked(request, response, page), page.contexts, response)

    def resources_of(value: str, session: SessionDep, viewer: ViewerDep) -> dict[str, Any]:
        shown_to(viewer, session, value)
        return collection(["events"])

    listing.__doc__ = f"The {name} named in events you may read, as you are shown them; paged."
    events_of.__doc__ = (
        f"`/events` with the path's value as `{vocabulary.parameters[0]}` (or the class parameter for "
        "an EPC class), and the request's other query parameters; 404 for a value you are shown in "
        "no event."
    )
    resources_of.__doc__ = f"The sub-resources of one of the {name} (`events`); 404 as for its events."
    router.add_api_route(f"/{name}", listing, methods=["GET"], name=f"{name}_listing")
    # Before `/{name}/{value}`: a value is a path, so that route would match `…/events` as well.
    router.add_api_route(
        f"/{name}/{{value:path}}/events",
        events_of,
        methods=["GET"],
        name=f"{name}_events",
        response_model=None,
    )
    router.add_api_route(f"/{name}/{{value:path}}", resources_of, methods=["GET"], name=f"{name}_resources")


for _vocabulary in VOCABULARIES:
    _register(_vocabulary)


# ---------------------------------------------------------------- OPTIONS

_READ_ONLY: Final = "OPTIONS, GET"
OPTIONS_PATHS: Final = {
    "/": _READ_ONLY,
    "/events": "OPTIONS, GET, POST",
    "/events/{event_id:path}": _READ_ONLY,
    "/eventTypes": _READ_ONLY,
    "/eventTypes/{event_type}": _READ_ONLY,
    "/eventTypes/{event_type}/events": _READ_ONLY,
    **{f"/{v.name}": _READ_ONLY for v in VOCABULARIES},
    **{f"/{v.name}/{{value:path}}": _READ_ONLY for v in VOCABULARIES},
    "/queries": "OPTIONS, GET, POST",
    "/queries/{name}": "OPTIONS, GET, DELETE",
    "/queries/{name}/events": _READ_ONLY,
    "/queries/{name}/subscriptions": "OPTIONS, GET, POST",
    "/queries/{name}/subscriptions/{subscription_id}": "OPTIONS, GET, DELETE",
}
"""Each EPCIS resource but capture's (api/routes/capture.py answers those, with its limits), and
what it allows. `/{name}/{value}` covers `/{name}/{value}/events` too: both allow the same."""


def _options(allow: str) -> Callable[[], Response]:
    def options() -> Response:
        """The EPCIS and CBV versions this resource speaks, the identifier forms it serves, and the
        methods it allows (the binding's discovery headers)."""
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=discovery_headers(allow))

    return options


for _path, _allow in OPTIONS_PATHS.items():
    router.add_api_route(
        _path,
        _options(_allow),
        methods=["OPTIONS"],
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        name=f"options {_path}",
    )
