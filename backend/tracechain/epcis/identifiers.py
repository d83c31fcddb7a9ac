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

Every scheme
------------
Every EPC scheme of TDS 2.x is read: the GS1 keys above, and CPI (`8010`/`8011`), ITIP
(`8006`/`21`), UPUI (`01`/`235`), each with its Digital Link; and the EPCs that carry no GS1 key
(GID, ADI, BIC, IMOVN, USDOD), checked and kept as written, with no Digital Link. GS1 keys that
have a Digital Link but no EPC scheme (GMN `8013`, GIAI-assembly `7023`) are canonical as their
Digital Link on `id.gs1.org`. Any other absolute URI (`https://example.com/things/7`, `urn:x:…`) is a
private identifier: :func:`canonical_identifier` keeps it as written.

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
from urllib.parse import quote, unquote, urlsplit

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
    qualifier_longest: int = 20
    serial: tuple[int, int] | None = None  # length range of a serial that ends the key itself
    longest: int = 30  # alphanumeric keys: company prefix + reference
    digital_link_only: bool = False  # no EPC scheme (GMN, GIAI-assembly): canonical as a Digital Link

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
        _Scheme("cpi", "urn:epc:id:cpi:", "8010", 0, qualifier_ai="8011"),
        _Scheme("cpi-class", "urn:epc:idpat:cpi:", "8010", 0),
        _Scheme("itip", "urn:epc:id:itip:", "8006", 13, moved=True, qualifier_ai="21"),
        _Scheme("upui", "urn:epc:id:upui:", "01", 13, moved=True, qualifier_ai="235", qualifier_longest=28),
        _Scheme("gmn", "", "8013", 0, longest=25, digital_link_only=True),
        _Scheme("giai-assembly", "", "7023", 0, digital_link_only=True),
    )
}
_BY_AI: Final = {
    scheme.ai: scheme for scheme in _SCHEMES.values() if scheme.ai != "01" and scheme.name != "cpi-class"
}
_PRIMARY_AIS: Final = {"01", *_BY_AI}
# EPCs that carry no GS1 key (TDS 2.x: 14.5.x), checked by their URN syntax and kept as written.
_CAGE_OR_DODAAC: Final = r"[0-9A-HJ-NP-Z]{5,6}"
_KEYLESS_URNS: Final = {
    "urn:epc:id:adi:": re.compile(
        rf"urn:epc:id:adi:{_CAGE_OR_DODAAC}\.(?:[0-9A-Z-]|%2F){{0,32}}\.(?:%23)?(?:[0-9A-Z-]|%2F){{1,30}}"
    ),
    "urn:epc:id:bic:": re.compile(r"urn:epc:id:bic:[A-Z]{3}[JUZ][0-9]{7}"),
    "urn:epc:id:imovn:": re.compile(r"urn:epc:id:imovn:[0-9]{7}"),
    "urn:epc:id:usdod:": re.compile(rf"urn:epc:id:usdod:{_CAGE_OR_DODAAC}\.[0-9]{{1,11}}"),
}
# GS1 component / part identifiers (CPI, 8010): digits, capitals, "-", and "#" and "/" escaped.
_CPI_CHARACTERS: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-#/")
_CPI_ESCAPED: Final = {"#": "%23", "/": "%2F"}
_CPI_SERIAL: Final = re.compile(r"0|[1-9][0-9]{0,11}")
# GS1 General Specifications 7.9.5: the check character pair of a GMN.
_CSET_82: Final = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_CSET_32: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_CHECK_PAIR_WEIGHTS: Final = (
    2,
    3,
    5,
    7,
    11,
    13,
    17,
    19,
    23,
    29,
    31,
    37,
    41,
    43,
    47,
    53,
    59,
    61,
    67,
    71,
    73,
    79,
    83,
)
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
    "itip": "8006",
    "cpid": "8010",
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
    for a key this module does not support. EPCs without a GS1 key (GID, ADI, BIC, IMOVN, USDOD)
    are kept as written; a GS1 key with no EPC scheme (GMN, GIAI-assembly) is its Digital Link on
    id.gs1.org.
    """
    key = _parse(identifier)
    if key.scheme == _OPAQUE:
        return key.key
    if _SCHEMES[key.scheme].digital_link_only:
        return _link(key, DEFAULT_RESOLVER)
    return _urn(key, identifier)


def canonical_identifier(identifier: str) -> str:
    """What an event's identifier is stored and matched as: the canonical EPC URN of a GS1
    identifier (:func:`canonical_epc`), and any other absolute URI (a private identifier scheme,
    which the EPCIS schema allows) as written. Raises InvalidIdentifier for a GS1 identifier
    written wrongly: an EPC URN or a Digital Link naming a GS1 key is never taken for private."""
    try:
        return canonical_epc(identifier)
    except NotGS1Identifier:
        text = identifier.strip()
        if not _ABSOLUTE_URI.fullmatch(text):
            raise
        return text


_ABSOLUTE_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?!/*$)\S+")
"""An absolute URI, whole (`fullmatch`): a scheme, then a scheme-specific part that is more than
slashes (`https://` names nothing), without white space (`urn:x:foo bar` is two words)."""


def digital_link(epc: str, host: str = DEFAULT_RESOLVER) -> str:
    """The GS1 Digital Link URI of an identifier (EPC URN or Digital Link), on `host`.

    `host` may carry a path prefix (`https://example.com/dl`); the key path follows it.
    """
    if not host.startswith(("https://", "http://")):
        raise ValueError(f"host must be an http(s) URL, got {host!r}")
    key = _parse(epc)
    if key.scheme == _OPAQUE:
        raise InvalidIdentifier(epc, "not a GS1 key, so it has no Digital Link form")
    return _link(key, host)


def _link(key: _Key, host: str) -> str:
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
    """Whether a canonical identifier names a product type (a GTIN or CPI without lot or serial).

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
        try:
            key = _parse_digital_link(text)
        except InvalidIdentifier:
            raise
        except ValueError as exc:  # urlsplit's own refusals: "http://[::1" (Invalid IPv6 URL)
            raise InvalidIdentifier(identifier, f"not a well-formed URI ({exc})") from None
    else:
        raise NotGS1Identifier(
            identifier, "neither an EPC URN (urn:epc:…) nor a GS1 Digital Link URI (https://…)"
        )
    _verify_check_digit(identifier, key)
    return key


