from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from biip.checksums import gs1_standard_check_digit
from epcis_event_hash_generator.dl_normaliser import normaliser
from hypothesis import given
from hypothesis import strategies as st

from tracechain.chain.trace_event import subject_id
from tracechain.epcis.event_hash import EPCIS_CONTEXT, event_hash_ids
from tracechain.epcis.identifiers import (
    DEFAULT_RESOLVER,
    InvalidIdentifier,
    NotGS1Identifier,
    canonical_epc,
    canonical_identifier,
    company_prefix_length,
    digital_link,
    from_digital_link_path,
    gs1_key,
    in_form,
    is_class,
)
from tracechain.errors import TracechainError

from .reference import reference_hash_ids

# GS1 AI 82 character set, which serials and lots are drawn from.
CSET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _with_check_digit(payload: str) -> str:
    return payload + str(gs1_standard_check_digit(payload))


def _tds_escape(value: str) -> str:
    """EPC URN escaping as GS1's Tag Data Standard writes it, independently of the module."""
    return "".join(
        {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}.get(c, c)
        for c in value
    )


def _gtin_urn(kind: str, gtin: str, serial: str, split: int) -> str:
    """An SGTIN or LGTIN URN split after `split` digits, whatever GS1's table says."""
    return f"{kind}{gtin[1 : 1 + split]}.{gtin[0]}{gtin[1 + split : 13]}.{_tds_escape(serial)}"


def _sscc_urn(sscc: str, split: int) -> str:
    return f"urn:epc:id:sscc:{sscc[1 : 1 + split]}.{sscc[0]}{sscc[1 + split : 17]}"


gtins = st.text("0123456789", min_size=13, max_size=13).map(_with_check_digit)
ssccs = st.text("0123456789", min_size=17, max_size=17).map(_with_check_digit)
serials = st.text(CSET_82, min_size=1, max_size=20)
plain_serials = st.text(ALPHANUMERIC, min_size=1, max_size=20)
partitions = st.integers(min_value=6, max_value=12)


@pytest.mark.parametrize(
    ("urn", "link"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:class:lgtin:4012345.012345.998877", "https://id.gs1.org/01/04012345123456/10/998877"),
        ("urn:epc:idpat:sgtin:4012345.098765.*", "https://id.gs1.org/01/04012345987652"),
        ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"),
        ("urn:epc:id:sgln:0614141.07346.1234", "https://id.gs1.org/414/0614141073467/254/1234"),
        ("urn:epc:id:sgln:0614141.00777.0", "https://id.gs1.org/414/0614141007776"),
        ("urn:epc:id:pgln:0614141.00001", "https://id.gs1.org/417/0614141000012"),
        ("urn:epc:id:grai:4012345.55555.98765", "https://id.gs1.org/8003/0401234555555498765"),
        ("urn:epc:id:giai:4000001.12345", "https://id.gs1.org/8004/400000112345"),
    ],
)
def test_urn_and_digital_link_of_one_thing_are_one_subject(urn: str, link: str) -> None:
    assert canonical_epc(urn) == urn
    assert canonical_epc(link) == urn
    assert subject_id(canonical_epc(link)) == subject_id(canonical_epc(urn))
    assert digital_link(urn) == link


@pytest.mark.parametrize(
    "link",
    [
        "https://brand.example.com/01/10614141073464/21/2017",
        "http://brand.example.com/products/01/10614141073464/21/2017?17=260101&linkType=gs1:pip",
        "https://id.gs1.org/01/10614141073464/10/LOT7/21/2017",  # the serial is the finer level
        "https://id.gs1.org/gtin/10614141073464/ser/2017",  # GS1 DL 1.0 short names
        "https://id.gs1.org/01/614141073461/21/2017".replace("614141073461", "10614141073464"),
    ],
)
def test_digital_link_on_any_host_names_the_same_item(link: str) -> None:
    assert canonical_epc(link) == "urn:epc:id:sgtin:0614141.107346.2017"


def test_short_names_are_only_read_in_key_positions() -> None:
    assert (
        canonical_epc("https://id.gs1.org/01/10614141073464/21/lot") == "urn:epc:id:sgtin:0614141.107346.lot"
    )


def test_gtin_13_in_a_digital_link_is_padded_to_14_digits() -> None:
    assert canonical_epc("https://id.gs1.org/01/4012345123456/10/998877") == (
        "urn:epc:class:lgtin:4012345.012345.998877"
    )


