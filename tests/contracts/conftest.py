"""Subjects that most TraceRegistry tests start from, on top of the participants in tests/conftest.py."""

from __future__ import annotations

import pytest

from tracechain.chain.registry import TraceRegistry
from tracechain.chain.trace_event import Kind

from ..factories import Actor, pack, record, sgtin, sscc


@pytest.fixture
def item(registry: TraceRegistry, manufacturer: Actor) -> bytes:
    """An item the manufacturer commissioned and still holds, packed in nothing."""
    subject = sgtin(1)
    record(registry, manufacturer, Kind.COMMISSION, subject)
    return subject


@pytest.fixture
def case() -> bytes:
    """The logistic unit `packed_item` is packed into; it exists once `packed_item` does."""
    return sscc(100)


@pytest.fixture
def packed_item(registry: TraceRegistry, manufacturer: Actor, case: bytes) -> bytes:
    """An item the manufacturer commissioned and packed into `case`, which the packing created."""
    subject = sgtin(2)
    record(registry, manufacturer, Kind.COMMISSION, subject)
    pack(registry, manufacturer, case, subject)
    return subject
