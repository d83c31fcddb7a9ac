"""The demo's story (../shared/DOMAIN.md): who takes part, which events each captures, and the three
orders the retailer pays through escrow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from tracechain.epcis.builders import aggregation_event, object_event, sensor_event
from tracechain.epcis.identifiers import gs1_key

SHENZHEN = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class DemoParty:
    name: str
    roles: tuple[str, ...]
    party_id: str  # PGLN: how EPCIS documents name it
    location: str  # SGLN of where it acts
    country: str


MANUFACTURER = DemoParty(
    "Shenzhen Bright Electronics",
    ("manufacturer",),
    "urn:epc:id:pgln:6901234.00000",
    "urn:epc:id:sgln:6901234.00001.0",
    "CN",
)
CARRIER = DemoParty(
    "Blue Water Ocean Lines",
    ("carrier",),
    "urn:epc:id:pgln:5790001.00000",
    "urn:epc:id:sgln:5790001.00001.0",
    "DK",
)
CUSTOMS = DemoParty(
    "EU Customs Rotterdam",
    ("customs",),
    "urn:epc:id:pgln:8712345.00009",
    "urn:epc:id:sgln:8712345.00009.0",
    "NL",
)
RETAILER = DemoParty(
    "Amsterdam Home Retail",
    ("retailer",),
    "urn:epc:id:pgln:8712345.00002",
    "urn:epc:id:sgln:8712345.00002.0",
    "NL",
)
PARTIES = (MANUFACTURER, CARRIER, CUSTOMS, RETAILER)

PRODUCT_CLASS = "urn:epc:idpat:sgtin:6901234.067890.*"
"""The GTIN of the demo's items, as an EPCIS class."""

_VTYPE = "urn:epcglobal:epcis:vtype:"
_SITES = {
    MANUFACTURER: [(MANUFACTURER.location, "Shenzhen Bright factory", "Shenzhen", "CN")],
    CARRIER: [
        (CARRIER.location, "MV Blue Horizon (at sea)", "", ""),
        (CUSTOMS.location, "Port of Rotterdam", "Rotterdam", "NL"),  # it ships from there to the shop
    ],
    CUSTOMS: [(CUSTOMS.location, "Port of Rotterdam", "Rotterdam", "NL")],
    RETAILER: [(RETAILER.location, "Amsterdam Home Retail store", "Amsterdam", "NL")],
}


def master_data(party: DemoParty) -> dict[str, Any]:
    """The party's own EPCIS master data (`epcisHeader.epcisMasterData`): the names of its sites
    and, for the maker, of its product, which the consumer page shows instead of identifiers."""
    sites = [
        {
            "id": location,
            "attributes": [
                {"id": f"urn:epcglobal:cbv:mda#{attribute}", "attribute": value}
                for attribute, value in (("name", name), ("city", city), ("countryCode", country))
                if value
            ],
        }
        for location, name, city, country in _SITES[party]
    ]
    vocabularies = [{"type": f"{_VTYPE}BusinessLocation", "vocabularyElementList": sites}]
    if party is MANUFACTURER:
        product = {
            "id": PRODUCT_CLASS,
            "attributes": [{"id": "urn:epcglobal:cbv:mda#descriptionShort", "attribute": "Bright desk lamp"}],
        }
        vocabularies.append({"type": f"{_VTYPE}EPCClass", "vocabularyElementList": [product]})
    return {"vocabularyList": vocabularies}


Steps = list[tuple[DemoParty, list[dict[str, Any]]]]
"""Who captures which EPCIS events, in order: one capture document per entry."""

COLD_CHAIN = (Decimal(2), Decimal(8))
"""The agreed temperature range in °C; a reading outside it is an excursion."""

SHORT_DEADLINE = timedelta(seconds=10)
"""The missed-deadline order's delivery window, past the earliest deadline the service accepts (a
margin past the chain's time): short, so the demo need not wait weeks to show it."""


@dataclass(frozen=True)
class DemoOrder:
    """One of the retailer's orders from the manufacturer, and what happens to its shipment."""

    label: str
    amount: Decimal
    milestones: dict[str, int]
    penalties: dict[str, int]
    shipped: bool  # False: the manufacturer never ships, and the deadline passes
    excursion: bool  # the container's temperature leaves the cold-chain range at sea
    expected_paid: Decimal
    expected_refunded: Decimal


