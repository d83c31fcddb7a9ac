"""Limits a capture body is held to before any work is spent on it: its size, read as it arrives,
and how deep its JSON nests, checked before it is parsed.

Python's JSON parser recurses once per level and stops at the interpreter's recursion limit, which
py-evm and py_ecc raise to 100,000 when they are imported: far past what the C stack holds, so a
600 KB body of nested brackets crashed the whole process, workers included. The depth is therefore
measured on the raw bytes, without recursion, and a document deeper than any EPCIS document nests
is refused before the parser sees it.
"""

from __future__ import annotations

import json
import re
import tempfile
from typing import IO, Any, Final

from starlette.requests import Request

from tracechain.capture import MAX_JSON_DEPTH, CaptureLimitExceeded, InvalidJson

_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_INNERMOST_PAIR: Final = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))


def nests_deeper_than(body: bytes, depth: int) -> bool:
    """Whether the JSON text nests arrays and objects more than `depth` levels deep.

    Strings go first (brackets inside them do not count), then everything but brackets; each pass
    of the loop removes the innermost empty pairs, so whatever is left after `depth` passes was
    nested deeper. Text that stops closing its brackets is measured by the ones it leaves open.
    Every step is a regular expression or a byte translation, run in C: about a tenth of a second
    per megabyte of dense JSON, half what parsing it costs.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    for passes in range(depth):
        if not brackets:
            return False
        reduced = _INNERMOST_PAIR.sub(b"", brackets)
        if reduced == brackets:
            # No pair closes any more: the text is not JSON (cut off, or brackets crossed). The
            # parser refuses it, after recursing into every bracket still open.
            opened = brackets.count(b"[") + brackets.count(b"{")
            return passes + opened > depth
        brackets = reduced
    return bool(brackets)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request's body, read no further than `max_bytes` (CaptureLimitExceeded beyond)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise CaptureLimitExceeded("a capture body, in bytes", max_bytes, int(declared), _SIZE_SETTING)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise CaptureLimitExceeded("a capture body, in bytes", max_bytes, None, _SIZE_SETTING)
        chunks.append(chunk)
    return b"".join(chunks)


async def spool_body(request: Request, max_bytes: int, in_memory_bytes: int) -> bytes | IO[bytes]:
    """The request's body, read no further than `max_bytes` (CaptureLimitExceeded beyond): as
    bytes if it has at most `in_memory_bytes`, else in a temporary file (deleted when closed), so
    that a 100 MB document is never held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise CaptureLimitExceeded("a capture body, in bytes", max_bytes, int(declared), _SIZE_SETTING)
    chunks: list[bytes] = []
    size = 0
    spool: IO[bytes] | None = None
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise CaptureLimitExceeded("a capture body, in bytes", max_bytes, None, _SIZE_SETTING)
            if spool is None and size <= in_memory_bytes:
                chunks.append(chunk)
                continue
            if spool is None:
                spool = tempfile.TemporaryFile(prefix="tracechain-capture-")  # noqa: SIM115 (handed on)
                spool.writelines(chunks)
                chunks.clear()
            spool.write(chunk)  # the event loop waits on the disk: page cache, milliseconds per MB
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    if spool is None:
        return b"".join(chunks)
    spool.flush()
    return spool


def parse_json(body: bytes) -> Any:
    """The body's JSON, refused (CaptureLimitExceeded) if it nests deeper than MAX_JSON_DEPTH, or
    InvalidJson. CPU work (half a second for 4 MB): call it off the event loop."""
    if nests_deeper_than(body, MAX_JSON_DEPTH):
        raise CaptureLimitExceeded("how deep a document nests", MAX_JSON_DEPTH, None, None)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"the body is not JSON: {exc}") from exc


_SIZE_SETTING: Final = "TRACECHAIN_CAPTURE_MAX_BYTES"
