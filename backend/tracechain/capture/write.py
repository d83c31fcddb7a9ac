"""Capture, stage 4: the new events, the identifiers they name, and their records written.

A bulk write per table, each signed record stamped (`tracechain.stamps`) with what capture checked;
and the master data a document's header carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tracechain.capture.accept import NewEvent
from tracechain.capture.prepare import declared_id, event_time
from tracechain.capture.sign import NewRecord
from tracechain.epcis.identifiers import InvalidIdentifier
from tracechain.epcis.mapping import bare_vocabulary, parties_of
from tracechain.epcis.query import canonical_location
from tracechain.stamps import VerificationStamps, stored_json
from tracechain.store.bulk import allocate_ids, insert_rows
from tracechain.store.models import ChainRecord, Event, EventEpc, EventParty, Participant


def store_new_events(
    session: Session,
    capture_id: str,
    participant: Participant,
    context: Any,
    fresh: list[NewEvent],
    records: list[NewRecord],
    stamps: VerificationStamps,
    now: datetime,
) -> None:
    """The new events, the identifiers they name and their records, a bulk write per table (a
    stream per table, not an ORM object per row). Records keep their order, so their ids follow
    the order they were signed in, which the submitter keeps. Each signed record is stamped
    (`tracechain.stamps`): its event's hash id and commitment were derived here from this content,
    its signature made with its signer's key."""
    if not fresh:
        return
    stored_context = None if context is None else stored_json(context)
    contents = {
        event.index: stamps.event_content(
            event.hash_id, stored_json(event.body), stored_context, event.seed, event.declaration
        )
        for event in fresh
    }
    row_ids = dict(
        zip((event.index for event in fresh), allocate_ids(session, Event, len(fresh)), strict=True)
    )
    insert_rows(
        session,
        Event,
        [
            {
                "id": row_ids[event.index],
                "event_id": event.hash_id,
                "declared_id": declared_id(event.body),
                "declaration": event.declaration,
                "capture_id": capture_id,
                "event_type": event.body["type"],
                "biz_step": _bare(event.body.get("bizStep")),
                "disposition": _bare(event.body.get("disposition")),
                "event_time": event_time(event.body),
                "record_time": now,
                "body": event.body,
                "context": context,
                "signer": participant.address,
                "disclosure_seed": event.seed,
            }
            for event in fresh
        ],
    )
    insert_rows(
        session,
        EventEpc,
        [
            {"event_row_id": row_ids[event.index], "epc": epc, "role": role}
            for event in fresh
            for epc, role in event.named
        ],
    )
    insert_rows(
        session,
        EventParty,
        [
            {"event_row_id": row_ids[event.index], "party": party}
            for event in fresh
            for party in parties_of(event.body)
        ],
    )
    insert_rows(
        session,
        ChainRecord,
        [
            {
                **record.row,
                "event_row_id": row_ids[record.index],
                "verification_stamp": None
                if record.signed is None
                else stamps.stamp(contents[record.index], record.signed, record.row["head"]),
            }
            for record in records
        ],
    )


def master_data_in(document: dict[str, Any]) -> list[tuple[str, str, list[Any], list[str]]]:
    """The vocabulary elements of the document's header (`epcisHeader.epcisMasterData`), as
    (vocabulary type, element id, attributes, children), ids canonical so that a location given
    as a Digital Link is the same element as its EPC URN; the last description of an element in
    the document wins."""
    header = document.get("epcisHeader")
    master = header.get("epcisMasterData") if isinstance(header, dict) else None
    vocabularies = master.get("vocabularyList") if isinstance(master, dict) else None
    found: dict[tuple[str, str], tuple[str, str, list[Any], list[str]]] = {}
    for vocabulary in vocabularies if isinstance(vocabularies, list) else ():
        vocabulary_type = vocabulary.get("type") if isinstance(vocabulary, dict) else None
        if not isinstance(vocabulary_type, str) or len(vocabulary_type) > 255:
            continue
        for element in vocabulary.get("vocabularyElementList") or []:
            element_id = element.get("id") if isinstance(element, dict) else None
            if not isinstance(element_id, str):
                continue
            attributes = element.get("attributes") or []
            children = [
                _vocabulary_id(child) for child in element.get("children") or [] if isinstance(child, str)
            ]
            key = (vocabulary_type, _vocabulary_id(element_id))
            if len(key[1]) <= 255:
                found[key] = (*key, attributes, children)
    return list(found.values())


def _vocabulary_id(value: str) -> str:
    try:
        return canonical_location(value)
    except InvalidIdentifier:
        return value.strip()


def _bare(value: str | None) -> str | None:
    """Stored as the bare CBV word, so queries match however the capture spelled it."""
    return bare_vocabulary(value) if value else None


def stored_content(stamps: VerificationStamps, event: Event) -> bytes:
    """The stamps' digest of a stored event's content, as capture stored it."""
    return stamps.event_content(
        event.event_id,
        stored_json(event.body),
        None if event.context is None else stored_json(event.context),
        event.disclosure_seed,
        event.declaration,
    )
