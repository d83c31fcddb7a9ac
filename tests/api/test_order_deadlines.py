"""Order deadlines are checked against the chain's clock, which the escrow checks them against, not
this machine's: on a node whose clock runs ahead, a deadline between the two is refused with a 422
naming the chain's time (not sent to revert as a 409), and one just past the earliest it names is
accepted."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web3.types import RPCEndpoint

from tracechain.api.app import create_app
from tracechain.chain.clock import DEADLINE_MARGIN_S, chain_time
from tracechain.chain.connect import Chain, rpc_chain
from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode, find_anvil_binary
from tracechain.config import ChainMode, Settings

from ..conftest import free_port, temporary_database
from .conftest import Api, _cast, service_settings
from .test_orders import order_terms

AHEAD_S = 600
"""How far the node's clock is moved ahead of this machine's."""


@pytest.fixture(scope="module")
def chain_ahead() -> Iterator[Chain]:
    """An anvil node of its own whose clock runs AHEAD_S ahead of the wall clock (as a burst of
    blocks or `evm_increaseTime` leaves a development node), kept from the session's shared one."""
    with AnvilNode(find_anvil_binary(Settings()), port=free_port()) as node:
        chain = rpc_chain(node.url, ANVIL_DEV_KEY)
        chain.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [AHEAD_S])
        chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        yield chain


@pytest.fixture(params=["sqlite", "postgresql"])
def api_ahead(request: pytest.FixtureRequest, tmp_path: Path, chain_ahead: Chain) -> Iterator[Api]:
    with contextlib.ExitStack() as stack:
        overrides: dict[str, Any] = {"chain": ChainMode.RPC, "rpc_url": "http://unused"}
        if request.param == "postgresql":
            overrides["database_url"] = stack.enter_context(temporary_database())
        app = create_app(service_settings(tmp_path, **overrides), chain=chain_ahead, run_workers=False)
        yield Api(stack.enter_context(TestClient(app)))


def test_a_deadline_the_chain_has_passed_is_a_422_naming_the_chains_time_and_one_after_it_is_accepted(
    api_ahead: Api, chain_ahead: Chain
) -> None:
    parties = _cast(api_ahead)
    buyer, seller = parties["retailer"], parties["manufacturer"]
    headers = api_ahead.as_participant(buyer)
    clock = api_ahead.client.get("/settlement").json()
    chain_now = datetime.fromisoformat(clock["chainTime"])
    assert abs(chain_now.timestamp() - chain_time(chain_ahead)) <= 2
    assert chain_now.timestamp() >= time.time() + AHEAD_S - 5  # the node's clock, not this machine's

    between = datetime.now(UTC) + timedelta(seconds=AHEAD_S // 2)  # future here, past on the chain
    refused = api_ahead.client.post(
        "/orders", json=order_terms(seller, deadline=between.isoformat()), headers=headers
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["title"] == "Invalid order"
    assert "chain's time" in problem["detail"] and problem["chainTime"] in problem["detail"]
    assert abs(datetime.fromisoformat(problem["chainTime"]).timestamp() - chain_now.timestamp()) <= 5
    earliest = datetime.fromisoformat(problem["earliestDeadline"])
    assert earliest - datetime.fromisoformat(problem["chainTime"]) == timedelta(seconds=DEADLINE_MARGIN_S)
    assert api_ahead.client.get("/orders", headers=headers).json() == []

    just_after = earliest + timedelta(seconds=5)
    created = api_ahead.client.post(
        "/orders", json=order_terms(seller, deadline=just_after.isoformat()), headers=headers
    )
    assert created.status_code == 201, created.text
    assert datetime.fromisoformat(created.json()["deadline"]) == just_after.replace(microsecond=0)
