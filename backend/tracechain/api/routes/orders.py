"""Escrow orders: a buyer's money held by TradeEscrow and paid to the seller as the trace shows the
goods moving. A participant sees and acts on only the orders it is party to (buyer, seller, arbiter).

The buyer proposes an order; the seller accepts it (its terms, arbiter and dispute window
included) before the buyer can fund it. Every act is sent to the chain with the acting party's own
key and answers once it is mined, with the order as the chain now shows it. Releases, penalties and
the end of a dispute whose window has passed also happen by themselves: the settler worker sends
them as soon as they are due (see tracechain.settlement).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Response, status
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from tracechain.api.deps import ParticipantDep, ReaderDep, SessionDep, SettlementDep
from tracechain.api.problems import Problem
from tracechain.api.schemas import OrderPublic
from tracechain.chain.clock import DEADLINE_MARGIN_S, as_datetime, chain_time
from tracechain.chain.escrow import BPS, MAX_DISPUTE_WINDOW, MIN_DISPUTE_WINDOW, OrderTerms
from tracechain.chain.trace_event import ZERO_ADDRESS, subject_id
from tracechain.epcis.identifiers import canonical_epc
from tracechain.settlement import (
    MILESTONE_NAMES,
    PENALTY_NAMES,
    OwnWalletParticipant,
    Settlement,
    percent,
)
from tracechain.store import queries
from tracechain.store.models import Order, Participant

router = APIRouter(prefix="/orders", tags=["orders"])

Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
MilestoneName = Literal["shipped", "customsCleared", "received"]
PenaltyName = Literal["excursion", "recall"]
_MILESTONES = {name: milestone for milestone, name in MILESTONE_NAMES.items()}
_PENALTIES = {name: penalty for penalty, name in PENALTY_NAMES.items()}
T = TypeVar("T")
DAY = 86_400
DEFAULT_DISPUTE_DAYS = Decimal(14)
"""The dispute window an order with an arbiter gets unless it names one."""


class Milestones(BaseModel):
    """Shares of the amount, in percent, paid when the trace shows each condition; they add up to 100.
    FOB-like: shipped 30, received 70. DAP-like: received 100."""

    shipped: Percent = Decimal(0)
    customs_cleared: Percent = Field(Decimal(0), alias="customsCleared")
    received: Percent = Decimal(0)

    @model_validator(mode="after")
    def _whole(self) -> Milestones:
        total = self.shipped + self.customs_cleared + self.received
        if total != 100:
            raise ValueError(f"milestone shares must add up to 100 percent; these add up to {total}")
        return self

    def bps(self) -> tuple[int, int, int]:
        return (_bps(self.shipped), _bps(self.customs_cleared), _bps(self.received))


class Penalties(BaseModel):
    """Shares of the amount, in percent, refunded to the buyer (out of what is still unreleased) once
    the shipment shows each: a recorded temperature excursion, a recall."""

    excursion: Percent = Decimal(0)
    recall: Percent = Decimal(0)


class OrderCreate(BaseModel):
    seller: str = Field(description="The seller's participant id; it is paid the milestones")
    shipment: str = Field(description="The shipment the order pays for: its SSCC (URN or Digital Link)")
    amount: Decimal = Field(gt=0, description='In the settlement token, e.g. "12500.00"')
    milestones: Milestones
    deadline: AwareDatetime = Field(description="Delivery deadline; after it the buyer may reclaim")
    arbiter: str | None = Field(None, description="Participant id of who resolves disputes (optional)")
    dispute_days: Decimal | None = Field(
        None,
        alias="disputeDays",
        ge=0,
        le=365,
        decimal_places=4,
        description="With an arbiter: how long a dispute may freeze the order before it ends by itself "
        "and the order's rules resume (1 hour to 365 days; default 14). Without one: 0 or absent",
    )
    penalties: Penalties = Field(default_factory=Penalties)

    def dispute_window(self) -> int:
        """The window in seconds, as the escrow takes it."""
        if self.arbiter is None:
            if self.dispute_days:
                raise Problem(422, "Invalid order", "disputeDays: a dispute window needs an arbiter")
            return 0
        seconds = int((DEFAULT_DISPUTE_DAYS if self.dispute_days is None else self.dispute_days) * DAY)
        if not MIN_DISPUTE_WINDOW <= seconds <= MAX_DISPUTE_WINDOW:
            raise Problem(
                422, "Invalid order", "disputeDays: from one hour (0.0417) to 365 days with an arbiter"
            )
        return seconds


class FundingCreate(BaseModel):
    method: Literal["permit", "approve"] = Field(
        "permit",
        description="permit: one transaction with an EIP-2612 signature; approve: approve, then fund",
    )


class ReleaseCreate(BaseModel):
    milestone: MilestoneName


class PenaltyCreate(BaseModel):
    penalty: PenaltyName


class ResolutionCreate(BaseModel):
    to_seller: Percent = Field(alias="toSeller", description="Share of the remainder paid to the seller")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderPublic)
def create_order(
    body: OrderCreate,
    buyer: ParticipantDep,
    settlement: SettlementDep,
    session: SessionDep,
    response: Response,
) -> dict[str, Any]:
    """The caller, as buyer, proposes an order; it waits for the seller's acceptance, then for the
    buyer's funds."""
    seller = _participant(session, body.seller, "seller")
    arbiter = _participant(session, body.arbiter, "arbiter") if body.arbiter else None
    if seller.id == buyer.id:
        raise Problem(422, "Invalid order", "seller: a participant cannot sell to itself")
    if arbiter is not None and arbiter.id in (buyer.id, seller.id):
        raise Problem(422, "Invalid order", "arbiter: must be neither the buyer nor the seller")
    _check_deadline(body.deadline, settlement)
    dispute_window = body.dispute_window()
    try:
        units = settlement.to_units(body.amount)
    except ValueError as exc:
        raise Problem(422, "Invalid order", f"amount: {exc}") from exc
    shipment = canonical_epc(body.shipment)
    terms = OrderTerms(
        seller=seller.address,
        token=settlement.token.address,
        amount=units,
        shipment=subject_id(shipment),
        receiver=buyer.address,
        milestone_bps=body.milestones.bps(),
        deadline=int(body.deadline.timestamp()),
        arbiter=arbiter.address if arbiter else ZERO_ADDRESS,
        dispute_window=dispute_window,
        excursion_penalty_bps=_bps(body.penalties.excursion),
        recall_penalty_bps=_bps(body.penalties.recall),
    )
    row = _acting(lambda: settlement.create(session, buyer, seller, arbiter, shipment, terms))
    response.headers["Location"] = f"/orders/{row.order_id}"
    return public_order(session, settlement, row)


