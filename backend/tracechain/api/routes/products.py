"""The plain API for products: register, sell, recall. Each call becomes an EPCIS event and goes
the same way as a capture (validated, signed, queued), answering with its capture job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field, model_validator

from tracechain.api.deps import ParticipantDep, ServicesDep
from tracechain.api.routes.capture import CaptureJobPublic, captured
from tracechain.epcis.builders import object_event, sensor_event
from tracechain.epcis.event_hash import EPCIS_CONTEXT
from tracechain.epcis.identifiers import canonical_epc

router = APIRouter(prefix="/products", tags=["products"])

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
EpcPath = Annotated[str, Path(description="EPC URN or GS1 Digital Link (URL-encoded)")]


class EventDetails(BaseModel):
    at: datetime | None = Field(None, description="When it happened (default: now)")
    location: str | None = Field(None, description="Where: an SGLN URN (urn:epc:id:sgln:…)")

    def when(self) -> datetime:
        return self.at or datetime.now(UTC)


class ProductCreate(EventDetails):
    gtin: str = Field(pattern=r"^\d{14}$", description="GTIN-14")
    serial: str | None = Field(None, min_length=1, max_length=20, description="One item: GTIN + serial")
    lot: str | None = Field(None, min_length=1, max_length=20, description="A lot: GTIN + batch/lot")

    @model_validator(mode="after")
    def _serial_or_lot(self) -> ProductCreate:
        if (self.serial is None) == (self.lot is None):
            raise ValueError("give exactly one of serial (an item) or lot (a lot)")
        return self

    def epc(self) -> str:
        qualifier = f"21/{self.serial}" if self.serial else f"10/{self.lot}"
        return canonical_epc(f"https://id.gs1.org/01/{self.gtin}/{qualifier}")


class RecallCreate(EventDetails):
    reason: str | None = Field(None, max_length=500)


class SensorReadingCreate(EventDetails):
    measurement: str = Field("Temperature", description="GS1 sensor measurement type, e.g. Temperature")
    value: float
    uom: str = Field("CEL", description="UN/CEFACT unit code, e.g. CEL for degrees Celsius")
    minimum: float | None = Field(None, description="Lowest agreed value; below it is an excursion")
    maximum: float | None = Field(None, description="Highest agreed value; above it is an excursion")


def document(*events: dict[str, object]) -> dict[str, object]:
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {"eventList": list(events)},
    }


def post_accepted(router: APIRouter, path: str) -> Callable[[Endpoint], Endpoint]:
    """A POST route that answers 202 with the capture job its event became."""
    return router.post(
        path,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=CaptureJobPublic,
        response_model_by_alias=True,
    )


@post_accepted(router, "")
async def register_product(
    body: ProductCreate, participant: ParticipantDep, services: ServicesDep, response: Response
) -> CaptureJobPublic:
    """Commission an item (GTIN + serial) or a lot (GTIN + lot): its origin, signed by its manufacturer."""
    event = object_event(
        [body.epc()],
        biz_step="commissioning",
        action="ADD",
        disposition="active",
        at=body.when(),
        location=body.location,
    )
    return await captured(services, participant, document(event), response)


@post_accepted(router, "/{epc:path}/sale")
async def sell(
    epc: EpcPath, body: EventDetails, participant: ParticipantDep, services: ServicesDep, response: Response
) -> CaptureJobPublic:
    """The retailer holding the product sold it to a consumer."""
    event = object_event(
        [canonical_epc(epc)],
        biz_step="retail_selling",
        disposition="retail_sold",
        at=body.when(),
        location=body.location,
    )
    return await captured(services, participant, document(event), response)


RECALL_NS: Final = "https://tracechain.dev/recall#"
"""The namespace of the plain API's recall terms (`recall:reason`)."""


@post_accepted(router, "/{epc:path}/recall")
async def recall(
    epc: EpcPath, body: RecallCreate, participant: ParticipantDep, services: ServicesDep, response: Response
) -> CaptureJobPublic:
    """Its manufacturer or an auditor recalls it, and everything packed in it."""
    event = object_event(
        [canonical_epc(epc)],
        biz_step="holding",
        disposition="recalled",
        at=body.when(),
        location=body.location,
    )
    recall_document = document(event)
    if body.reason:  # a user extension, in its own namespace as EPCIS asks
        event["recall:reason"] = body.reason
        # the recaller's words, so not in tracechain's own namespace, which names what it adds
        # to the events it serves (epcis.schema.TRACECHAIN_NS)
        recall_document["@context"] = [EPCIS_CONTEXT, {"recall": RECALL_NS}]
    return await captured(services, participant, recall_document, response)


@post_accepted(router, "/{epc:path}/sensor-readings")
async def report_sensor_reading(
    epc: EpcPath,
    body: SensorReadingCreate,
    participant: ParticipantDep,
    services: ServicesDep,
    response: Response,
) -> CaptureJobPublic:
    """A reading from the custodian's sensor; outside the agreed range it records an excursion."""
    event = sensor_event(
        [canonical_epc(epc)],
        at=body.when(),
        measurement=body.measurement,
        value=body.value,
        uom=body.uom,
        minimum=body.minimum,
        maximum=body.maximum,
        location=body.location,
    )
    return await captured(services, participant, document(event), response)