def _parse_urn(urn: str) -> _Key:
    if _GID.fullmatch(urn):
        return _Key(_OPAQUE, urn)
    keyless = next((prefix for prefix in _KEYLESS_URNS if urn.startswith(prefix)), None)
    if keyless is not None:
        return _keyless(urn, keyless)
    scheme = next((s for s in _SCHEMES.values() if s.urn and urn.startswith(s.urn)), None)
    if scheme is None:
        raise InvalidIdentifier(urn, "EPC scheme not supported")
    if scheme.name in ("cpi", "cpi-class"):
        return _parse_cpi_urn(urn, scheme)
    if scheme.name == "itip":
        return _parse_itip_urn(urn, scheme)
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
        if not 1 <= len(serial) <= scheme.qualifier_longest:
            raise InvalidIdentifier(
                urn,
                f"serial, lot or extension must have 1 to {scheme.qualifier_longest} characters, "
                f"got {len(serial)}",
            )
        return _Key(scheme.name, key, serial)
    assert scheme.serial is not None
    shortest, longest = scheme.serial
    if not shortest <= len(serial) <= longest or (scheme.name == "sgcn" and not serial.isdecimal()):
        raise InvalidIdentifier(urn, f"{scheme.name} serial must have {shortest} to {longest} characters")
    return _Key(scheme.name, key + serial)


def _keyless(urn: str, prefix: str) -> _Key:
    """An EPC with no GS1 key (ADI, BIC, IMOVN, USDOD): checked, kept as written."""
    name = prefix.removeprefix("urn:epc:id:").rstrip(":").upper()
    if not _KEYLESS_URNS[prefix].fullmatch(urn):
        article = "an" if name[0] in "AEIO" else "a"
        raise InvalidIdentifier(urn, f"not {article} {name} EPC URN as the Tag Data Standard writes it")
    value = urn[len(prefix) :]
    if name == "BIC" and _bic_check_digit(value[:10]) != int(value[10]):
        raise InvalidIdentifier(
            urn, f"check digit of BIC {value} is {value[10]}, should be {_bic_check_digit(value[:10])}"
        )
    if name == "IMOVN":
        expected = (
            sum(int(digit) * weight for digit, weight in zip(value[:6], range(7, 1, -1), strict=True)) % 10
        )
        if expected != int(value[6]):
            raise InvalidIdentifier(
                urn, f"check digit of IMO number {value} is {value[6]}, should be {expected}"
            )
    return _Key(_OPAQUE, urn)


