"""What orders settle in: the escrow and token addresses, a participant's balance, and on a
development chain the demo stablecoin's faucet."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tracechain.api.deps import ParticipantDep, ReaderDep, ServicesDep, SettlementDep
from tracechain.api.problems import Problem
from tracechain.chain.clock import DEADLINE_MARGIN_S, as_datetime, chain_time
from tracechain.chain.transactions import is_dev_chain
from tracechain.settlement import Settlement
from tracechain.store.models import Participant

router = APIRouter(prefix="/settlement", tags=["settlement"])

FAUCET_LIMIT = Decimal(1_000_000)
"""DemoStablecoin's own cap per call."""


class FaucetRequest(BaseModel):
    amount: Decimal = Field(gt=0, le=FAUCET_LIMIT, description="dUSD to mint to the caller")


@router.get("")
def settlement_contracts(settlement: SettlementDep) -> dict[str, Any]:
    """Where orders live: for wallets that call the escrow themselves, and for auditors; and the
    chain's time, which order deadlines are checked against (it may run ahead of this machine's
    clock), with the earliest deadline a new order may have."""
    now = chain_time(settlement.chain)
    return {
        "chainId": settlement.chain.chain_id,
        "escrow": settlement.escrow.address,
        "registry": settlement.escrow.registry_address(),  # the one it reads
        "token": {
            "address": settlement.token.address,
            "symbol": settlement.symbol,
            "decimals": settlement.decimals,
        },
        "chainTime": as_datetime(now).isoformat(),
        "earliestDeadline": as_datetime(now + DEADLINE_MARGIN_S).isoformat(),
    }


@router.get("/balance")
def balance(participant: ReaderDep, settlement: SettlementDep) -> dict[str, Any]:
    """The caller's balance of the settlement token."""
    return _balance(participant, settlement)


@router.post("/faucet")
def faucet(
    body: FaucetRequest, participant: ParticipantDep, settlement: SettlementDep, services: ServicesDep
) -> dict[str, Any]:
    """Development chains with the demo stablecoin only: mint dUSD to the caller."""
    if services.settings.settlement_token or not is_dev_chain(settlement.chain):
        raise Problem(
            404, "Not Found", "the faucet exists only for the demo stablecoin on a development chain"
        )
    try:
        units = settlement.to_units(body.amount)
    except ValueError as exc:
        raise Problem(422, "Invalid request", f"amount: {exc}") from exc
    settlement.faucet(participant, units)
    return _balance(participant, settlement)


def _balance(participant: Participant, settlement: Settlement) -> dict[str, Any]:
    held = settlement.from_units(settlement.balance_of(participant))
    return {"address": participant.address, "balance": held, "symbol": settlement.symbol}