def test_urn_split_at_another_company_prefix_length_is_resplit_by_the_gs1_table() -> None:
    assert canonical_epc("urn:epc:id:sgtin:061414.1107346.2017") == "urn:epc:id:sgtin:0614141.107346.2017"
    # GS1 allocated 952000 as a 6-digit prefix; GS1's own example splits it after 7 digits.
    assert canonical_epc("urn:epc:id:sgtin:9520001.012346.10000001001") == (
        "urn:epc:id:sgtin:952000.0112346.10000001001"
    )


def test_company_prefix_length_comes_from_the_gs1_table_and_falls_back_to_7() -> None:
    assert company_prefix_length("sgtin", "10614141073464") == 7
    assert company_prefix_length("sgtin", "07044610873466") == 6
    assert company_prefix_length("sscc", "106141412345678908") == 7
    assert company_prefix_length("sgtin", "09529999999990") == 7  # not in the table


def test_urn_escapes_are_read_and_written_canonically() -> None:
    assert (
        canonical_epc("urn:epc:id:sgtin:0614141.107346.a%2fb%21") == "urn:epc:id:sgtin:0614141.107346.a%2Fb!"
    )


def test_serial_is_percent_decoded_after_splitting_the_path() -> None:
    assert from_digital_link_path("/01/10614141073464/21/a%2Fb") == "urn:epc:id:sgtin:0614141.107346.a%2Fb"
    assert digital_link("urn:epc:id:sgtin:0614141.107346.a%2Fb") == (
        "https://id.gs1.org/01/10614141073464/21/a%2Fb"
    )


def test_digital_link_paths_give_the_urn_of_an_item_and_of_a_lot() -> None:
    assert from_digital_link_path("/01/10614141073464/21/2017") == "urn:epc:id:sgtin:0614141.107346.2017"
    assert (
        from_digital_link_path("01/04012345123456/10/99%2F88") == "urn:epc:class:lgtin:4012345.012345.99%2F88"
    )


