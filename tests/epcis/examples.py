"""The GS1 EPCIS 2.0 example documents copied into tests/data/epcis, and small event builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "epcis"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def example_files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.jsonld"))


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def name(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


def capture_documents() -> list[Path]:
    """Examples that are capture documents; EPCISQueryDocument.jsonld is a query result."""
    return [path for path in example_files() if load(path)["type"] == "EPCISDocument"]


def example(relative: str) -> dict[str, Any]:
    return load(EXAMPLES / relative)


def events(document: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document["epcisBody"]["eventList"]
    return found


def document_of(*events: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {
        "@context": context if context is not None else [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T10:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def event(kind: str = "ObjectEvent", **fields: Any) -> dict[str, Any]:
    built: dict[str, Any] = {
        "type": kind,
        "eventTime": "2024-05-01T10:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
    }
    if kind in ("ObjectEvent", "AggregationEvent", "TransactionEvent", "AssociationEvent"):
        built["action"] = "OBSERVE"
    built.update(fields)
    return built
