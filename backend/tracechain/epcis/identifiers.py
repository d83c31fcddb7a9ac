"""GS1 identifiers in one canonical form, so one thing has one `subject_id` however it was written.

EPCIS 2.0 lets an event name the same item as an EPC URN (`urn:epc:id:sgtin:0614141.107346.2017`)
or as a GS1 Digital Link URI (`https://id.gs1.org/01/10614141073464/21/2017`, on any host). The
chain keys a subject by `keccak256` of one string, so :func:`canonical_epc` turns either spelling
into the EPC URN; :func:`digital_link` goes the other way, for the QR code on the consumer page.

The company prefix length
-------------------------
An EPC URN splits the GS1 key at the end of the GS1 Company Prefix (`0614141.107346`); a Digital
Link carries the bare key (`10614141073464`), so going from a Digital Link to a URN needs to know
how long the company prefix is. GS1's reference hash generator never needs to: its `dl_normaliser`
only goes URN -> Digital Link, dropping the split. tracechain takes the length from GS1's company
prefix length table, as bundled (no network) by `biip` (`GS1CompanyPrefix.extract`).

The split is not part of the identity - the CBV event hash ignores it too - so the canonical URN
is a function of the GS1 key alone: a URN written with another split than the table's is re-split
(`urn:epc:id:sgtin:9520001.012346.1` becomes `urn:epc:id:sgtin:952000.0112346.1`: GS1 allocated
952000 as a 6-digit prefix). A prefix the table does not know (unallocated, restricted
circulation) is split after 7 digits, the commonest length and the one GS1's EPCIS examples use,
however it was written. A newer table may know a prefix this one does not, and so change the
canonical URN of its identifiers: `biip` is pinned for that reason, and upgrading it is a data
migration.

Syntax
------
Digital Links are parsed by `biip` (any host and path prefix, percent-decoding per segment, the
AI formats and character sets); the deprecated short names (`/gtin/`, `/ser/`) that the hash
generator still reads are read too. EPC URNs follow GS1's Tag Data Standard: the numeric parts,
and the GS1 AI 82 character set in serials with `"%&/<>?` escaped (`%22 %25 %26 %2F %3C %3E %3F`;
other escapes of the same characters are read and written canonically). Check digits are verified
here for every key, since `biip` checks only the GTIN's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_prefixes import GS1CompanyPrefix

from tracechain.errors import TracechainError

DEFAULT_RESOLVER: Final = "https://id.gs1.org"
FALLBACK_COMPANY_PREFIX_LENGTH: Final = 7
"""Used when GS1's table does not know a prefix; see the module docstring."""


class InvalidIdentifier(TracechainError, ValueError):
    """A value that should name a product, lot, logistic unit, party or location does not."""

    def __init__(self, identifier: str, reason: str) -> None:
        self.identifier = identifier
        self.reason = reason
        super().__init__(f"invalid identifier {identifier!r}: {reason}")


class NotGS1Identifier(InvalidIdentifier):
    """Not a GS1 identifier at all (a web page, a private URN), rather than one written wrongly."""


@dataclass(frozen=True, slots=True)
class _Scheme:
    """How one EPC scheme writes a GS1 key: `{urn}{company prefix}.{reference}[.{serial}]`."""

    name: str
    urn: str
    ai: str  # the Digital Link's primary key
    digits: int  # company prefix + reference, numeric schemes; 0 for alphanumeric references
    moved: bool = False  # the reference's first digit leads the key (GTIN indicator, SSCC extension)
    lead: str = ""  # fixed digits before the company prefix in the key (GRAI's "0")
    qualifier_ai: str | None = None  # the serial, lot or extension is a qualifier with its own AI
    serial: tuple[int, int] | None = None  # length range of a serial that ends the key itself
    longest: int = 30  # alphanumeric keys: company prefix + reference

    @property
    def check_span(self) -> tuple[int, int] | None:
        """Where in the key the digits protected by its check digit are, check digit included."""
        return (len(self.lead), len(self.lead) + self.digits + 1) if self.digits else None

    @property
    def prefix_start(self) -> int:
        return len(self.lead) + int(self.moved)