def test_digital_link_uses_the_given_host_and_path_prefix() -> None:
    urn = "urn:epc:id:sgtin:0614141.107346.2017"
    assert digital_link(urn, host="https://trace.example.com/p/") == (
        "https://trace.example.com/p/01/10614141073464/21/2017"
    )
    with pytest.raises(ValueError, match="http"):
        digital_link(urn, host="trace.example.com")


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("https://id.gs1.org/01/10614141073465/21/2017", "check digit of 10614141073465 is 5, should be 4"),
        ("https://id.gs1.org/00/106141412345678907", "check digit of 106141412345678907 is 7, should be 8"),
        ("https://id.gs1.org/414/0614141073468", "check digit of 0614141073468 is 8, should be 7"),
        ("https://id.gs1.org/8003/0401234555556498765", "check digit of 4012345555564 is 4, should be 1"),
    ],
)
def test_bad_check_digit_is_rejected_naming_the_digit(identifier: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        canonical_epc(identifier)
    assert raised.value.reason == reason
    assert raised.value.identifier == identifier


@pytest.mark.parametrize(
    ("identifier", "said"),
    [
        ("0614141.107346.2017", "neither an EPC URN"),
        ("urn:epc:id:sgtin:0614141.107346.", "1 to 20 characters, got 0"),
        ("urn:epc:id:sgtin:0614141.10734.2017", "need 13 digits together, not 0614141.10734"),
        ("urn:epc:id:sgtin:0614141.107346." + "9" * 21, "1 to 20 characters, got 21"),
        ("urn:epc:id:sgtin:0614141.107346.a/b", "'/' is not allowed"),
        ("urn:epc:id:sgtin:06141.1073466.1", "company prefix '06141' is not 6 to 12 digits"),
        ("urn:epc:id:sgtin:0614141.107346", "3 parts"),
        ("urn:epc:id:xyz:2S194.12345678901", "not supported"),
        ("urn:epc:idpat:sgtin:0614141.*.*", "only GTIN patterns"),
        ("https://example.com/about", "not a Digital Link"),
        ("https://id.gs1.org/01/10614141073464/21/a%20b", "(21)"),
        ("https://id.gs1.org/8003/04012345555554", "names a type"),
    ],
)
def test_what_is_not_a_valid_identifier_is_rejected_saying_why(identifier: str, said: str) -> None:
    with pytest.raises(InvalidIdentifier, match=r".*") as raised:
        canonical_epc(identifier)
    assert said in raised.value.reason


def test_invalid_identifier_is_a_value_error_and_a_tracechain_error() -> None:
    assert issubclass(InvalidIdentifier, ValueError)
    assert issubclass(InvalidIdentifier, TracechainError)


@pytest.mark.parametrize("identifier", ["https://parties.example.com/7", "urn:example:party:7", "retailer-7"])
def test_what_is_no_gs1_identifier_at_all_is_told_apart(identifier: str) -> None:
    with pytest.raises(NotGS1Identifier):
        canonical_epc(identifier)


def test_a_gs1_identifier_written_wrongly_is_not_told_apart_as_foreign() -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        canonical_epc("https://id.gs1.org/417/0614141000028")
    assert not isinstance(raised.value, NotGS1Identifier)


def test_epc_without_gs1_key_is_kept_as_written_and_has_no_digital_link() -> None:
    gid = "urn:epc:id:gid:95100000.12345.400"
    assert canonical_epc(gid) == gid
    with pytest.raises(InvalidIdentifier, match="no Digital Link form"):
        digital_link(gid)


# Every EPC scheme of TDS 2.x and every Digital Link primary key the EPCIS 2.0 schema admits:
# (as written, canonical, its Digital Link or None when it has none).
EVERY_SCHEME = [
    ("urn:epc:id:sgtin:0614141.107346.2017", None, "https://id.gs1.org/01/10614141073464/21/2017"),
    ("urn:epc:class:lgtin:4012345.012345.998877", None, "https://id.gs1.org/01/04012345123456/10/998877"),
    ("urn:epc:idpat:sgtin:4012345.098765.*", None, "https://id.gs1.org/01/04012345987652"),
    ("urn:epc:id:sscc:0614141.1234567890", None, "https://id.gs1.org/00/106141412345678908"),
    ("urn:epc:id:sgln:0614141.12345.400", None, "https://id.gs1.org/414/0614141123452/254/400"),
    ("urn:epc:id:pgln:0614141.00002", None, "https://id.gs1.org/417/0614141000029"),
    ("urn:epc:id:grai:0614141.12345.400", None, "https://id.gs1.org/8003/00614141123452400"),
    ("urn:epc:id:giai:0614141.12345400", None, "https://id.gs1.org/8004/061414112345400"),
    ("urn:epc:id:gsrn:0614141.1234567890", None, "https://id.gs1.org/8018/061414112345678902"),
    ("urn:epc:id:gsrnp:0614141.1234567890", None, "https://id.gs1.org/8017/061414112345678902"),
    ("urn:epc:id:gdti:0614141.12345.400", None, "https://id.gs1.org/253/0614141123452400"),
    ("urn:epc:id:sgcn:4012345.67890.04711", None, "https://id.gs1.org/255/401234567890104711"),
    ("urn:epc:id:ginc:0614141.xyz47%2F11", None, "https://id.gs1.org/401/0614141xyz47%2F11"),
    ("urn:epc:id:gsin:0614141.123456789", None, "https://id.gs1.org/402/06141411234567890"),
    ("urn:epc:id:cpi:0614141.123ABC.123456789", None, "https://id.gs1.org/8010/0614141123ABC/8011/123456789"),
    (
        "urn:epc:id:cpi:0614141.5PQ7%2FZ%2343.12345",
        None,
        "https://id.gs1.org/8010/06141415PQ7%2FZ%2343/8011/12345",
    ),
    ("urn:epc:idpat:cpi:0614141.123ABC.*", None, "https://id.gs1.org/8010/0614141123ABC"),
    ("urn:epc:id:itip:4012345.012345.01.02.987", None, "https://id.gs1.org/8006/040123451234560102/21/987"),
    (
        "urn:epc:id:upui:4012345.012345.51qIgY)%3C%26Jp3*j7'SDB",
        None,
        "https://id.gs1.org/01/04012345123456/235/51qIgY%29%3C%26Jp3%2Aj7%27SDB",
    ),
    ("urn:epc:id:gid:95100000.12345.400", None, None),
    ("urn:epc:id:adi:2S194.12345.ABC%2FDEF", None, None),
    ("urn:epc:id:adi:W81X9C.3KL984PX1.%2325", None, None),
    ("urn:epc:id:bic:CSQU3054383", None, None),
    ("urn:epc:id:imovn:9176187", None, None),
    ("urn:epc:id:usdod:2S194.12345678901", None, None),
    (
        "https://id.gs1.org/8013/1987654Ad4X4bL5ttr2310c2K",
        None,
        "https://id.gs1.org/8013/1987654Ad4X4bL5ttr2310c2K",
    ),
    (
        "https://example.com/8013/1987654Ad4X4bL5ttr2310c2K",
        "https://id.gs1.org/8013/1987654Ad4X4bL5ttr2310c2K",
        "https://id.gs1.org/8013/1987654Ad4X4bL5ttr2310c2K",
    ),
    ("https://id.gs1.org/7023/0614141ASSEMBLY1", None, "https://id.gs1.org/7023/0614141ASSEMBLY1"),
    (
        "https://id.gs1.org/8010/0614141123ABC/8011/123456789",
        "urn:epc:id:cpi:0614141.123ABC.123456789",
        "https://id.gs1.org/8010/0614141123ABC/8011/123456789",
    ),
    (
        "https://id.gs1.org/8006/040123451234560102/21/987",
        "urn:epc:id:itip:4012345.012345.01.02.987",
        "https://id.gs1.org/8006/040123451234560102/21/987",
    ),
    (
        "https://example.com/dl/itip/040123451234560102/ser/987",
        "urn:epc:id:itip:4012345.012345.01.02.987",
        "https://id.gs1.org/8006/040123451234560102/21/987",
    ),
    (
        "https://id.gs1.org/01/04012345123456/235/TPX1",
        "urn:epc:id:upui:4012345.012345.TPX1",
        "https://id.gs1.org/01/04012345123456/235/TPX1",
    ),
]


@pytest.mark.parametrize(("written", "canonical", "link"), EVERY_SCHEME, ids=[row[0] for row in EVERY_SCHEME])
def test_every_scheme_is_read_and_round_trips_through_its_digital_link(
    written: str, canonical: str | None, link: str | None
) -> None:
    expected = canonical or written
    assert canonical_epc(written) == expected
    assert canonical_epc(expected) == expected
    assert subject_id(canonical_epc(written)) == subject_id(expected)
    if link is None:
        with pytest.raises(InvalidIdentifier, match="no Digital Link form"):
            digital_link(written)
    else:
        assert digital_link(written) == link
        assert canonical_epc(link) == expected


@pytest.mark.parametrize(
    ("identifier", "said"),
    [
        ("urn:epc:id:cpi:0614141.123abc.1", "digits, capitals"),
        ("urn:epc:id:cpi:0614141.123ABC.0123", "without leading zeros"),
        ("urn:epc:id:cpi:0614141.12#3.1", "escape # and /"),
        ("urn:epc:id:cpi:0614141.123ABC", "three parts"),
        ("https://id.gs1.org/8010/0614141123ABC/8011/0123", "without leading zeros"),
        ("urn:epc:id:itip:4012345.012345.1.02.987", "two digits each"),
        ("urn:epc:id:itip:4012345.012345.01.02", "five parts"),
        ("https://id.gs1.org/8006/040123451234560102", "names a type"),
        ("https://id.gs1.org/8006/040123451234570102/21/1", "check digit"),
        ("urn:epc:id:upui:4012345.012345." + "x" * 29, "1 to 28 characters"),
        ("urn:epc:id:adi:2S19I.12345.1", "ADI EPC URN"),
        ("urn:epc:id:adi:2S194.12345.A#B", "ADI EPC URN"),
        ("urn:epc:id:bic:CSQU3054384", "should be 3"),
        ("urn:epc:id:bic:CSQX3054383", "BIC EPC URN"),
        ("urn:epc:id:imovn:9176188", "should be 7"),
        ("urn:epc:id:imovn:917618", "IMOVN EPC URN"),
        ("urn:epc:id:usdod:2S194.X1", "USDOD EPC URN"),
        ("https://id.gs1.org/8013/1987654Ad4X4bL5ttr2310c2X", "should be 2K"),
        ("https://id.gs1.org/7023/0614141ASSEMBLY1/21/1", "no qualifiers"),
        ("https://id.gs1.org/7023/AB14141", "company prefix"),
    ],
)
def test_every_scheme_written_wrongly_is_refused_saying_why(identifier: str, said: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        canonical_identifier(identifier)
    assert said in raised.value.reason
    assert not isinstance(raised.value, NotGS1Identifier)


@pytest.mark.parametrize(("written", "canonical", "link"), EVERY_SCHEME, ids=[row[0] for row in EVERY_SCHEME])
def test_each_form_is_given_for_gs1_epc_format_or_the_identifier_as_written_where_there_is_none(
    written: str, canonical: str | None, link: str | None
) -> None:
    # GMN and GIAI-assembly have only a Digital Link (their canonical form); GID, ADI, BIC, IMOVN
    # and USDOD have no Digital Link: each is served in the form it has.
    assert in_form(written, as_urn=True) == (canonical or written)
    assert in_form(written, as_urn=False) == (link or written)
    if link is not None:
        assert digital_link(written, "https://example.com/dl") == link.replace(
            DEFAULT_RESOLVER, "https://example.com/dl"
        )


def test_a_private_uri_or_what_is_no_uri_is_served_as_written() -> None:
    for written in ("urn:example:thing:7", "https://example.com/things/7", "pallet 7"):
        assert in_form(written, as_urn=True) == written
        assert in_form(written, as_urn=False) == written


@pytest.mark.parametrize(
    "identifier", ["https://example.com/things/7", "urn:example:thing:7", "tag:example.com,2026:pallet-9"]
)
def test_a_private_uri_is_kept_as_written(identifier: str) -> None:
    assert canonical_identifier(" " + identifier) == identifier


def test_what_is_no_uri_is_no_private_identifier() -> None:
    with pytest.raises(NotGS1Identifier):
        canonical_identifier("pallet 7")


def test_only_a_gtin_without_lot_or_serial_is_a_class() -> None:
    assert is_class(canonical_epc("https://id.gs1.org/01/04012345987652"))
    assert not is_class(canonical_epc("urn:epc:class:lgtin:4012345.012345.998877"))
    assert not is_class(canonical_epc("urn:epc:id:sscc:0614141.1234567890"))


def test_gs1_key_is_what_the_barcode_carries() -> None:
    assert gs1_key("urn:epc:id:sscc:0614141.1234567890") == "106141412345678908"
    assert gs1_key("urn:epc:id:sgtin:0614141.107346.2017") == "10614141073464"


# ---------------------------------------------------------------- properties


@given(gtins, serials)
def test_sgtin_round_trips_between_urn_and_digital_link(gtin: str, serial: str) -> None:
    link = f"https://id.gs1.org/01/{gtin}/21/{quote(serial, safe='')}"
    urn = canonical_epc(link)
    assert urn.startswith("urn:epc:id:sgtin:")
    assert digital_link(urn) == link
    assert canonical_epc(digital_link(urn)) == urn
    assert canonical_epc(urn) == urn


@given(gtins, serials)
def test_lgtin_round_trips_between_urn_and_digital_link(gtin: str, lot: str) -> None:
    link = f"https://id.gs1.org/01/{gtin}/10/{quote(lot, safe='')}"
    urn = canonical_epc(link)
    assert urn.startswith("urn:epc:class:lgtin:")
    assert digital_link(urn) == link
    assert canonical_epc(urn) == urn


@given(ssccs)
def test_sscc_round_trips_between_urn_and_digital_link(sscc: str) -> None:
    link = f"https://id.gs1.org/00/{sscc}"
    urn = canonical_epc(link)
    assert urn.startswith("urn:epc:id:sscc:")
    assert digital_link(urn) == link
    assert canonical_epc(urn) == urn


@given(gtins, serials, partitions)
def test_sgtin_urn_split_anywhere_is_the_subject_of_its_digital_link(
    gtin: str, serial: str, split: int
) -> None:
    urn = _gtin_urn("urn:epc:id:sgtin:", gtin, serial, split)
    assert (
        canonical_epc(urn)
        == canonical_epc(digital_link(urn))
        == canonical_epc(f"https://id.gs1.org/01/{gtin}/21/{quote(serial, safe='')}")
    )


@given(gtins, serials, partitions)
def test_lgtin_urn_split_anywhere_is_the_subject_of_its_digital_link(gtin: str, lot: str, split: int) -> None:
    urn = _gtin_urn("urn:epc:class:lgtin:", gtin, lot, split)
    assert canonical_epc(urn) == canonical_epc(digital_link(urn))


@given(ssccs, partitions)
def test_sscc_urn_split_anywhere_is_the_subject_of_its_digital_link(sscc: str, split: int) -> None:
    urn = _sscc_urn(sscc, split)
    assert (
        canonical_epc(urn)
        == canonical_epc(digital_link(urn))
        == canonical_epc(f"https://id.gs1.org/00/{sscc}")
    )


@given(gtins, plain_serials, partitions)
def test_digital_link_agrees_with_the_cbv_hash_normaliser(gtin: str, serial: str, split: int) -> None:
    """GS1's reference code turns URNs into Digital Links for the event hash; ours must match."""
    sgtin = _gtin_urn("urn:epc:id:sgtin:", gtin, serial, split)
    lgtin = _gtin_urn("urn:epc:class:lgtin:", gtin, serial, split)
    assert digital_link(sgtin) == normaliser(sgtin)
    assert digital_link(lgtin) == normaliser(lgtin)


@given(ssccs, partitions)
def test_sscc_digital_link_agrees_with_the_cbv_hash_normaliser(sscc: str, split: int) -> None:
    urn = _sscc_urn(sscc, split)
    assert digital_link(urn) == normaliser(urn)


@given(st.text("0123456789", min_size=14, max_size=14).filter(lambda g: g != _with_check_digit(g[:13])))
def test_gtin_with_a_wrong_check_digit_is_always_rejected(gtin: str) -> None:
    with pytest.raises(InvalidIdentifier, match="check digit"):
        canonical_epc(f"https://id.gs1.org/01/{gtin}/21/1")


@pytest.mark.parametrize(
    "identifier",
    [
        "urn:epc:id:pgln:5790001.00000",  # a 12-digit company prefix: the reference becomes empty
        "urn:epc:id:sgln:8712345.00002.0",
        "urn:epc:id:pgln:6901234.00000",
        "urn:epc:id:sgtin:6901234.067890.1",
        "urn:epc:id:sscc:6901234.0000000001",
    ],
)
def test_canonical_form_is_canonical_again(identifier: str) -> None:
    """Participants and clients send back the canonical ids the API hands out."""
    canonical = canonical_epc(identifier)
    assert canonical_epc(canonical) == canonical


@pytest.mark.parametrize(("written", "canonical", "link"), EVERY_SCHEME, ids=[row[0] for row in EVERY_SCHEME])
def test_an_event_naming_any_scheme_hashes_to_gs1s_reference_id(
    written: str, canonical: str | None, link: str | None
) -> None:
    """As written, as canonical and as its Digital Link: the id is GS1's reference tool's each time
    (which, like the CBV, translates only some schemes into Digital Links)."""
    for form in {written, canonical or written, link or written}:
        naming = "quantityList" if is_class(canonical_epc(form)) else "epcList"
        value: Any = {"epcClass": form, "quantity": 1} if naming == "quantityList" else form
        event = {
            "type": "ObjectEvent",
            "eventTime": "2026-10-01T08:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "epcList": [],
            naming: [value],
            "action": "OBSERVE",
        }
        document = {"@context": [EPCIS_CONTEXT], "type": "EPCISDocument", "epcisBody": {"eventList": [event]}}
        assert event_hash_ids(document) == reference_hash_ids(document), form


@pytest.mark.parametrize(
    "identifier", ["http://[::1", "https://[::1/01/04012345123456", "http://[fe80::1%zz"]
)
def test_a_malformed_web_uri_is_refused_as_an_identifier_not_a_crash(identifier: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        canonical_identifier(identifier)
    assert not isinstance(raised.value, NotGS1Identifier)  # never kept as a private identifier
    with pytest.raises(InvalidIdentifier):
        canonical_epc(identifier)
    assert in_form(identifier, as_urn=False) == identifier


@pytest.mark.parametrize(
    "identifier", ["urn:x:foo bar", "https://", "https:///", "urn:", "tag:", "https://example.com/a\tb"]
)
def test_a_uri_with_no_scheme_specific_part_or_with_white_space_is_no_private_identifier(
    identifier: str,
) -> None:
    with pytest.raises(NotGS1Identifier):
        canonical_identifier(identifier)


@pytest.mark.parametrize(
    "identifier",
    ["urn:epc:id:cpi:0614141..1", "urn:epc:idpat:cpi:0614141..*", "https://id.gs1.org/8010/0614141/8011/1"],
)
def test_a_cpi_without_a_part_reference_is_refused_in_every_form(identifier: str) -> None:
    with pytest.raises(InvalidIdentifier, match="reference"):
        canonical_identifier(identifier)
    with pytest.raises(InvalidIdentifier, match="reference"):
        digital_link(identifier)
    assert in_form(identifier, as_urn=False) == identifier  # served as captured, never translated
