"""Milliseconds per event of the native CBV 2.0 event hash and of GS1's reference implementation.

A printout for people, not a test: `.venv/bin/python -m tests.epcis.time_event_hash`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from tracechain.epcis.event_hash import event_hash_ids

from .examples import capture_documents, document_of, event, load, name
from .reference import ReferenceCannotHash, reference_hash_ids


def _ms_per_event(hash_all: Callable[[], Any], events: int, seconds: float = 2.0) -> float:
    hash_all()  # warm caches and imports
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        hash_all()
        runs += 1
    return (time.perf_counter() - started) / runs / events * 1000


def main() -> None:
    examples = []
    for path in capture_documents():
        try:
            reference_hash_ids(load(path))
            examples.append(load(path))
        except ReferenceCannotHash:
            print(f"(left out, the reference cannot hash it: {name(path)})")
    example_events = sum(len(document["epcisBody"]["eventList"]) for document in examples)
    capture = document_of(
        *(
            event(
                eventTime=f"2024-05-01T10:00:{i % 60:02d}.000+08:00",
                epcList=[f"urn:epc:id:sgtin:0614141.107346.{i}"],
                bizStep="shipping",
                disposition="in_transit",
                readPoint={"id": "urn:epc:id:sgln:0614141.00777.0"},
                bizLocation={"id": "urn:epc:id:sgln:0614141.00888.0"},
            )
            for i in range(100)
        )
    )
    table = Table(title=f"CBV 2.0 event hash, ms per event ({os.cpu_count()} cores)")
    table.add_column("documents")
    table.add_column("native", justify="right")
    table.add_column("reference", justify="right")
    for label, documents, events in [
        (f"GS1 examples ({example_events} events)", examples, example_events),
        ("a 100-event capture of plain ObjectEvents", [capture], 100),
    ]:
        native = _ms_per_event(lambda documents=documents: [event_hash_ids(d) for d in documents], events)
        reference = _ms_per_event(
            lambda documents=documents: [reference_hash_ids(d) for d in documents], events
        )
        table.add_row(label, f"{native:.3f}", f"{reference:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