_SCHEMES: Final = {
    scheme.name: scheme
    for scheme in (
        _Scheme("sgtin", "urn:epc:id:sgtin:", "01", 13, moved=True, qualifier_ai="21"),
        _Scheme("lgtin", "urn:epc:class:lgtin:", "01", 13, moved=True, qualifier_ai="10"),
        _Scheme("gtin-class", "urn:epc:idpat:sgtin:", "01", 13, moved=True),
        _Scheme("sscc", "urn:epc:id:sscc:", "00", 17, moved=True),
        _Scheme("sgln", "urn:epc:id:sgln:", "414", 12, qualifier_ai="254"),
        _Scheme("pgln", "urn:epc:id:pgln:", "417", 12),
        _Scheme("grai", "urn:epc:id:grai:", "8003", 12, lead="0", serial=(1, 16)),
        _Scheme("giai", "urn:epc:id:giai:", "8004", 0),
        _Scheme("gsrn", "urn:epc:id:gsrn:", "8018", 17),
        _Scheme("gsrnp", "urn:epc:id:gsrnp:", "8017", 17),
        _Scheme("gdti", "urn:epc:id:gdti:", "253", 12, serial=(1, 17)),
        _Scheme("sgcn", "urn:epc:id:sgcn:", "255", 12, serial=(1, 12)),
        _Scheme("ginc", "urn:epc:id:ginc:", "401", 0),
        _Scheme("gsin", "urn:epc:id:gsin:", "402", 16),
    )
}
_BY_AI: Final = {scheme.ai: scheme for scheme in _SCHEMES.values() if scheme.ai != "01"}
_PRIMARY_AIS: Final = {"01", *_BY_AI}
# Deprecated Digital Link short names (GS1 DL 1.0), still read by the CBV hash's normaliser.
_SHORT_NAMES: Final = {
    "gtin": "01",
    "ser": "21",
    "lot": "10",
    "cpv": "22",
    "sscc": "00",
    "gln": "414",
    "glnx": "254",
    "party": "417",
    "grai": "8003",
    "giai": "8004",
    "gsrn": "8018",
    "gsrnp": "8017",
    "gdti": "253",
    "gcn": "255",
    "ginc": "401",
    "gsin": "402",
}
_COMPANY_PREFIX: Final = re.compile(r"\d{6,12}")
_LEADING_DIGITS: Final = re.compile(r"\d*")
_GID: Final = re.compile(r"urn:epc:id:gid:\d{1,9}\.\d{1,8}\.\d{1,11}")
# TDS: characters of the GS1 AI 82 set written as they are in a URN, and those escaped.
_URN_PLAIN: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!'()*+,:;=")
_URN_ESCAPED: Final = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_URN_TOKEN: Final = re.compile(r"%[0-9A-Fa-f]{2}|.", re.DOTALL)
# A GLN extension of "0" in an SGLN means "no extension" (TDS), which a Digital Link leaves out.
_NO_GLN_EXTENSION: Final = "0"
_OPAQUE: Final = "gid"


@dataclass(frozen=True, slots=True)
class _Key:
    """A GS1 key as element string values: the primary key's (GTIN-14, SSCC-18, ...) and a qualifier's."""

    scheme: str
    key: str
    qualifier: str | None = None  # serial (21), lot (10) or GLN extension (254)


def canonical_epc(identifier: str) -> str:
    """The canonical EPC URN of an EPC URN or GS1 Digital Link URI.

    Raises InvalidIdentifier, naming what is wrong, for anything else, for a bad check digit and
    for a key this module does not support. `urn:epc:id:gid:` (no GS1 key) is kept as written.
    """
    key = _parse(identifier)
    return key.key if key.scheme == _OPAQUE else _urn(key, identifier)


def digital_link(epc: str, host: str = DEFAULT_RESOLVER) -> str:
    """The GS1 Digital Link URI of an identifier (EPC URN or Digital Link), on `host`.

    `host` may carry a path prefix (`https://example.com/dl`); the key path follows it.
    """
    if not host.startswith(("https://", "http://")):
        raise ValueError(f"host must be an http(s) URL, got {host!r}")
    key = _parse(epc)
    if key.scheme == _OPAQUE:
        raise InvalidIdentifier(epc, "not a GS1 key, so it has no Digital Link form")
    scheme = _SCHEMES[key.scheme]
    path = f"/{scheme.ai}/{quote(key.key, safe='')}"
    if key.qualifier is not None and not (key.scheme == "sgln" and key.qualifier == _NO_GLN_EXTENSION):
        path += f"/{scheme.qualifier_ai}/{quote(key.qualifier, safe='')}"
    return host.rstrip("/") + path


def from_digital_link_path(path: str) -> str:
    """The canonical EPC URN of a Digital Link path such as `/01/{gtin}/21/{serial}`.

    Pass the path as it appears in the request, still percent-encoded: it is split on `/` first
    and each segment decoded after, so a serial containing an encoded `/` (`%2F`) stays whole.
    """
    return canonical_epc(DEFAULT_RESOLVER + "/" + path.lstrip("/"))


