"""The plain API for shipments: pack products under an SSCC and ship it, receive it, clear customs."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from tracechain.api.deps import ParticipantDep, ServicesDep
from tracechain.api.routes.capture import CaptureJobPublic, captured
from tracechain.api.routes.products import EpcPath, EventDetails, document, post_accepted
from tracechain.epcis.builders import aggregation_event, object_event
from tracechain.epcis.identifiers import canonical_epc

router = APIRouter(prefix="/shipments", tags=["shipments"])


class ShipmentCreate(EventDetails):
    sscc: str = Field(description="The logistic unit: urn:epc:id:sscc:… or a Digital Link /00/…")
    contents: list[str] = Field(default_factory=list, description="EPCs packed into it first (may be empty)")
    destination: str = Field(description="The receiving participant's party id (pgln/sgln URN)")


class ClearanceCreate(EventDetails):
    cleared: bool = Field(description="true: conformant, released; false: non-conformant, held")


@post_accepted(router, "")
async def ship(
    body: ShipmentCreate, participant: ParticipantDep, services: ServicesDep, response: Response
) -> CaptureJobPublic:
    """Pack `contents` onto the unit, then ship the unit to `destination`, in one capture."""
    sscc, at = canonical_epc(body.sscc), body.when()
    events = []
    if body.contents:
        events.append(
            aggregation_event(
                sscc, [canonical_epc(epc) for epc in body.contents], at=at, location=body.location
            )
        )
    events.append(
        object_event(
            [sscc],
            biz_step="shipping",
            disposition="in_transit",
            at=at,
            location=body.location,
            destination=canonical_epc(body.destination),
        )
    )
    return await captured(services, participant, document(*events), response)


@post_accepted(router, "/{sscc:path}/receipt")
async def receive(
    sscc: EpcPath, body: EventDetails, participant: ParticipantDep, services: ServicesDep, response: Response
) -> CaptureJobPublic:
    """The receiver the shipment named accepts it, and custody of everything on it."""
    event = object_event(
        [canonical_epc(sscc)],
        biz_step="receiving",
        disposition="in_progress",
        at=body.when(),
        location=body.location,
    )
    return await captured(services, participant, document(event), response)


@post_accepted(router, "/{sscc:path}/clearance")
async def clear_customs(
    sscc: EpcPath,
    body: ClearanceCreate,
    participant: ParticipantDep,
    services: ServicesDep,
    response: Response,
) -> CaptureJobPublic:
    """Customs records its inspection verdict on the shipment."""
    event = object_event(
        [canonical_epc(sscc)],
        biz_step="inspecting",
        disposition="conformant" if body.cleared else "non_conformant",
        at=body.when(),
        location=body.location,
    )
    return await captured(services, participant, document(event), response)
