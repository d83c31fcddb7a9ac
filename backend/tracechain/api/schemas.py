"""Response bodies the API documents (in /docs) and checks it answers with: camelCase on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class OrderParty(_Body):
    id: str
    name: str
    address: str


class OrderToken(_Body):
    address: str
    symbol: str
    decimals: int


class OrderPublic(_Body):
    """An order as its parties see it: amounts in token units (decimal strings), shares in percent,
    as last read from TradeEscrow."""

    order_id: int
    escrow: str
    shipment: str
    buyer: OrderParty
    seller: OrderParty
    arbiter: OrderParty | None
    token: OrderToken
    amount: str
    milestones: dict[str, float]
    """Percent of the amount released on each milestone: shipped, customsCleared, received."""
    penalties: dict[str, float]
    """Percent of the amount refunded on each penalty: excursion, recall."""
    deadline: str
    dispute_days: float
    dispute_ends_at: str | None
    state: str
    released: dict[str, bool]
    penalties_applied: dict[str, bool]
    paid: str
    refunded: str
    unreleased: str
    created_tx: str | None
    updated_at: str