ORDERS = (
    DemoOrder(
        "on time, 30% shipped / 70% received",
        Decimal(10_000),
        {"shipped": 30, "received": 70},
        {},
        shipped=True,
        excursion=False,
        expected_paid=Decimal(10_000),
        expected_refunded=Decimal(0),
    ),
    DemoOrder(
        "temperature excursion, 25% penalty",
        Decimal(8_000),
        {"shipped": 30, "received": 70},
        {"excursion": 25},
        shipped=True,
        excursion=True,
        expected_paid=Decimal(6_000),
        expected_refunded=Decimal(2_000),
    ),
    DemoOrder(
        "never shipped, deadline missed",
        Decimal(5_000),
        {"shipped": 30, "received": 70},
        {},
        shipped=False,
        excursion=False,
        expected_paid=Decimal(0),
        expected_refunded=Decimal(5_000),
    ),
)


def purchase_order(run: int, n: int) -> str:
    """The retailer's purchase order number for the run's n-th order: on its shipment's events, a
    business transaction the trading partners see and consumers do not."""
    return f"PO-{run}-{n}"


def bill_of_lading(run: int, n: int) -> str:
    """The carrier's bill of lading for the run's n-th pallet."""
    return f"BOL-{run}-{n}"


def journey(item: str, pallet: str, start: datetime, order: DemoOrder, po: str, bol: str) -> Steps:
    """The item's way from Shenzhen to the shop, as far as the order's story takes it. The shipments
    carry their business documents: the purchase order (the maker's) and the bill of lading (the
    carrier's)."""
    day = timedelta(days=1)
    departed, arrived = start + 2 * day, start + 30 * day
    made: Steps = [
        (
            MANUFACTURER,
            [
                object_event(
                    [item],
                    biz_step="commissioning",
                    action="ADD",
                    disposition="active",
                    at=start,
                    location=MANUFACTURER.location,
                ),
                aggregation_event(
                    pallet, [item], at=start + timedelta(hours=3), location=MANUFACTURER.location
                ),
            ],
        )
    ]
    if not order.shipped:
        return made
    at_sea: Steps = [
        (MANUFACTURER, [_shipping(pallet, start + day, MANUFACTURER, to=CARRIER, document=("po", po))]),
        (CARRIER, [_receiving(pallet, departed, CARRIER.location)]),
        (CARRIER, [_temperature(pallet, departed + 10 * day, Decimal("5.5"))]),
    ]
    if order.excursion:
        at_sea.append((CARRIER, [_temperature(pallet, departed + 18 * day, Decimal("11.5"))]))
    cleared = object_event(
        [pallet], biz_step="inspecting", disposition="conformant", at=arrived, location=CUSTOMS.location
    )
    sold = object_event(
        [item],
        biz_step="retail_selling",
        disposition="retail_sold",
        at=arrived + 5 * day,
        location=RETAILER.location,
    )
    arrival: Steps = [
        (CUSTOMS, [cleared]),
        (CARRIER, [_shipping(pallet, arrived + day, CARRIER, to=RETAILER, document=("bol", bol))]),
        (RETAILER, [_receiving(pallet, arrived + 2 * day, RETAILER.location)]),
        (RETAILER, [sold]),
    ]
    return made + at_sea + arrival


def _shipping(
    pallet: str, at: datetime, by: DemoParty, *, to: DemoParty, document: tuple[str, str]
) -> dict[str, Any]:
    event = object_event(
        [pallet],
        biz_step="shipping",
        disposition="in_transit",
        at=at,
        location=CUSTOMS.location if by is CARRIER else by.location,
        destination=to.party_id,
    )
    kind, number = document
    transaction = f"urn:epcglobal:cbv:bt:{gs1_key(by.party_id)}:{number}"
    return {**event, "bizTransactionList": [{"type": kind, "bizTransaction": transaction}]}


def _receiving(pallet: str, at: datetime, location: str) -> dict[str, Any]:
    return object_event([pallet], biz_step="receiving", disposition="in_progress", at=at, location=location)


def _temperature(pallet: str, at: datetime, celsius: Decimal) -> dict[str, Any]:
    low, high = COLD_CHAIN
    return sensor_event(
        [pallet],
        at=at,
        measurement="Temperature",
        value=float(celsius),
        uom="CEL",
        minimum=float(low),
        maximum=float(high),
        location=CARRIER.location,
    )
