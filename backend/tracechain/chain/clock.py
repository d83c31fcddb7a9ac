"""The chain's clock: the time a transaction sent now is checked against (`block.timestamp`).

It is not this machine's clock. A development node stamps each automined block at least a second
after the last, so a burst of transactions runs it seconds ahead of the wall clock, and
`evm_increaseTime` moves it further; a real chain's next block comes up to a slot later. Deadlines
are therefore checked against the pending block's timestamp, with DEADLINE_MARGIN_S to spare.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from web3.types import RPCEndpoint

from tracechain.chain.connect import Chain
from tracechain.config import ChainMode
from tracechain.errors import ChainError

DEADLINE_MARGIN_S = 60
"""How far past the chain's time a new deadline must lie: five of Ethereum's 12-second slots, for the
transaction that sets it to wait for inclusion. The contract reverts a deadline the block that
includes it has reached; this margin turns that into an answer before anything is sent."""


def chain_time(chain: Chain) -> int:
    """The earliest timestamp the next block can carry: the pending block's, where the node builds
    one; otherwise the later of the latest block's plus one second and this machine's clock (a node
    without a pending block stamps its next block no earlier than either)."""
    pending = _block(chain, "pending")
    if pending is not None and pending.get("timestamp") is not None:
        return _integer(pending["timestamp"])
    latest = _block(chain, "latest")
    if latest is None:
        raise ChainError("the node answers no latest block")
    return max(_integer(latest["timestamp"]) + 1, int(time.time()))


def earliest_deadline(chain: Chain) -> int:
    """The earliest deadline a new order may have (seconds since the epoch)."""
    return chain_time(chain) + DEADLINE_MARGIN_S


def advance_past(chain: Chain, timestamp: int) -> bool:
    """On a development node, move the chain's clock past `timestamp` and mine a block there, so a
    wait for it ends now. False where the node does not let its clock be moved (a real chain):
    then only waiting gets there.

    The in-process eth-tester stamps a block with the time its predecessor was mined, so its clock
    moves only with blocks, and an idle one never passes a deadline: it is moved by its own
    `time_travel`, which mines a block there."""
    if chain.mode is ChainMode.TESTER:
        if chain_time(chain) <= timestamp:
            # It stamps the block it mines there a second before the time travelled to.
            chain.w3.manager.request_blocking(RPCEndpoint("testing_timeTravel"), [timestamp + 2])
        return True
    if not chain.speaks_raw_json_rpc:
        return False
    behind = timestamp + 1 - chain_time(chain)
    if behind > 0:
        answer = chain.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [behind])
        if "error" in answer:
            return False
    answer = chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    return "error" not in answer


def wait_past(chain: Chain, timestamp: int, *, advance: bool, timeout: float, poll: float = 0.5) -> None:
    """Return once a transaction sent now is mined after `timestamp`. With `advance` (a development
    chain, whose clock nobody else relies on) by moving the node's clock where it lets us; otherwise
    by waiting for the chain's clock. ChainError after `timeout`."""
    if advance and advance_past(chain, timestamp):
        return
    give_up = time.monotonic() + timeout
    while (now := chain_time(chain)) <= timestamp:
        if time.monotonic() > give_up:
            raise ChainError(f"the chain's clock ({now}) did not pass {timestamp} within {timeout:.0f} s")
        time.sleep(min(poll, max(timestamp + 1 - now, 0.05)))


def as_datetime(timestamp: int) -> datetime:
    """A block timestamp as the API writes times."""
    return datetime.fromtimestamp(timestamp, UTC)


def _block(chain: Chain, tag: str) -> dict[str, Any] | None:
    if chain.speaks_raw_json_rpc:
        answer = chain.w3.provider.make_request(RPCEndpoint("eth_getBlockByNumber"), [tag, False])
        result: dict[str, Any] | None = answer.get("result")  # an error: no pending block here
        return result
    try:
        return dict(chain.w3.eth.get_block(tag))  # type: ignore[arg-type]  # a block tag
    except Exception:  # eth-tester without that block
        return None


def _integer(value: int | str) -> int:
    """A JSON-RPC quantity: hex in raw answers, an int through web3's formatters."""
    return int(value, 16) if isinstance(value, str) else int(value)