def gs1_key(identifier: str) -> str:
    """The GS1 key of an identifier as its barcode carries it: the GTIN-14 of an SGTIN or lot,
    the SSCC-18, the GLN-13, the GRAI or GIAI. Raises InvalidIdentifier for an EPC without one."""
    key = _parse(identifier)
    if key.scheme == _OPAQUE:
        raise InvalidIdentifier(identifier, "not a GS1 key")
    return key.key


def is_class(identifier: str) -> bool:
    """Whether a canonical identifier names a product type (a GTIN without lot or serial).

    A product type is not a thing anyone holds, so it never takes custody effects.
    """
    return identifier.startswith("urn:epc:idpat:")


def company_prefix_length(scheme: str, key: str) -> int:
    """How many digits the company prefix of `key` (an element string value) has, by GS1's table;
    7 for a prefix the table does not know."""
    spec = _SCHEMES[scheme]
    start = spec.prefix_start
    digits = _LEADING_DIGITS.match(key, start, start + 12)
    found = GS1CompanyPrefix.extract(digits.group()) if digits and digits.group() else None
    if found is None or not 6 <= len(found.value) <= 12:
        return FALLBACK_COMPANY_PREFIX_LENGTH
    return len(found.value)


# ---------------------------------------------------------------- reading


def _parse(identifier: str) -> _Key:
    if not isinstance(identifier, str):
        raise InvalidIdentifier(repr(identifier), "not a string")
    text = identifier.strip()
    if text.startswith("urn:epc:"):
        key = _parse_urn(text)
    elif text.startswith(("https://", "http://")):
        key = _parse_digital_link(text)
    else:
        raise NotGS1Identifier(
            identifier, "neither an EPC URN (urn:epc:…) nor a GS1 Digital Link URI (https://…)"
        )
    _verify_check_digit(identifier, key)
    return key


def _parse_urn(urn: str) -> _Key:
    if _GID.fullmatch(urn):
        return _Key(_OPAQUE, urn)
    scheme = next((s for s in _SCHEMES.values() if urn.startswith(s.urn)), None)
    if scheme is None:
        raise InvalidIdentifier(urn, "EPC scheme not supported")
    third = scheme.qualifier_ai is not None or scheme.serial is not None or scheme.name == "gtin-class"
    parts = urn[len(scheme.urn) :].split(".", 2 if third else 1)
    if len(parts) != (3 if third else 2):
        raise InvalidIdentifier(urn, f"a {scheme.name} URN has {3 if third else 2} parts separated by dots")
    prefix, reference = parts[0], parts[1]
    if (scheme.name == "gtin-class" and parts[2] != "*") or "*" in reference:
        raise InvalidIdentifier(
            urn, "only GTIN patterns (urn:epc:idpat:sgtin:{prefix}.{item}.*) are supported"
        )
    if not _COMPANY_PREFIX.fullmatch(prefix):
        raise InvalidIdentifier(urn, f"company prefix {prefix!r} is not 6 to 12 digits")

    if not scheme.digits:  # GIAI, GINC: an alphanumeric reference follows the company prefix
        key = prefix + _unescape(urn, reference)
        if len(key) > scheme.longest or len(key) == len(prefix):
            raise InvalidIdentifier(urn, f"{scheme.name} must have 1 to {scheme.longest} characters")
        return _Key(scheme.name, key)

    if (
        # A 12-digit company prefix leaves an empty reference (urn:epc:id:pgln:579000100000.).
        not (reference.isdecimal() or reference == "")
        or len(prefix + reference) != scheme.digits
        or (scheme.moved and not reference)
    ):
        raise InvalidIdentifier(
            urn,
            f"company prefix and reference need {scheme.digits} digits together, not {prefix}.{reference}",
        )
    payload = reference[:1] + prefix + reference[1:] if scheme.moved else prefix + reference
    key = scheme.lead + payload + str(gs1_standard_check_digit(payload))
    if not third or scheme.name == "gtin-class":
        return _Key(scheme.name, key)
    serial = _unescape(urn, parts[2])
    if scheme.qualifier_ai is not None:
        if not 1 <= len(serial) <= 20:
            raise InvalidIdentifier(
                urn, f"serial, lot or extension must have 1 to 20 characters, got {len(serial)}"
            )
        return _Key(scheme.name, key, serial)
    assert scheme.serial is not None
    shortest, longest = scheme.serial
    if not shortest <= len(serial) <= longest or (scheme.name == "sgcn" and not serial.isdecimal()):
        raise InvalidIdentifier(urn, f"{scheme.name} serial must have {shortest} to {longest} characters")
    return _Key(scheme.name, key + serial)