@router.get("", response_model=list[OrderPublic])
def list_orders(
    participant: ReaderDep, settlement: SettlementDep, session: SessionDep
) -> list[dict[str, Any]]:
    """The caller's orders (as buyer, seller or arbiter), newest first, as last read from the chain."""
    return [
        public_order(session, settlement, row) for row in queries.orders_party_to(session, participant.id)
    ]


@router.get("/{order_id}", response_model=OrderPublic)
def get_order(
    order_id: int, participant: ReaderDep, settlement: SettlementDep, session: SessionDep
) -> dict[str, Any]:
    """One of the caller's orders, read from the chain now."""
    row = _order(session, settlement, order_id, participant)
    settlement.refresh(row)
    return public_order(session, settlement, row)


@router.post("/{order_id}/acceptance", response_model=OrderPublic)
def accept_order(
    order_id: int, participant: ParticipantDep, settlement: SettlementDep, session: SessionDep
) -> dict[str, Any]:
    """The seller accepts the order's terms, its arbiter and dispute window included; then the buyer
    may fund it."""
    row = _order(session, settlement, order_id, participant, "seller")
    _acting(lambda: settlement.accept(row, participant))
    return public_order(session, settlement, row)


@router.post("/{order_id}/funding", response_model=OrderPublic)
def fund_order(
    order_id: int,
    participant: ParticipantDep,
    settlement: SettlementDep,
    session: SessionDep,
    body: FundingCreate | None = None,
) -> dict[str, Any]:
    """The buyer pays the amount into an order the seller accepted (by permit unless asked otherwise)."""
    row = _order(session, settlement, order_id, participant, "buyer")
    permit = body is None or body.method == "permit"
    _acting(lambda: settlement.fund(row, participant, permit=permit))
    return public_order(session, settlement, row)


