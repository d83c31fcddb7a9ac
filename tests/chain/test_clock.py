"""The chain's clock (`tracechain.chain.clock`): the time the next block carries, on the in-process
chain and on anvil, and moving a development node's clock past a deadline."""

from __future__ import annotations

import time

import pytest

from tracechain.chain.clock import advance_past, chain_time, wait_past
from tracechain.chain.connect import Chain, in_process_chain
from tracechain.errors import ChainError


def test_the_chains_time_is_no_earlier_than_the_latest_block(any_chain: Chain) -> None:
    latest = int(any_chain.w3.eth.get_block("latest")["timestamp"])
    assert chain_time(any_chain) >= latest


def test_a_development_node_moves_its_clock_past_a_deadline_and_the_next_block_is_stamped_after_it(
    anvil_chain: Chain,
) -> None:
    deadline = chain_time(anvil_chain) + 5  # a few seconds: other tests share this session's anvil
    assert advance_past(anvil_chain, deadline)
    assert int(anvil_chain.w3.eth.get_block("latest")["timestamp"]) > deadline
    assert chain_time(anvil_chain) > deadline


def test_the_in_process_chain_is_moved_past_a_deadline_by_its_time_travel() -> None:
    """eth-tester stamps a block with the time its predecessor was mined: idle, its clock never
    moves, so it is moved (a chain of its own: the tests' shared one keeps its time)."""
    chain = in_process_chain()
    deadline = chain_time(chain) + 3600
    assert advance_past(chain, deadline)
    assert int(chain.w3.eth.get_block("latest")["timestamp"]) > deadline
    assert chain_time(chain) > deadline


def test_without_moving_the_clock_a_wait_past_a_far_deadline_gives_up_naming_the_chains_time(
    tester_chain: Chain,
) -> None:
    started = time.monotonic()
    with pytest.raises(ChainError, match="the chain's clock"):
        wait_past(tester_chain, chain_time(tester_chain) + 3600, advance=False, timeout=0.3, poll=0.05)
    assert time.monotonic() - started < 5
