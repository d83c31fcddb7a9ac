"""An EPCIS JSON document read from a file a piece at a time, so that a 100 MB document costs the
memory of a few hundred events, not of the document.

Two passes over the file (`ijson`, on the yajl C parser): the outline first, i.e. everything but
the events (the `@context`, the header with its master data, the body's other members), which may
come before or after the event list, since JSON objects are unordered and each event hashes with
the document's context; and the number of events. Then the events, in chunks, in document order.
The outline pass also measures how deep the document nests, on the parser's own events: what is
built from the document later (schema check, hash) recurses once per level.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

import ijson

from tracechain.errors import TracechainError

EVENTS: Final = "epcisBody.eventList.item"
"""Where each event is, in ijson's prefix notation."""


_NOT_A_VALUE: Final = frozenset(("end_map", "end_array", "map_key"))
"""Parser events that do not start a value (an event, at the event list's level)."""


class UnreadableDocument(TracechainError):
    """The file is not JSON, or not an object, or nests deeper than allowed."""

    def __init__(self, reason: str, too_deep: bool = False) -> None:
        self.too_deep = too_deep
        super().__init__(reason)


@dataclass(frozen=True)
class Outline:
    shell: dict[str, Any]
    """The document without its events: `epcisBody.eventList` is an empty list if it had one."""
    event_count: int
    depth: int


def read_outline(file: IO[bytes], max_depth: int) -> Outline:
    """Everything of the document but its events (UnreadableDocument if it is not a JSON object or
    nests deeper than `max_depth`). Reads the file from the start to the end."""
    file.seek(0)
    builder = ijson.ObjectBuilder()
    events = depth = deepest = 0
    try:
        for prefix, kind, value in ijson.parse(file, use_float=True):
            if kind in ("start_map", "start_array"):
                depth += 1
                if depth > max_depth:
                    raise UnreadableDocument(f"the document nests deeper than {max_depth} levels", True)
                deepest = max(deepest, depth)
            elif kind in ("end_map", "end_array"):
                depth -= 1
            if prefix.startswith(EVENTS):
                if prefix == EVENTS and kind not in _NOT_A_VALUE:
                    events += 1
                continue
            builder.event(kind, value)
    except ijson.JSONError as exc:
        raise UnreadableDocument(f"the body is not JSON: {exc}") from exc
    shell = getattr(builder, "value", None)
    if not isinstance(shell, dict):
        raise UnreadableDocument("an EPCIS document is a JSON object")
    return Outline(shell, events, deepest)


def event_chunks(file: IO[bytes], size: int) -> Iterator[list[Any]]:
    """The document's events, `size` at a time, in document order; only the chunk being handed out
    is held (the parser reads ahead a buffer of the file, not of events)."""
    file.seek(0)
    chunk: list[Any] = []
    try:
        for event in ijson.items(file, EVENTS, use_float=True):
            chunk.append(event)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except ijson.JSONError as exc:  # read whole by the outline already: the file changed
        raise UnreadableDocument(f"the body is not JSON: {exc}") from exc
    if chunk:
        yield chunk