def _bic_check_digit(code: str) -> int:
    """ISO 6346: letters count from 10 (A) on, skipping the multiples of 11; weights are 2**position."""
    values = [n for n in range(10, 39) if n % 11][:26]
    total = sum(
        (int(char) if char.isdecimal() else values[ord(char) - ord("A")]) * 2**position
        for position, char in enumerate(code)
    )
    return total % 11 % 10


def _parse_cpi_urn(urn: str, scheme: _Scheme) -> _Key:
    """`urn:epc:id:cpi:{company prefix}.{component/part reference}.{serial}`, or `.*` for the class."""
    parts = urn[len(scheme.urn) :].split(".")
    if len(parts) != 3:
        raise InvalidIdentifier(urn, "a CPI URN has three parts separated by dots")
    prefix, reference, serial = parts
    if not _COMPANY_PREFIX.fullmatch(prefix):
        raise InvalidIdentifier(urn, f"company prefix {prefix!r} is not 6 to 12 digits")
    if not reference:
        raise InvalidIdentifier(urn, "a CPI has a component/part reference after its company prefix")
    key = prefix + _cpi_unescape(urn, reference)
    _check_cpi(urn, key)
    if scheme.name == "cpi-class":
        if serial != "*":
            raise InvalidIdentifier(urn, "a CPI pattern ends in .*")
        return _Key(scheme.name, key)
    if not _CPI_SERIAL.fullmatch(serial):
        raise InvalidIdentifier(urn, f"CPI serial {serial!r} is not 1 to 12 digits without leading zeros")
    return _Key(scheme.name, key, serial)


def _check_cpi(identifier: str, key: str) -> None:
    wrong = sorted(set(key) - _CPI_CHARACTERS)
    if wrong or not 1 <= len(key) <= 30 or not key[:1].isdecimal():
        raise InvalidIdentifier(
            identifier,
            "a CPI is a company prefix and a reference of digits, capitals, '-', '#' and '/', "
            f"30 characters at most{f'; not {wrong}' if wrong else ''}",
        )


def _cpi_unescape(urn: str, component: str) -> str:
    text = ""
    for token in _URN_TOKEN.findall(component):
        char = chr(int(token[1:], 16)) if len(token) == 3 else token
        if (len(token) == 3) != (char in _CPI_ESCAPED):
            raise InvalidIdentifier(
                urn, f"{token!r} is not allowed in a CPI URN (escape # and / as %23, %2F)"
            )
        text += char
    return text


def _parse_itip_urn(urn: str, scheme: _Scheme) -> _Key:
    """`urn:epc:id:itip:{company prefix}.{indicator}{item reference}.{piece}.{total}.{serial}`."""
    parts = urn[len(scheme.urn) :].split(".", 4)
    if len(parts) != 5:
        raise InvalidIdentifier(urn, "an ITIP URN has five parts separated by dots")
    prefix, reference, piece, total, serial = parts
    if not _COMPANY_PREFIX.fullmatch(prefix):
        raise InvalidIdentifier(urn, f"company prefix {prefix!r} is not 6 to 12 digits")
    if not reference.isdecimal() or len(prefix + reference) != scheme.digits:
        raise InvalidIdentifier(
            urn,
            f"company prefix and reference need {scheme.digits} digits together, not {prefix}.{reference}",
        )
    if not (len(piece) == len(total) == 2 and (piece + total).isdecimal()):
        raise InvalidIdentifier(urn, f"piece and total are two digits each, not {piece}.{total}")
    payload = reference[:1] + prefix + reference[1:]
    serial = _unescape(urn, serial)
    if not 1 <= len(serial) <= 20:
        raise InvalidIdentifier(urn, f"serial must have 1 to 20 characters, got {len(serial)}")
    return _Key(scheme.name, payload + str(gs1_standard_check_digit(payload)) + piece + total, serial)


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
    if segments[start] == "7023":  # GIAI-assembly, a primary key biip does not know yet
        return _giai_assembly(uri, [unquote(segment) for segment in segments[start + 1 :] if segment])
    try:
        link = GS1DigitalLinkURI.parse(parts._replace(path="/".join(segments)).geturl())
    except ParseError as exc:
        raise InvalidIdentifier(uri, str(exc)) from exc
    values = {element.ai.ai: element.value for element in link.element_strings}
    if "01" in values:
        # The finest level named is the identity, as in the CBV hash's normaliser: a serial beats
        # a lot, and a consumer product variant (22) has no EPC form.
        if "235" in values:
            return _Key("upui", values["01"], values["235"])
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
    if scheme.name == "cpi":
        _check_cpi(uri, values["8010"])
        if "8011" not in values:
            key = _Key("cpi-class", values["8010"])
        elif not _CPI_SERIAL.fullmatch(values["8011"]):
            raise InvalidIdentifier(
                uri, f"CPI serial {values['8011']!r} is not 1 to 12 digits without leading zeros"
            )
        else:
            key = _Key("cpi", values["8010"], values["8011"])
        _urn(key, uri)  # refuses a CPI that is its company prefix alone, as its EPC URN form is refused
        return key
    if scheme.name == "itip":
        if "21" not in values:
            raise InvalidIdentifier(uri, "an ITIP without serial (21) names a type, not a thing")
        return _Key("itip", values["8006"], values["21"])
    if scheme.name == "gmn":
        _check_gmn(uri, values["8013"])
    if scheme.serial is not None and len(values[primary]) == len(scheme.lead) + scheme.digits + 1:
        raise InvalidIdentifier(uri, f"a {scheme.name.upper()} without serial names a type, not a thing")
    return _Key(scheme.name, values[primary])


