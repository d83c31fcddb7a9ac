"""GS1 keys as the CBV 2.0 event hash writes them: constrained canonical GS1 Digital Link URIs.

A port of `dl_normaliser` from GS1's reference hash generator (`epcis-event-hash-generator` 1.9.3),
whose output is the specification the event hash is held to. The patterns are the reference's,
copied verbatim (hence the long lines), and so are its habits, which differ from
:mod:`tracechain.epcis.identifiers` on purpose - that module validates, this one only rewrites:

- It never verifies a check digit: a Digital Link keeps the one it was written with, and an EPC URN
  gets one computed.
- It goes from EPC URN to Digital Link (dropping the company prefix split) and keeps only the
  finest level of identification (a serial wins over a lot) and no CPV or query string.
- Anything it does not recognise, including keys it recognises but writes wrongly, is `None`:
  the hash then uses the value as written.
- A Digital Link on any host is re-hosted at `https://id.gs1.org`, and the host pattern leaves the
  dots of `id.gs1.org` unescaped (any character matches there). Kept: ids must match.

The reference tries some twenty patterns in turn on every value that contains a dot; here the
EPC URN patterns are picked by their scheme prefix (they are anchored on it, so at most one can
match) and results are cached, which makes the normaliser cheap enough to run on every value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final

_DIGITAL_LINK_ESCAPES: Final = str.maketrans(
    {"!": "%21", "(": "%28", ")": "%29", "*": "%2A", "+": "%2B", ",": "%2C", ":": "%3A"}
)


def _escape(value: str) -> str:
    """The characters GS1 Digital Link requires percent-encoded that an EPC URN may carry."""
    return value.translate(_DIGITAL_LINK_ESCAPES)


def check_digit(key_without_check_digit: str) -> int:
    """The GS1 standard check digit (mod 10, weights 3 and 1 from the right)."""
    total = sum(
        int(digit) * (3 if position % 2 == 0 else 1)
        for position, digit in enumerate(reversed(key_without_check_digit))
    )
    return -total % 10


def _with_check_digit(key: str) -> str:
    return key + str(check_digit(key))


def _gtin(uri: str, start: int, partition: int) -> str:
    """The GTIN-14 (check digit included) of `{company prefix}.{indicator}{item reference}`."""
    company_prefix = uri[start:partition]
    item_reference = uri[partition + 1 : partition + 1 + (13 - len(company_prefix))]
    return _with_check_digit(item_reference[0:1] + company_prefix + item_reference[1:])


def _twelve_digit_key(uri: str, start: int, partition: int, lead: str = "") -> str:
    """A GLN-style key: company prefix and reference making 12 digits, check digit appended."""
    company_prefix = uri[start:partition]
    reference = uri[partition + 1 : partition + 1 + (12 - len(company_prefix))]
    return _with_check_digit(lead + company_prefix + reference)


_DL: Final = "https://id.gs1.org/"


def _sgtin(uri: str, partition: int) -> str:
    return f"{_DL}01/{_gtin(uri, 17, partition)}/21/{_escape(uri[32:])}"


def _sscc(uri: str, partition: int) -> str:
    raw = uri[partition + 1 : partition + 2] + uri[16:partition] + uri[partition + 2 :]
    return f"{_DL}00/{_with_check_digit(raw)}"


def _sgln(uri: str, partition: int) -> str:
    gln = _twelve_digit_key(uri, 16, partition)
    extension = uri[30:]
    return f"{_DL}414/{gln}" if extension == "0" else f"{_DL}414/{gln}/254/{_escape(extension)}"


def _grai(uri: str, partition: int) -> str:
    return f"{_DL}8003/{_twelve_digit_key(uri, 16, partition, lead='0')}{_escape(uri[30:])}"


def _giai(uri: str, partition: int) -> str:
    return f"{_DL}8004/{uri[16:partition]}{_escape(uri[partition + 1 :])}"


def _gsrn(uri: str, partition: int) -> str:
    return f"{_DL}8018/{_with_check_digit(uri[16:partition] + uri[partition + 1 :])}"


def _gsrnp(uri: str, partition: int) -> str:
    return f"{_DL}8017/{_with_check_digit(uri[17:partition] + uri[partition + 1 :])}"


def _gdti(uri: str, partition: int) -> str:
    return f"{_DL}253/{_twelve_digit_key(uri, 16, partition)}{_escape(uri[30:])}"


def _cpi(uri: str, partition: int) -> str:
    separator = uri.rfind(".")
    cpi = uri[15:partition] + uri[partition + 1 : separator]
    return f"{_DL}8010/{_escape(cpi)}/8011/{uri[separator + 1 :]}"


def _sgcn(uri: str, partition: int) -> str:
    return f"{_DL}255/{_twelve_digit_key(uri, 16, partition)}{uri[30:]}"


def _ginc(uri: str, partition: int) -> str:
    return f"{_DL}401/{uri[16:partition]}{_escape(uri[partition + 1 :])}"


def _gsin(uri: str, partition: int) -> str:
    return f"{_DL}402/{_with_check_digit(uri[16:partition] + uri[partition + 1 :])}"


def _itip(uri: str, partition: int) -> str:
    return f"{_DL}8006/{_gtin(uri, 16, partition)}{uri[31:33]}{uri[34:36]}/21/{_escape(uri[37:])}"


def _upui(uri: str, partition: int) -> str:
    return f"{_DL}01/{_gtin(uri, 16, partition)}/235/{_escape(uri[31:])}"


def _pgln(uri: str, partition: int) -> str:
    return f"{_DL}417/{_twelve_digit_key(uri, 16, partition)}"


def _lgtin(uri: str, partition: int) -> str:
    return f"{_DL}01/{_gtin(uri, 20, partition)}/10/{_escape(uri[35:])}"


def _sgtin_pattern(uri: str, partition: int) -> str:
    return f"{_DL}01/{_gtin(uri, 20, partition)}"


def _grai_pattern(uri: str, partition: int) -> str:
    return f"{_DL}8003/{_twelve_digit_key(uri, 19, partition, lead='0')}"


def _gdti_pattern(uri: str, partition: int) -> str:
    return f"{_DL}253/{_twelve_digit_key(uri, 19, partition)}"


def _sgcn_pattern(uri: str, partition: int) -> str:
    return f"{_DL}255/{_twelve_digit_key(uri, 19, partition)}"


def _cpi_pattern(uri: str, partition: int) -> str:
    separator = uri.rfind(".")
    return f"{_DL}8010/{_escape(uri[18:partition] + uri[partition + 1 : separator])}"


def _itip_pattern(uri: str, partition: int) -> str:
    return f"{_DL}8006/{_gtin(uri, 19, partition)}{uri[34:36]}{uri[37:39]}"


def _upui_pattern(uri: str, partition: int) -> str:
    return f"{_DL}01/{_gtin(uri, 19, partition)}"


_EPC_URIS: Final[dict[str, tuple[re.Pattern[str], Callable[[str, int], str]]]] = {
    "urn:epc:id:sgtin:": (
        re.compile(
            r"^urn:epc:id:sgtin:((\d{6}\.\d{7})|(\d{7}\.\d{6})|(\d{8}\.\d{5})|(\d{9}\.\d{4})|(\d{10}\.\d{3})|(\d{11}\.\d{2})|(\d{12}\.\d{1}))\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,20}$"
        ),
        _sgtin,
    ),
    "urn:epc:id:sscc:": (
        re.compile(
            r"^urn:epc:id:sscc:((\d{6}\.\d{11}$)|(\d{7}\.\d{10}$)|(\d{8}\.\d{9}$)|(\d{9}\.\d{8}$)|(\d{10}\.\d{7}$)|(\d{11}\.\d{6}$)|(\d{12}\.\d{5}$))"
        ),
        _sscc,
    ),
    "urn:epc:id:sgln:": (
        re.compile(
            r"^urn:epc:id:sgln:((\d{6}\.\d{6})|(\d{7}\.\d{5})|(\d{8}\.\d{4})|(\d{9}\.\d{3})|(\d{10}\.\d{2})|(\d{11}\.\d{1})|(\d{12}\.))\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,20}$"
        ),
        _sgln,
    ),
    "urn:epc:id:grai:": (
        re.compile(
            r"^urn:epc:id:grai:(([\d]{6}\.[\d]{6})|([\d]{7}\.[\d]{5})|([\d]{8}\.[\d]{4})|([\d]{9}\.[\d]{3})|([\d]{10}\.[\d]{2})|([\d]{11}\.[\d]{1})|([\d]{12}\.\.))\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,16}$"
        ),
        _grai,
    ),
    "urn:epc:id:giai:": (
        re.compile(
            r"^urn:epc:id:giai:(([\d]{6}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,24})|([\d]{7}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,23})|([\d]{8}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,22})|([\d]{9}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,21})|([\d]{10}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,20})|([\d]{11}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,19})|([\d]{12}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,18}))$"
        ),
        _giai,
    ),
    "urn:epc:id:gsrn:": (
        re.compile(
            r"^urn:epc:id:gsrn:(([\d]{6}\.[\d]{11}$)|([\d]{7}\.[\d]{10}$)|([\d]{8}\.[\d]{9}$)|([\d]{9}\.[\d]{8}$)|([\d]{10}\.[\d]{7}$)|([\d]{11}\.[\d]{6}$)|([\d]{12}\.[\d]{5}$))"
        ),
        _gsrn,
    ),
    "urn:epc:id:gsrnp:": (
        re.compile(
            r"^urn:epc:id:gsrnp:(([\d]{6}\.[\d]{11}$)|([\d]{7}\.[\d]{10}$)|([\d]{8}\.[\d]{9}$)|([\d]{9}\.[\d]{8}$)|([\d]{10}\.[\d]{7}$)|([\d]{11}\.[\d]{6}$)|([\d]{12}\.[\d]{5}$))"
        ),
        _gsrnp,
    ),
    "urn:epc:id:gdti:": (
        re.compile(
            r"^urn:epc:id:gdti:(([\d]{6}\.[\d]{6})|([\d]{7}\.[\d]{5})|([\d]{8}\.[\d]{4})|([\d]{9}\.[\d]{3})|([\d]{10}\.[\d]{2})|([\d]{11}\.[\d]{1})|([\d]{12}\.\.))(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,20}$"
        ),
        _gdti,
    ),
    "urn:epc:id:cpi:": (
        re.compile(
            r"^urn:epc:id:cpi:((\d{6}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,24})|(\d{7}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,23})|(\d{8}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,22})|(\d{9}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,21})|(\d{10}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,20})|(\d{11}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,19})|(\d{12}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,18}))\.[\d]{1,12}$"
        ),
        _cpi,
    ),
    "urn:epc:id:sgcn:": (
        re.compile(
            r"^urn:epc:id:sgcn:(([\d]{6}\.[\d]{6})|([\d]{7}\.[\d]{5})|([\d]{8}\.[\d]{4})|([\d]{9}\.[\d]{3})|([\d]{10}\.[\d]{2})|([\d]{11}\.[\d]{1})|([\d]{12}\.))\.[\d]{1,12}$"
        ),
        _sgcn,
    ),
    "urn:epc:id:ginc:": (
        re.compile(
            r"^urn:epc:id:ginc:([\d]{6}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,24}|[\d]{7}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,23}|[\d]{8}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,22}|[\d]{9}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,21}|[\d]{10}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,20}|[\d]{11}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,19}|[\d]{12}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,18})$"
        ),
        _ginc,
    ),
    "urn:epc:id:gsin:": (
        re.compile(
            r"^urn:epc:id:gsin:(([\d]{6}\.[\d]{10}$)|([\d]{7}\.[\d]{9}$)|([\d]{8}\.[\d]{8}$)|([\d]{9}\.[\d]{7}$)|([\d]{10}\.[\d]{6}$)|([\d]{11}\.[\d]{5}$)|([\d]{12}\.[\d]{4}$))"
        ),
        _gsin,
    ),
    "urn:epc:id:itip:": (
        re.compile(
            r"^urn:epc:id:itip:(([\d]{6}\.[\d]{7})|([\d]{7}\.[\d]{6})|([\d]{8}\.[\d]{5})|([\d]{9}\.[\d]{4})|([\d]{10}\.[\d]{3})|([\d]{11}\.[\d]{2})|([\d]{12}\.[\d]{1}))\.[\d]{2}\.[\d]{2}\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,20}$"
        ),
        _itip,
    ),
    "urn:epc:id:upui:": (
        re.compile(
            r"^urn:epc:id:upui:((\d{6}\.\d{7})|(\d{7}\.\d{6})|(\d{8}\.\d{5})|(\d{9}\.\d{4})|(\d{10}\.\d{3})|(\d{11}\.\d{2})|(\d{12}\.\d{1}))\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,28}$"
        ),
        _upui,
    ),
    "urn:epc:id:pgln:": (
        re.compile(
            r"^urn:epc:id:pgln:(([\d]{6}\.[\d]{6})|([\d]{7}\.[\d]{5})|([\d]{8}\.[\d]{4})|([\d]{9}\.[\d]{3})|([\d]{10}\.[\d]{2})|([\d]{11}\.[\d]{1})|([\d]{12}\.))$"
        ),
        _pgln,
    ),
    "urn:epc:class:lgtin:": (
        re.compile(
            r"^urn:epc:class:lgtin:(([\d]{6}\.[\d]{7})|([\d]{7}\.[\d]{6})|([\d]{8}\.[\d]{5})|([\d]{9}\.[\d]{4})|([\d]{10}\.[\d]{3})|([\d]{11}\.[\d]{2})|([\d]{12}\.[\d]{1}))\.(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]|[!\')(*+,.0-9:;=A-Za-z_-]){1,20}$"
        ),
        _lgtin,
    ),
    "urn:epc:idpat:sgtin:": (
        re.compile(
            r"^urn:epc:idpat:sgtin:((\d{6}\.\d{7})|(\d{7}\.\d{6})|(\d{8}\.\d{5})|(\d{9}\.\d{4})|(\d{10}\.\d{3})|(\d{11}\.\d{2})|(\d{12}\.\d{1}))\.\*$"
        ),
        _sgtin_pattern,
    ),
    "urn:epc:idpat:grai:": (
        re.compile(
            r"^urn:epc:idpat:grai:(([\d]{6}\.[\d]{6})|([\d]{7}\.[\d]{5})|([\d]{8}\.[\d]{4})|([\d]{9}\.[\d]{3})|([\d]{10}\.[\d]{2})|([\d]{11}\.[\d]{1})|([\d]{12}\.\.))\.\*$"
        ),
        _grai_pattern,
    ),
    "urn:epc:idpat:gdti:": (
        re.compile(
            r"^urn:epc:idpat:gdti:(([\d]{6}\.[\d]{6})|([\d]{7}\.[\d]{5})|([\d]{8}\.[\d]{4})|([\d]{9}\.[\d]{3})|([\d]{10}\.[\d]{2})|([\d]{11}\.[\d]{1})|([\d]{12}\.\.))\.\*$"
        ),
        _gdti_pattern,
    ),
    "urn:epc:idpat:sgcn:": (
        re.compile(
            r"^urn:epc:idpat:sgcn:(([\d]{6}\.[\d]{6})|([\d]{7}\.[\d]{5})|([\d]{8}\.[\d]{4})|([\d]{9}\.[\d]{3})|([\d]{10}\.[\d]{2})|([\d]{11}\.[\d]{1})|([\d]{12}\.\.))\.\*$"
        ),
        _sgcn_pattern,
    ),
    "urn:epc:idpat:cpi:": (
        re.compile(
            r"^urn:epc:idpat:cpi:((\d{6}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,24})|(\d{7}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,23})|(\d{8}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,22})|(\d{9}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,21})|(\d{10}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,20})|(\d{11}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,19})|(\d{12}\.(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-]){1,18}))\.\*$"
        ),
        _cpi_pattern,
    ),
    "urn:epc:idpat:itip:": (
        re.compile(
            r"^urn:epc:idpat:itip:(([\d]{6}\.[\d]{7})|([\d]{7}\.[\d]{6})|([\d]{8}\.[\d]{5})|([\d]{9}\.[\d]{4})|([\d]{10}\.[\d]{3})|([\d]{11}\.[\d]{2})|([\d]{12}\.[\d]{1}))\.[\d]{2}\.[\d]{2}\.\*$"
        ),
        _itip_pattern,
    ),
    "urn:epc:idpat:upui:": (
        re.compile(
            r"^urn:epc:idpat:upui:((\d{6}\.\d{7})|(\d{7}\.\d{6})|(\d{8}\.\d{5})|(\d{9}\.\d{4})|(\d{10}\.\d{3})|(\d{11}\.\d{2})|(\d{12}\.\d{1}))\.\*$"
        ),
        _upui_pattern,
    ),
}

_DIGITAL_LINK: Final = re.compile(
    r"^https?:(\/\/((([^\/?#]*)@)?([^\/?#:]*)(:([^\/?#]*))?))?((([^?#]*)(\/(01|gtin|8006|itip|8010|cpid|414|gln|417|party|8017|gsrnp|8018|gsrn|255|gcn|00|sscc|253|gdti|401|ginc|402|gsin|8003|grai|8004|giai)\/)(\d{4}[^\/]+)(\/[^/]+\/[^/]+)?[/]?(\?([^?\n]*))?(#([^\n]*))?)|(\/[A-Za-z_-]{10}$))"
)
_CANONICAL_HOST: Final = re.compile(
    r"^https:\/\/id.gs1.org\/(01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)\/(\d{4}[^\/]+)(\/[^\/]+\/[^\/]+)?[\/]?(\?([^?\n]*))?(#([^\n]*))?|(\/[A-Za-z_-]{10}$)"
)
_SHORT_NAMES: Final = (
    ("/gtin/", "/01/"),
    ("/itip/", "/8006/"),
    ("/cpid/", "/8010/"),
    ("/gln/", "/414/"),
    ("/party/", "/417/"),
    ("/gsrnp/", "/8017/"),
    ("/gsrn/", "/8018/"),
    ("/gcn/", "/255/"),
    ("/sscc/", "/00/"),
    ("/gdti/", "/253/"),
    ("/ginc/", "/401/"),
    ("/gsin/", "/402/"),
    ("/grai/", "/8003/"),
    ("/giai/", "/8004/"),
    ("/cpv/", "/22/"),
    ("/lot/", "/10/"),
    ("/ser/", "/21/"),
)
# The primary keys the path is re-hosted at, in the reference's order of preference.
_PRIMARY_KEYS: Final = (
    "/00/", "/01/", "/253/", "/255/", "/401/", "/402/", "/414/", "/417/",
    "/8003/", "/8004/", "/8006/", "/8010/", "/8017/", "/8018/",
)  # fmt: skip
_GTIN_14: Final = re.compile(r"^https:\/\/id.gs1.org\/01\/\d{14}")
_GTIN_13: Final = re.compile(r"^https:\/\/id.gs1.org\/01\/\d{13}")
_GTIN_12: Final = re.compile(r"^https:\/\/id.gs1.org\/01\/\d{12}")
_GTIN_8: Final = re.compile(r"^https:\/\/id.gs1.org\/01\/\d{8}")
_CPV_LAST: Final = (
    re.compile(
        r"https:\/\/id.gs1.org\/8006\/\d{18}\/22\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$"
    ),
    re.compile(
        r"https:\/\/id.gs1.org\/01\/\d{14}\/22\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$"
    ),
)
_CPV_BEFORE_QUALIFIER: Final = (
    re.compile(
        r"https:\/\/id.gs1.org\/8006\/\d{18}\/22\/([\x2F\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$"
    ),
    re.compile(
        r"https:\/\/id.gs1.org\/01\/\d{14}\/22\/([\x2F\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$"
    ),
)
_LOT_AND_SERIAL: Final = (
    re.compile(
        r"https:\/\/id.gs1.org\/8006\/\d{18}\/10\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})\/21\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$"
    ),
    re.compile(
        r"https:\/\/id.gs1.org\/01\/(\d{14})\/10\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})\/21\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$"
    ),
)
_CANONICAL: Final = tuple(
    re.compile(pattern)
    for pattern in (
        r"https:\/\/id.gs1.org\/00\/(\d{18})$",
        r"https:\/\/id.gs1.org\/01\/(\d{14})\/21\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$",
        r"https:\/\/id.gs1.org\/01\/(\d{14})\/10\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$",
        r"https:\/\/id.gs1.org\/01\/(\d{14})$",
        r"https:\/\/id.gs1.org\/01\/(\d{14})\/235\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,28})$",
        r"https:\/\/id.gs1.org\/253\/(\d{13})([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,17})$",
        r"https:\/\/id.gs1.org\/255\/(\d{13})(\d{0,12})$",
        r"https:\/\/id.gs1.org\/401\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,30})$",
        r"https:\/\/id.gs1.org\/402\/(\d{17})$",
        r"https:\/\/id.gs1.org\/414\/(\d{13})$",
        r"https:\/\/id.gs1.org\/414\/(\d{13})\/254\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$",
        r"https:\/\/id.gs1.org\/417\/(\d{13})$",
        r"https:\/\/id.gs1.org\/8003\/(\d{14})([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,16})$",
        r"https:\/\/id.gs1.org\/8004\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,30})$",
        r"https:\/\/id.gs1.org\/8006\/(\d{18})\/21\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$",
        r"https:\/\/id.gs1.org\/8006\/(\d{18})\/10\/([\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20})$",
        r"https:\/\/id.gs1.org\/8006\/(\d{18})$",
        r"https:\/\/id.gs1.org\/8010\/([\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30})\/8011/(\d{0,12})$",
        r"https:\/\/id.gs1.org\/8010\/([\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30})$",
        r"https:\/\/id.gs1.org\/8017\/(\d{18})$",
        r"https:\/\/id.gs1.org\/8018\/(\d{18})$",
    )
)


@lru_cache(maxsize=1 << 16)
def canonical_digital_link(uri: str) -> str | None:
    """The constrained canonical GS1 Digital Link of an EPC URI, EPC class or pattern URI or
    Digital Link URI, as the reference writes it; None for anything else."""
    partition = uri.find(".")
    if partition < 0:
        return None
    if uri.startswith("urn:epc:"):
        scheme = uri[: uri.find(":", uri.find(":", 8) + 1) + 1]
        known = _EPC_URIS.get(scheme)
        if known is None or known[0].match(uri) is None:
            return None
        return known[1](uri, partition)
    return _digital_link(uri)


def _digital_link(uri: str) -> str | None:
    if _DIGITAL_LINK.match(uri) is None:
        return None
    if "?" in uri:
        uri = uri[: uri.index("?")]
    for short_name, ai in _SHORT_NAMES:
        uri = uri.replace(short_name, ai)
    if _CANONICAL_HOST.match(uri) is None:
        for key in _PRIMARY_KEYS:
            if key in uri:
                uri = "https://id.gs1.org" + uri[uri.find(key) :]
                break
    if _GTIN_14.match(uri) is None:
        if _GTIN_13.match(uri) is not None:
            uri = uri.replace("/01/", "/01/0")
        elif _GTIN_12.match(uri) is not None:
            uri = uri.replace("/01/", "/01/00")
        elif _GTIN_8.match(uri) is not None:
            uri = uri.replace("/01/", "/01/000000")
    after_cpv = uri[uri.find("/22/") + 4 :]
    if any(pattern.match(uri) for pattern in _CPV_LAST):
        # The CPV ends the path, so it holds no "/": find() is -1 and the slice drops it whole.
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") : -1]
    if any(pattern.match(uri) for pattern in _CPV_BEFORE_QUALIFIER):
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") :]
    if any(pattern.match(uri) for pattern in _LOT_AND_SERIAL):
        after_lot = uri[uri.find("/10/") + 4 :]
        uri = uri[: uri.find("/10/")] + after_lot[after_lot.find("/") :]
    if any(pattern.match(uri) for pattern in _CANONICAL):
        return uri
    return None