def _unescape(urn: str, component: str) -> str:
    text = ""
    for token in _URN_TOKEN.findall(component):
        char = chr(int(token[1:], 16)) if len(token) == 3 else token
        if not (char in _URN_PLAIN or (char in _URN_ESCAPED and len(token) == 3)):
            raise InvalidIdentifier(urn, f'{token!r} is not allowed in an EPC URN (escape "%&/<>? as %XX)')
        text += char
    return text


def _parse_digital_link(uri: str) -> _Key:
    parts = urlsplit(uri)
    segments = parts.path.split("/")
    # Short names are AIs only in key positions: from the primary key on, every other segment.
    start = next(
        (i for i, segment in enumerate(segments) if _SHORT_NAMES.get(segment, segment) in _PRIMARY_AIS),
        len(segments),
    )
    if start == len(segments):
        raise NotGS1Identifier(
            uri, "no GS1 primary key (01, 00, 414, 417, ...) in the path: not a Digital Link"
        )
    for i in range(start, len(segments), 2):
        segments[i] = _SHORT_NAMES.get(segments[i], segments[i])
    try:
        link = GS1DigitalLinkURI.parse(parts._replace(path="/".join(segments)).geturl())
    except ParseError as exc:
        raise InvalidIdentifier(uri, str(exc)) from exc
    values = {element.ai.ai: element.value for element in link.element_strings}
    if "01" in values:
        # The finest level named is the identity, as in the CBV hash's normaliser: a serial beats
        # a lot, and a consumer product variant (22) has no EPC form.
        if "21" in values:
            return _Key("sgtin", values["01"], values["21"])
        if "10" in values:
            return _Key("lgtin", values["01"], values["10"])
        return _Key("gtin-class", values["01"])
    primary = next(iter(values))
    scheme = _BY_AI.get(primary)
    if scheme is None:
        raise InvalidIdentifier(uri, f"Digital Link with primary key AI ({primary}) is not supported")
    if scheme.name == "sgln":
        return _Key("sgln", values["414"], values.get("254", _NO_GLN_EXTENSION))
    if scheme.serial is not None and len(values[primary]) == len(scheme.lead) + scheme.digits + 1:
        raise InvalidIdentifier(uri, f"a {scheme.name.upper()} without serial names a type, not a thing")
    return _Key(scheme.name, values[primary])


def _verify_check_digit(identifier: str, key: _Key) -> None:
    span = _SCHEMES[key.scheme].check_span if key.scheme in _SCHEMES else None
    if span is None:
        return
    digits = key.key[span[0] : span[1]]
    if len(digits) != span[1] - span[0] or not digits.isdecimal():
        raise InvalidIdentifier(
            identifier, f"{key.scheme.upper()} key {key.key!r} is too short or not numeric"
        )
    expected = gs1_standard_check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        raise InvalidIdentifier(identifier, f"check digit of {digits} is {digits[-1]}, should be {expected}")


# ---------------------------------------------------------------- writing


def _urn(key: _Key, identifier: str) -> str:
    scheme = _SCHEMES[key.scheme]
    length = company_prefix_length(key.scheme, key.key)
    start = scheme.prefix_start
    if not scheme.digits:  # GIAI, GINC
        if len(key.key) <= length or not key.key[:length].isdecimal():
            length = FALLBACK_COMPANY_PREFIX_LENGTH
        if len(key.key) <= length or not key.key[:length].isdecimal():
            raise InvalidIdentifier(
                identifier, f"{scheme.name} must start with a company prefix and a reference"
            )
        return f"{scheme.urn}{key.key[:length]}.{_escape(key.key[length:])}"
    body = key.key[len(scheme.lead) : len(scheme.lead) + scheme.digits]
    prefix = key.key[start : start + length]
    reference = (body[0] if scheme.moved else "") + body[int(scheme.moved) + length :]
    urn = f"{scheme.urn}{prefix}.{reference}"
    if scheme.name == "gtin-class":
        return urn + ".*"
    if key.qualifier is not None:
        return f"{urn}.{_escape(key.qualifier)}"
    if scheme.serial is not None:
        return f"{urn}.{_escape(key.key[len(scheme.lead) + scheme.digits + 1 :])}"
    return urn


def _escape(value: str) -> str:
    return "".join(char if char in _URN_PLAIN else _URN_ESCAPED[char] for char in value)


def in_form(identifier: str, as_urn: bool) -> str:
    """The identifier as its canonical EPC URN (`as_urn`) or its GS1 Digital Link on GS1's
    resolver; as written when it is no GS1 key (a gid, a private URI) or malformed.

    For serving stored events in the form a reader asks for: what cannot be translated is kept,
    never refused, since it was accepted when it was captured."""
    try:
        return canonical_epc(identifier) if as_urn else digital_link(identifier)
    except (InvalidIdentifier, ValueError):
        return identifier