def _giai_assembly(uri: str, segments: list[str]) -> _Key:
    """`/7023/{GIAI-assembly}`: a company prefix and an asset reference, CSET 82, 30 at most."""
    if len(segments) != 1:
        raise InvalidIdentifier(uri, "a GIAI-assembly (7023) Digital Link has no qualifiers")
    (value,) = segments
    if not 1 <= len(value) <= 30 or set(value) - set(_CSET_82) or not value[:4].isdecimal():
        raise InvalidIdentifier(
            uri, "a GIAI-assembly is a company prefix and an asset reference, 30 characters of GS1's set 82"
        )
    return _Key("giai-assembly", value)


def _check_gmn(identifier: str, gmn: str) -> None:
    """A GMN ends in a check character pair (GS1 General Specifications 7.9.5)."""
    body = gmn[:-2]
    if len(gmn) < 3 or set(body) - set(_CSET_82):
        raise InvalidIdentifier(identifier, "a GMN is characters of GS1's set 82 and a check character pair")
    total = (
        sum(
            _CSET_82.index(char) * weight
            for char, weight in zip(reversed(body), _CHECK_PAIR_WEIGHTS, strict=False)
        )
        % 1021
    )
    expected = _CSET_32[total // 32] + _CSET_32[total % 32]
    if gmn[-2:] != expected:
        raise InvalidIdentifier(
            identifier, f"check characters of GMN {gmn} are {gmn[-2:]}, should be {expected}"
        )


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
    if not scheme.digits:  # GIAI, GINC, CPI
        if len(key.key) <= length or not key.key[:length].isdecimal():
            length = FALLBACK_COMPANY_PREFIX_LENGTH
        if len(key.key) <= length or not key.key[:length].isdecimal():
            raise InvalidIdentifier(
                identifier, f"{scheme.name} must start with a company prefix and a reference"
            )
        if scheme.name.startswith("cpi"):
            reference = "".join(_CPI_ESCAPED.get(char, char) for char in key.key[length:])
            return f"{scheme.urn}{key.key[:length]}.{reference}.{key.qualifier or '*'}"
        return f"{scheme.urn}{key.key[:length]}.{_escape(key.key[length:])}"
    body = key.key[len(scheme.lead) : len(scheme.lead) + scheme.digits]
    prefix = key.key[start : start + length]
    reference = (body[0] if scheme.moved else "") + body[int(scheme.moved) + length :]
    urn = f"{scheme.urn}{prefix}.{reference}"
    if scheme.name == "gtin-class":
        return urn + ".*"
    if scheme.name == "itip":  # the piece and total follow the GTIN in the key
        return f"{urn}.{key.key[14:16]}.{key.key[16:18]}.{_escape(key.qualifier or '')}"
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
