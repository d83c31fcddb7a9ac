"""Content negotiation for EPCIS documents: JSON(-LD) by default, XML when the client prefers it.

The EPCIS 2.0 REST binding serves both bindings of the standard from the same resources, chosen
by `Accept` (RFC 9110 §12.5.1): the media type with the highest quality wins, a more specific
range (`application/xml`) counting over a wildcard (`*/*`) that gives the same quality, and JSON
winning ties. No `Accept`, or one that allows anything, is answered in JSON, as before XML was
served; one that allows none of them is a 406.
"""

from __future__ import annotations

from typing import Final

from tracechain.api.problems import Problem

XML_MEDIA_TYPE: Final = "application/xml"
JSON_TYPES: Final = ("application/json", "application/ld+json")
XML_TYPES: Final = (XML_MEDIA_TYPE, "text/xml")
_OFFERED: Final = (*JSON_TYPES, *XML_TYPES)  # in order of preference on a tie


def wants_xml(accept: str | None) -> bool:
    """Whether the document is to be served as XML (else JSON); a 406 problem if neither is
    acceptable."""
    if not accept or not accept.strip():
        return False
    ranges = [_media_range(part) for part in accept.split(",") if part.strip()]
    best: tuple[float, int, int] | None = None  # quality, specificity, -preference
    chosen = None
    for preference, offered in enumerate(_OFFERED):
        matching = [
            (specificity, quality) for kind, specificity, quality in ranges if _matches(kind, offered)
        ]
        if not matching:
            continue
        specificity, quality = max(matching)  # the most specific range decides (RFC 9110)
        if quality <= 0:
            continue
        rank = (quality, specificity, -preference)
        if best is None or rank > best:
            best, chosen = rank, offered
    if chosen is None:
        raise Problem(
            406,
            "Not Acceptable",
            f"cannot answer in {accept.strip()!r}; EPCIS documents are served as " + ", ".join(_OFFERED),
            acceptable=list(_OFFERED),
        )
    return chosen in XML_TYPES


def _media_range(part: str) -> tuple[str, int, float]:
    """A media range, how specific it is (2: type/subtype, 1: type/*, 0: */*), and its q."""
    kind, *parameters = (piece.strip() for piece in part.split(";"))
    kind = kind.lower()
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                quality = 0.0  # an unreadable q accepts nothing rather than everything
    specificity = 0 if kind == "*/*" else 1 if kind.endswith("/*") else 2
    return kind, specificity, quality


def _matches(kind: str, offered: str) -> bool:
    if kind == "*/*":
        return True
    if kind.endswith("/*"):
        return offered.startswith(kind[:-1])
    return kind == offered
