"""TraceRegistry.record's checks before any effect: the batch, the kind, the signature, the head."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest
from coincurve import PublicKey
from eth_utils import keccak, to_checksum_address

from tracechain.chain import reverts
from tracechain.chain.registry import TraceRegistry
from tracechain.chain.trace_event import VERDICT_CLEARED, ZERO_ADDRESS, Kind, SignedEvent, Status, next_head

from ..factories import Actor, random_hash, record, sgtin, sign_event

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def recovered_signer(registry: TraceRegistry, signed: SignedEvent) -> str:
    """What OpenZeppelin's `ECDSA.tryRecover(digest, r, vs)` makes of `signed` on `registry`.

    The digest comes from the contract itself, so a wrong digest on the Python side cannot hide
    here; a signature tryRecover rejects (s in the upper half, no point for r) yields address zero.
    """
    vs = int.from_bytes(signed.vs, "big")
    s, recovery_id = vs & ((1 << 255) - 1), vs >> 255
    if s > SECP256K1_N // 2:
        return ZERO_ADDRESS
    digest = registry.event_digest(signed.event.as_abi_tuple())
    try:
        key = PublicKey.from_signature_and_message(
            signed.r + s.to_bytes(32, "big") + bytes([recovery_id]), digest, hasher=None
        )
    except ValueError:
        return ZERO_ADDRESS
    return to_checksum_address(keccak(key.format(compressed=False)[1:])[-20:])


# ---------------------------------------------------------------- batch and kind


def test_record_reverts_on_an_empty_batch(registry: TraceRegistry) -> None:
    with pytest.raises(reverts.TraceRegistryEmptyBatch) as exc:
        registry.record([])
    assert exc.value.arguments == {}


@pytest.mark.parametrize("kind", [max(Kind) + 1, 255], ids=["one_past_the_last_kind", "uint8_max"])
def test_record_reverts_on_a_kind_the_contract_does_not_know(
    registry: TraceRegistry, manufacturer: Actor, item: bytes, kind: int
) -> None:
    signed = sign_event(registry, manufacturer, cast(Kind, kind), item)
    assert signed.as_abi_tuple()[0][1] == kind

    with pytest.raises(reverts.TraceRegistryUnknownKind) as exc:
        registry.record([signed])
    assert exc.value.arguments == {"subject": item, "kind": kind}


def test_unknown_kind_is_reported_before_the_signature_is_checked(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    unknown = max(Kind) + 1
    signed = replace(sign_event(registry, manufacturer, cast(Kind, unknown), item), r=bytes(32), vs=bytes(32))

    with pytest.raises(reverts.TraceRegistryUnknownKind) as exc:
        registry.record([signed])
    assert exc.value.arguments == {"subject": item, "kind": unknown}


# ---------------------------------------------------------------- signature


def test_record_reverts_when_the_claimed_signer_did_not_sign(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, item: bytes
) -> None:
    signed = replace(sign_event(registry, manufacturer, Kind.OBSERVE, item), signer=carrier.address)

    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        registry.record([signed])
    assert exc.value.arguments == {
        "subject": item,
        "signer": carrier.address,
        "recovered": manufacturer.address,
    }


TAMPERED_FIELDS: dict[str, dict[str, Any]] = {
    "subject": {"subject": sgtin(999)},
    "kind": {"kind": Kind.EXCURSION},
    "event_hash": {"event_hash": b"\x11" * 32},
    "counterpart": {"counterpart": "0x000000000000000000000000000000000000dEaD"},
    "ref": {"ref": b"\x22" * 32},
    "time": {"time": 1},
    "prev_head": {"prev_head": b"\x33" * 32},
}


@pytest.mark.parametrize("changes", list(TAMPERED_FIELDS.values()), ids=list(TAMPERED_FIELDS))
def test_record_reverts_when_a_signed_field_changed_after_signing(
    registry: TraceRegistry, manufacturer: Actor, item: bytes, changes: dict[str, Any]
) -> None:
    signed = sign_event(registry, manufacturer, Kind.OBSERVE, item)
    tampered = replace(signed, event=replace(signed.event, **changes))
    recovered = recovered_signer(registry, tampered)
    assert recovered not in (manufacturer.address, ZERO_ADDRESS)

    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        registry.record([tampered])
    assert exc.value.arguments == {
        "subject": tampered.event.subject,
        "signer": manufacturer.address,
        "recovered": recovered,
    }


def test_record_reverts_on_a_signature_made_for_another_registry(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    other = TraceRegistry.deploy(registry.chain)
    signed = sign_event(registry, manufacturer, Kind.OBSERVE, item)
    recovered = recovered_signer(other, signed)
    assert recovered not in (manufacturer.address, ZERO_ADDRESS)

    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        other.record([signed])
    assert exc.value.arguments == {"subject": item, "signer": manufacturer.address, "recovered": recovered}


def test_record_reverts_when_r_is_zero_and_nothing_is_recovered(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    signed = replace(sign_event(registry, manufacturer, Kind.OBSERVE, item), r=bytes(32))

    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        registry.record([signed])
    assert exc.value.arguments == {"subject": item, "signer": manufacturer.address, "recovered": ZERO_ADDRESS}


def test_record_reverts_when_s_is_in_the_upper_half_of_the_curve_order(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    signed = sign_event(registry, manufacturer, Kind.OBSERVE, item)
    high_s = replace(signed, vs=(SECP256K1_N // 2 + 1).to_bytes(32, "big"))

    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        registry.record([high_s])
    assert exc.value.arguments == {"subject": item, "signer": manufacturer.address, "recovered": ZERO_ADDRESS}


def test_record_reverts_on_garbage_signature_bytes(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    signed = replace(
        sign_event(registry, manufacturer, Kind.OBSERVE, item),
        r=keccak(text="not a signature: r"),
        vs=keccak(text="not a signature: vs"),
    )

    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        registry.record([signed])
    assert exc.value.arguments == {
        "subject": item,
        "signer": manufacturer.address,
        "recovered": recovered_signer(registry, signed),
    }


def test_record_reverts_when_the_zero_address_claims_a_signature_that_recovers_nothing(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    """recovered == signer == 0 must not pass: tryRecover's error is checked, not only the address."""
    signed = replace(
        sign_event(registry, manufacturer, Kind.OBSERVE, item), signer=ZERO_ADDRESS, r=bytes(32), vs=bytes(32)
    )

    with pytest.raises(reverts.TraceRegistryInvalidSignature) as exc:
        registry.record([signed])
    assert exc.value.arguments == {"subject": item, "signer": ZERO_ADDRESS, "recovered": ZERO_ADDRESS}