@router.post("/{order_id}/releases", response_model=OrderPublic)
def release_milestone(
    order_id: int,
    body: ReleaseCreate,
    participant: ParticipantDep,
    settlement: SettlementDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Pay a milestone the registry shows reached (the settler does this by itself too)."""
    row = _order(session, settlement, order_id, participant)
    _acting(lambda: settlement.release(row, participant, _MILESTONES[body.milestone]))
    return public_order(session, settlement, row)


@router.post("/{order_id}/penalties", response_model=OrderPublic)
def apply_penalty(
    order_id: int,
    body: PenaltyCreate,
    participant: ParticipantDep,
    settlement: SettlementDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Refund a penalty the registry shows triggered (the settler does this by itself too)."""
    row = _order(session, settlement, order_id, participant)
    _acting(lambda: settlement.apply_penalty(row, participant, _PENALTIES[body.penalty]))
    return public_order(session, settlement, row)


@router.post("/{order_id}/reclaim", response_model=OrderPublic)
def reclaim(
    order_id: int, participant: ParticipantDep, settlement: SettlementDep, session: SessionDep
) -> dict[str, Any]:
    """After the deadline, the buyer takes back what was not released, unless the receiver received the
    shipment or a shipment of it to the receiver is pending."""
    row = _order(session, settlement, order_id, participant, "buyer")
    _acting(lambda: settlement.reclaim(row, participant))
    return public_order(session, settlement, row)


@router.post("/{order_id}/dispute", response_model=OrderPublic)
def open_dispute(
    order_id: int, participant: ParticipantDep, settlement: SettlementDep, session: SessionDep
) -> dict[str, Any]:
    """Buyer or seller freezes the order (once) until its arbiter resolves it or the agreed dispute
    window ends; then the order's rules resume."""
    row = _order(session, settlement, order_id, participant, "buyer", "seller")
    _acting(lambda: settlement.open_dispute(row, participant))
    return public_order(session, settlement, row)


@router.post("/{order_id}/resolution", response_model=OrderPublic)
def resolve_dispute(
    order_id: int,
    body: ResolutionCreate,
    participant: ParticipantDep,
    settlement: SettlementDep,
    session: SessionDep,
) -> dict[str, Any]:
    """The arbiter splits what is left: `toSeller` percent to the seller, the rest back to the buyer,
    before the dispute's window ends."""
    row = _order(session, settlement, order_id, participant, "arbiter")
    _acting(lambda: settlement.resolve(row, participant, _bps(body.to_seller)))
    return public_order(session, settlement, row)


# -------------------------------------------------------------------- helpers


def public_order(session: SessionDep, settlement: Settlement, row: Order) -> dict[str, Any]:
    """An order as the API shows it to its parties: amounts in token units, shares in percent."""
    snap = row.settlement
    parties = queries.participants_by_id(
        session, [party for party in (row.buyer_id, row.seller_id, row.arbiter_id) if party is not None]
    )
    return {
        "orderId": row.order_id,
        "escrow": row.escrow,
        "shipment": row.shipment_epc,
        "buyer": _party(parties[row.buyer_id]),
        "seller": _party(parties[row.seller_id]),
        "arbiter": _party(parties[row.arbiter_id]) if row.arbiter_id else None,
        "token": {"address": row.token, "symbol": settlement.symbol, "decimals": settlement.decimals},
        "amount": settlement.from_units(int(row.amount)),
        "milestones": {name: percent(bps) for name, bps in snap["milestoneBps"].items()},
        "penalties": {name: percent(bps) for name, bps in snap["penaltyBps"].items()},
        "deadline": datetime.fromtimestamp(snap["deadline"], UTC).isoformat(),
        "disputeDays": snap.get("disputeWindow", 0) / DAY,
        "disputeEndsAt": (
            datetime.fromtimestamp(snap["disputeEndsAt"], UTC).isoformat()
            if snap.get("disputeEndsAt")
            else None
        ),
        "state": row.state,
        "released": snap["released"],
        "penaltiesApplied": snap["penaltiesApplied"],
        "paid": settlement.from_units(int(snap["paid"])),
        "refunded": settlement.from_units(int(snap["refunded"])),
        "unreleased": settlement.from_units(int(snap["unreleased"])),
        "createdTx": row.created_tx,
        "updatedAt": row.updated_at.isoformat(),
    }


def _party(participant: Participant) -> dict[str, str]:
    return {"id": participant.id, "name": participant.name, "address": participant.address}


def _participant(session: SessionDep, participant_id: str, field: str) -> Participant:
    found = queries.participant(session, participant_id)
    if found is None:
        raise Problem(422, "Invalid order", f"{field}: no participant has id {participant_id!r}")
    return found


def _order(
    session: SessionDep, settlement: Settlement, order_id: int, participant: Participant, *roles: str
) -> Order:
    """The caller's order, if it is party to it in one of `roles` (any role when none is named)."""
    row = queries.order_in_escrow(session, settlement.escrow.address, order_id)
    held = (
        {
            role
            for role, party_id in (
                ("buyer", row.buyer_id),
                ("seller", row.seller_id),
                ("arbiter", row.arbiter_id),
            )
            if party_id == participant.id
        }
        if row
        else set()
    )
    if row is None or not held:  # someone else's order is as good as none: nothing leaks
        raise Problem(404, "Not Found", f"you are party to no order {order_id}")
    if roles and not held.intersection(roles):
        raise Problem(
            403,
            "Forbidden",
            f"only the order's {' or '.join(roles)} may do this; you are its {', '.join(sorted(held))}",
        )
    return row


def _check_deadline(deadline: datetime, settlement: Settlement) -> None:
    """The escrow checks a deadline against the time of the block that includes the order, which
    may run ahead of this machine's clock: refuse here, with the chain's time named, a deadline that
    block could reach, rather than send a transaction that reverts."""
    now = chain_time(settlement.chain)
    if deadline.timestamp() < now + DEADLINE_MARGIN_S:
        chain_now, earliest = as_datetime(now).isoformat(), as_datetime(now + DEADLINE_MARGIN_S).isoformat()
        raise Problem(
            422,
            "Invalid order",
            f"deadline: {deadline.isoformat()} is not {DEADLINE_MARGIN_S} s after the chain's time "
            f"{chain_now} (which the escrow checks deadlines against); the earliest deadline now is "
            f"{earliest}",
            chainTime=chain_now,
            earliestDeadline=earliest,
        )


def _acting(act: Callable[[], T]) -> T:
    try:
        return act()
    except OwnWalletParticipant as exc:
        raise Problem(409, "Own wallet", str(exc)) from exc


def _bps(percent: Decimal) -> int:
    return int(percent * BPS / 100)
