from __future__ import annotations

import copy
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from epcis_event_hash_generator import file_document_loader
from pyld import jsonld

from tracechain.epcis import event_hash
from tracechain.epcis.event_hash import (
    EPCIS_CONTEXT,
    EventHashError,
    RemoteContextRefused,
    event_hash_id,
    event_hash_ids,
)
from tracechain.epcis.identifiers import InvalidIdentifier, digital_link

from .examples import document_of, event, events, example, example_files, load, name

# Examples GS1's reference tool cannot hash: tracechain refuses them too, rather than guess.
REFERENCE_FAILS = {
    "EPCISQueryDocument.jsonld": "a query result: its events are under epcisBody.queryResults",
    "Example-TransactionEvents-2020_07_03y.jsonld": "its inline @context maps terms to objects",
}


def _reference_cli(path: Path) -> subprocess.CompletedProcess[str]:
    """GS1's reference tool itself, as a user runs it: `python -m epcis_event_hash_generator FILE`."""
    return subprocess.run(
        [sys.executable, "-m", "epcis_event_hash_generator", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _printed_hash_ids(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("ni:///")]


@pytest.mark.parametrize("path", example_files(), ids=name)
def test_hash_ids_of_every_example_are_what_the_reference_tool_prints(path: Path) -> None:
    reference = _reference_cli(path)
    if name(path) in REFERENCE_FAILS:
        assert reference.returncode != 0, reference.stdout
        with pytest.raises(EventHashError, match="cannot read this document"):
            event_hash_ids(load(path))
        return
    assert reference.returncode == 0, reference.stderr
    printed = _printed_hash_ids(reference.stdout)
    assert len(printed) == len(events(load(path))) > 0
    assert event_hash_ids(load(path)) == printed


def test_digital_link_example_9_6_4_hashes_as_its_urn_twin() -> None:
    """Its Digital Links name the very lots and product the URN example names."""
    urns = event_hash_ids(example("Example_9.6.4-TransformationEvent.jsonld"))
    links = event_hash_ids(example("digital-link/Example_9.6.4-TransformationEventWithDigitalLink.jsonld"))
    assert links == urns


@pytest.mark.parametrize(
    "relative",
    [
        "digital-link/Example_9.6.1-ObjectEventWithDigitalLink.jsonld",
        "digital-link/Example_9.6.2-ObjectEventWithDigitalLink.jsonld",
        "digital-link/Example_9.6.3-AggregationEventWithDigitalLink.jsonld",
    ],
)
def test_other_digital_link_examples_name_other_items_and_hash_differently(relative: str) -> None:
    """These examples use GTIN 70614141123451, which is not the URN examples' 10614141073464."""
    twin = relative.removeprefix("digital-link/").replace("WithDigitalLink", "")
    assert event_hash_ids(example(relative)) != event_hash_ids(example(twin))


def _as_digital_links(value: Any) -> Any:
    """Every GS1 URN in a document rewritten as its Digital Link."""
    if isinstance(value, dict):
        return {key: _as_digital_links(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_as_digital_links(child) for child in value]
    if isinstance(value, str) and value.startswith("urn:epc:"):
        try:
            return digital_link(value)
        except InvalidIdentifier:
            return value
    return value


@pytest.mark.parametrize(
    "relative",
    [
        "Example_9.6.1-ObjectEvent.jsonld",
        "Example_9.6.2-ObjectEvent.jsonld",
        "Example_9.6.3-AggregationEvent.jsonld",
        "Example_9.6.4-TransformationEvent.jsonld",
        "PersistentDisposition-example.jsonld",
        "Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld",
        "error-declaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
    ],
)
def test_rewriting_every_urn_as_our_digital_link_keeps_every_hash(relative: str) -> None:
    document = example(relative)
    rewritten = _as_digital_links(document)
    assert rewritten != document
    assert event_hash_ids(rewritten) == event_hash_ids(document)


@pytest.mark.parametrize(
    "relative",
    [
        "Example_9.6.1-with-comment.jsonld",
        "error-declaration/Example_9.6.1-ObjectEvent-with-error-declaration.jsonld",
    ],
)
def test_comments_and_error_declarations_leave_the_hash_of_the_event_unchanged(relative: str) -> None:
    assert event_hash_ids(example(relative)) == event_hash_ids(example("Example_9.6.1-ObjectEvent.jsonld"))


def test_one_event_hashes_alone_as_in_its_document() -> None:
    document = example("Example_9.6.1-ObjectEvent.jsonld")
    assert [event_hash_id(each, document["@context"]) for each in events(document)] == event_hash_ids(
        document
    )


def test_hashing_leaves_the_document_unchanged() -> None:
    document = example("Example_9.6.2-ObjectEvent.jsonld")
    before = copy.deepcopy(document)
    event_hash_ids(document)
    assert document == before


# ---------------------------------------------------------------- no network, ever


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to open a connection, recorded and refused."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_hashing_every_example_opens_no_connection(no_network: list[object]) -> None:
    for path in example_files():
        if name(path) not in REFERENCE_FAILS:
            assert event_hash_ids(load(path))
    assert no_network == []


@pytest.mark.parametrize(
    "context",
    [
        ["https://example.com/context.jsonld"],
        [
            EPCIS_CONTEXT,
            {"ex": {"@id": "https://ns.example.com/ex", "@context": "https://example.com/scoped.jsonld"}},
        ],
        [EPCIS_CONTEXT, {"@import": "https://example.com/imported.jsonld"}],
    ],
    ids=["named", "scoped-in-inline", "imported-by-inline"],
)
def test_remote_context_is_refused_without_a_connection(context: list[Any], no_network: list[object]) -> None:
    url = next(value for value in _strings(context) if value.startswith("https://example.com/"))
    document = document_of(
        event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"], **{"ex": "x"}), context=context
    )
    with pytest.raises(RemoteContextRefused) as refused:
        event_hash_ids(document)
    assert refused.value.url == url
    assert isinstance(refused.value, ValueError)
    assert no_network == []


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for child in value.values() for s in _strings(child)]
    if isinstance(value, list):
        return [s for child in value for s in _strings(child)]
    return [value] if isinstance(value, str) else []


def test_reference_loader_would_fetch_an_unknown_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why event_hash replaces the loader: the reference falls back to an HTTP request."""
    fetched: list[str] = []

    def requests_loader(**kwargs: object) -> Any:
        return lambda url, options: fetched.append(url)

    monkeypatch.setattr(jsonld, "requests_document_loader", requests_loader)
    file_document_loader.file_document_loader()("https://example.com/context.jsonld", {})
    assert fetched == ["https://example.com/context.jsonld"]


def test_installed_loader_serves_both_bundled_contexts_and_refuses_others(no_network: list[object]) -> None:
    loader = jsonld.get_document_loader()
    for url in event_hash.BUNDLED_CONTEXTS:
        assert "@context" in loader(url, {})["document"]
    with pytest.raises(RemoteContextRefused):
        loader("https://example.com/context.jsonld", {})
    assert no_network == []


# ---------------------------------------------------------------- the reference's process-wide state


def test_prefix_declared_by_one_document_does_not_leak_into_the_next() -> None:
    extended = event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"], **{"example:myField": "x"})
    declaring = document_of(extended, context=[EPCIS_CONTEXT, {"example": "http://ns.example.com/epcis/"}])
    undeclared = document_of(extended)
    before = event_hash_ids(undeclared)
    assert event_hash_ids(declaring) != before
    assert event_hash_ids(undeclared) == before


def test_fewer_hash_ids_than_events_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference logs and skips an event it cannot hash; the ids would belong to the wrong events."""
    reference = event_hash.epcis_hashes_from_events
    monkeypatch.setattr(event_hash, "epcis_hashes_from_events", lambda events: reference(events)[1:])
    with pytest.raises(EventHashError, match="hashed 1 of 2 events"):
        event_hash_ids(example("Example_9.6.1-ObjectEvent.jsonld"))