def test_recovered_signer_matches_what_the_contract_accepts(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    """The helper above agrees with the contract on a good signature, so its other answers count."""
    signed = sign_event(registry, manufacturer, Kind.OBSERVE, item)
    assert recovered_signer(registry, signed) == manufacturer.address

    (log,) = registry.record([signed]).events
    assert log.signer == manufacturer.address


# ---------------------------------------------------------------- head


def test_record_reverts_when_signed_over_a_head_the_subject_never_had(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    head = registry.head_of(item)
    made_up = random_hash()

    with pytest.raises(reverts.TraceRegistryStaleHead) as exc:
        record(
            registry,
            manufacturer,
            Kind.SHIP,
            item,
            counterpart=to_checksum_address(random_hash()[:20]),
            prev_head=made_up,
        )
    assert exc.value.arguments == {"subject": item, "head": head, "signedHead": made_up}


def test_record_reverts_on_a_replayed_event(
    registry: TraceRegistry, manufacturer: Actor, item: bytes
) -> None:
    head_before = registry.observation_head_of(item, manufacturer.address)
    signed = sign_event(registry, manufacturer, Kind.OBSERVE, item)
    registry.record([signed])

    with pytest.raises(reverts.TraceRegistryStaleHead) as exc:
        registry.record([signed])
    assert exc.value.arguments == {
        "subject": item,
        "head": next_head(head_before, signed.event.event_hash),
        "signedHead": head_before,
    }


def test_record_reverts_for_the_loser_of_two_signers_racing_on_one_head(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor, customs: Actor, item: bytes
) -> None:
    head_before = registry.head_of(item)
    inspection = sign_event(registry, customs, Kind.INSPECT, item, ref=VERDICT_CLEARED)
    manufacturers = sign_event(registry, manufacturer, Kind.SHIP, item, counterpart=carrier.address)
    registry.record([manufacturers])

    with pytest.raises(reverts.TraceRegistryStaleHead) as exc:
        registry.record([inspection])
    assert exc.value.arguments == {
        "subject": item,
        "head": next_head(head_before, manufacturers.event.event_hash),
        "signedHead": head_before,
    }
    assert registry.product_of(item).pending_receiver == carrier.address


def test_a_commission_signed_over_zero_records_after_someone_observed_the_subject(
    registry: TraceRegistry, manufacturer: Actor, carrier: Actor
) -> None:
    """Anyone may observe an unknown subject. On one shared chain that moved the subject's head, so a
    rival could make the manufacturer's pre-signed commissioning stale; observations now go on the
    observer's own chain of the subject, and the chain of facts still starts at zero."""
    subject = sgtin(3)
    commission = sign_event(registry, manufacturer, Kind.COMMISSION, subject)
    (observed,) = record(registry, carrier, Kind.OBSERVE, subject).events

    (commissioned,) = registry.record([commission]).events

    assert commissioned.head == next_head(bytes(32), commission.event.event_hash)
    assert observed.head == registry.observation_head_of(subject, carrier.address)
    assert registry.product_of(subject).status == Status.ACTIVE
