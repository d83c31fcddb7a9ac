"""Enrolling participants and managing their keys: what is refused, with which answer, and what a
refused request leaves behind (nothing)."""

from __future__ import annotations

from typing import Any

from tracechain.chain.registry import Role

from .conftest import Api

MAKER_GLN = "urn:epc:id:pgln:6901234.00000"


def _key(participant: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {participant['apiKey']}"}


def test_enrolment_grants_every_role_on_chain_once_the_outbox_is_sent(api: Api) -> None:
    maker = api.create_participant("Shenzhen Bright", ["manufacturer", "retailer"], MAKER_GLN, "CN")
    assert maker["custodialKey"] is True and maker["roles"] == ["manufacturer", "retailer"]
    api.settle()
    registry = api.services.registry
    assert registry.has_role(Role.MANUFACTURER, maker["address"])
    assert registry.has_role(Role.RETAILER, maker["address"])
    assert not registry.has_role(Role.CARRIER, maker["address"])


def test_a_taken_party_id_or_address_is_refused_and_leaves_nothing_behind(api: Api) -> None:
    maker = api.create_participant("Shenzhen Bright", ["manufacturer"], MAKER_GLN, "CN")
    same_gln = api.admin(
        "POST",
        "/participants",
        json={"name": "Copycat", "roles": ["carrier"], "partyId": MAKER_GLN, "country": "NL"},
    )
    assert same_gln.status_code == 409
    assert same_gln.json()["title"] == "Participant exists"
    assert same_gln.json()["detail"] == f"a participant with partyId {MAKER_GLN} exists already"
    same_wallet = api.admin(
        "POST",
        "/participants",
        json={"name": "Copycat", "roles": ["carrier"], "country": "NL", "address": maker["address"]},
    )
    assert same_wallet.status_code == 409
    assert same_wallet.json()["detail"] == f"a participant with address {maker['address']} exists already"
    assert [p["id"] for p in api.admin("GET", "/participants").json()] == [maker["id"]]
    api.settle()
    assert not api.services.registry.has_role(Role.CARRIER, maker["address"])


def test_a_revoked_key_is_neither_rotated_nor_revoked_again(api: Api) -> None:
    maker = api.create_participant("Shenzhen Bright", ["manufacturer"], MAKER_GLN, "CN")
    issued = api.client.post("/participants/me/keys", json={"scope": "read"}, headers=_key(maker)).json()
    assert api.client.delete(f"/participants/me/keys/{issued['id']}", headers=_key(maker)).status_code == 204
    for refused in (
        api.client.post(f"/participants/me/keys/{issued['id']}/rotation", headers=_key(maker)),
        api.client.delete(f"/participants/me/keys/{issued['id']}", headers=_key(maker)),
    ):
        assert refused.status_code == 409 and refused.json()["title"] == "Key revoked"
        assert refused.json()["detail"].startswith(f"API key {issued['id']} was revoked at ")
    keys = api.client.get("/participants/me/keys", headers=_key(maker)).json()
    assert [(k["scope"], k["revokedAt"] is None) for k in keys] == [("capture", True), ("read", False)]


def test_another_participants_key_is_as_good_as_none(api: Api) -> None:
    maker = api.create_participant("Shenzhen Bright", ["manufacturer"], MAKER_GLN, "CN")
    rival = api.create_participant("Rival", ["manufacturer"], "urn:epc:id:pgln:4012345.00000", "DE")
    issued = api.client.post("/participants/me/keys", json={"scope": "read"}, headers=_key(maker)).json()
    for refused in (
        api.client.post(f"/participants/me/keys/{issued['id']}/rotation", headers=_key(rival)),
        api.client.delete(f"/participants/me/keys/{issued['id']}", headers=_key(rival)),
        api.admin("DELETE", f"/participants/{rival['id']}/keys/{issued['id']}"),
    ):
        assert refused.status_code == 404
        assert refused.json()["detail"] == f"no API key {issued['id']} of participant {rival['id']}"
    keys = api.client.get("/participants/me/keys", headers=_key(maker)).json()
    assert all(k["revokedAt"] is None for k in keys)
