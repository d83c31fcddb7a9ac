"""The port of the reference's Digital Link normaliser writes every identifier as the reference does."""

from __future__ import annotations

import pytest
from epcis_event_hash_generator.dl_normaliser import normaliser
from hypothesis import given, settings
from hypothesis import strategies as st

from tracechain.epcis.gs1_normaliser import canonical_digital_link, check_digit

# scheme -> digits of company prefix and reference together, what follows them
_EPC_SCHEMES = {
    "urn:epc:id:sgtin:": (13, "serial"),
    "urn:epc:id:sscc:": (17, ""),
    "urn:epc:id:sgln:": (12, "serial"),
    "urn:epc:id:grai:": (12, "serial"),
    "urn:epc:id:giai:": (0, "serial"),
    "urn:epc:id:gsrn:": (17, ""),
    "urn:epc:id:gsrnp:": (17, ""),
    "urn:epc:id:gdti:": (12, "serial"),
    "urn:epc:id:cpi:": (0, "cpi"),
    "urn:epc:id:sgcn:": (12, "digits"),
    "urn:epc:id:ginc:": (0, "serial"),
    "urn:epc:id:gsin:": (16, ""),
    "urn:epc:id:itip:": (13, "itip"),
    "urn:epc:id:upui:": (13, "serial"),
    "urn:epc:id:pgln:": (12, ""),
    "urn:epc:class:lgtin:": (13, "serial"),
    "urn:epc:idpat:sgtin:": (13, "*"),
    "urn:epc:idpat:grai:": (12, "*"),
    "urn:epc:idpat:gdti:": (12, "*"),
    "urn:epc:idpat:sgcn:": (12, "*"),
    "urn:epc:idpat:cpi:": (0, "cpi*"),
    "urn:epc:idpat:itip:": (13, "itip*"),
    "urn:epc:idpat:upui:": (13, "*"),
    "urn:epc:id:gid:": (0, "digits"),
}
_SERIAL = st.text(alphabet="0123456789AZaz-_.*!():%2F'+,;=", min_size=0, max_size=30)


def _digits(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size, max_size=size)


@st.composite
def _epc_uri(draw: st.DrawFn) -> str:
    """An EPC URI of any scheme the reference knows, mostly well formed, sometimes a digit off."""
    scheme, (total, rest) = draw(st.sampled_from(sorted(_EPC_SCHEMES.items())))
    prefix_length = draw(st.integers(5, 13))
    company_prefix = draw(_digits(prefix_length))
    size = total - prefix_length + draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
    body = company_prefix + "." + draw(_digits(max(size, 0))) if total else company_prefix
    if rest == "serial":
        body += "." + draw(_SERIAL)
    elif rest == "digits":
        body += "." + draw(_digits(draw(st.integers(1, 13))))
    elif rest == "*":
        body += ".*"
    elif rest.startswith("cpi"):
        body += "." + draw(st.text(alphabet="0123456789AZ-#%2F", min_size=1, max_size=20))
        body += ".*" if rest == "cpi*" else "." + draw(_digits(draw(st.integers(1, 13))))
    elif rest.startswith("itip"):
        body += f".{draw(_digits(2))}.{draw(_digits(2))}"
        body += ".*" if rest == "itip*" else "." + draw(_SERIAL)
    return scheme + body


_KEY_DIGITS = {
    "01": (8, 12, 13, 14), "gtin": (14,), "00": (18,), "sscc": (18,), "414": (13,), "gln": (13,),
    "417": (13,), "8003": (14,), "8004": (6, 10), "8006": (18,), "8010": (8,), "8017": (18,),
    "8018": (18,), "253": (13,), "255": (13,), "401": (8,), "402": (17,),
}  # fmt: skip


@st.composite
def _digital_link(draw: st.DrawFn) -> str:
    host = draw(st.sampled_from(["https://id.gs1.org", "https://example.com/dl", "http://example.com"]))
    primary = draw(st.sampled_from(sorted(_KEY_DIGITS)))
    key = draw(_digits(draw(st.sampled_from(_KEY_DIGITS[primary]))))
    if primary in ("8003", "8004", "253", "255", "401"):
        key += draw(st.text(alphabet="0123456789AZaz-", max_size=6))
    path = f"{host}/{primary}/{key}"
    for _ in range(draw(st.integers(0, 3))):
        qualifier = draw(st.sampled_from(["21", "ser", "10", "lot", "22", "cpv", "254", "235", "8011"]))
        path += f"/{qualifier}/{draw(st.text(alphabet='0123456789AZaz-._', min_size=1, max_size=22))}"
    return path + draw(st.sampled_from(["", "/", "?17=250131", "#x", "?linkType=all"]))


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_epc_uri(), _digital_link(), st.text(max_size=30)))
def test_canonical_digital_link_is_the_references(uri: str) -> None:
    assert canonical_digital_link(uri) == normaliser(uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"),
        ("urn:epc:id:sgln:0614141.12345.0", "https://id.gs1.org/414/0614141123452"),
        ("urn:epc:class:lgtin:4012345.012345.998877", "https://id.gs1.org/01/04012345123456/10/998877"),
        (
            "https://example.com/gtin/10614141073464/lot/A1/ser/2017?x=1",
            "https://id.gs1.org/01/10614141073464/21/2017",
        ),
        ("urn:epc:id:sgtin:0614141.107346.2017.5", "https://id.gs1.org/01/10614141073464/21/2017.5"),
        ("shipping", None),
    ],
)
def test_canonical_digital_link_of_known_identifiers(uri: str, expected: str | None) -> None:
    assert canonical_digital_link(uri) == normaliser(uri) == expected


@given(st.text(alphabet="0123456789", min_size=1, max_size=17))
def test_check_digit_is_gs1s(key: str) -> None:
    weights = [3 if position % 2 == 0 else 1 for position in range(len(key))]
    total = sum(int(digit) * weight for digit, weight in zip(reversed(key), weights, strict=True))
    assert check_digit(key) == (10 - total % 10) % 10
