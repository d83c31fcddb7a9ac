"""Property tests: random sequences of signed events against the contract and the Python model.

Four properties, checked after every step of every sequence hypothesis tries:
- nobody but the custodian moves a product (and only the proposed receiver accepts it), read off
  the chain itself, independently of the model;
- an observation (Observe, Withdraw) never moves the subject's chain of facts, and a withdrawal is
  by the withdrawn event's named signer or an auditor;
- the contract accepts exactly the events `tracechain.custody` accepts, and rejects the others with
  the same error and arguments, so the service's pre-validation can be trusted;
- every chain's on-chain head (a subject's facts, each reporter's observations of it) equals the
  hash chain recomputed from its EventRecorded logs;
- the trade facts the contract keeps for good (first receipts and handovers per party, first
  clearance, first reporters of excursions and recalls) are the model's, times included, and none
  ever changes once written.

They run on the real anvil node: the same sequences on the in-process chain take ten times longer.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tracechain.chain.connect import Chain
from tracechain.chain.registry import PartyFacts as ChainPartyFacts
from tracechain.chain.registry import RecordResult, Role, TraceRegistry
from tracechain.chain.trace_event import (
    OBSERVATION_KINDS,
    VERDICT_CLEARED,
    VERDICT_REJECTED,
    ZERO_ADDRESS,
    ZERO_HASH,
    Kind,
    Status,
    TraceEvent,
    chain_of,
    next_head,
)
from tracechain.custody import CustodyState, PartyFacts
from tracechain.errors import ContractRevert

from .factories import Actor, sgtin, sscc

ITEMS = [sgtin(n) for n in range(4)]
UNITS = [sscc(n) for n in range(2)]
SUBJECTS = ITEMS + UNITS
CAST = {
    "manufacturer": ["manufacturer"],
    "other_manufacturer": ["manufacturer"],
    "carrier": ["carrier"],
    "customs": ["customs"],
    "retailer": ["retailer"],
    "auditor": ["auditor"],
    "outsider": [],
}
REFS = [*SUBJECTS, ZERO_HASH, VERDICT_CLEARED, VERDICT_REJECTED, b"\x5e" * 32]  # the last: an event hash
MOVES_CUSTODY = {Kind.AGGREGATE, Kind.DISAGGREGATE, Kind.SHIP, Kind.SELL, Kind.CONSUME}


class CustodyMachine(RuleBasedStateMachine):
    chain: ClassVar[Chain]

    @initialize()
    def deploy(self) -> None:
        self.registry = TraceRegistry.deploy(self.chain)
        self.model = CustodyState()
        self.seen_facts: dict[tuple[bytes, str, str], Any] = {}
        self.actors: dict[str, Actor] = {}
        for name, roles in CAST.items():
            actor = Actor.new(name, self.registry)
            self.actors[name] = actor
            self.model.roles[actor.address] = set(roles)
            for role in roles:
                self.registry.grant_role(Role.by_name(role), actor.address)

    @rule(
        kind=st.sampled_from(Kind),
        actor=st.sampled_from(sorted(CAST)),
        subject=st.sampled_from(SUBJECTS),
        ref=st.sampled_from(REFS),
        counterpart=st.sampled_from([*sorted(CAST), None]),
        stale=st.sampled_from([False] * 9 + [True]),
    )
    def record_any_event(
        self, kind: Kind, actor: str, subject: bytes, ref: bytes, counterpart: str | None, stale: bool
    ) -> None:
        """Anyone tries anything: mostly rejected, which is the point."""
        self._attempt(kind, actor, subject, ref, counterpart, stale)

    @rule(data=st.data())
    def record_plausible_event(self, data: st.DataObject) -> None:
        """The party the kind calls for acts, so sequences reach deep states (packed, shipped, sold)."""
        kind = data.draw(st.sampled_from(Kind))
        subject = data.draw(st.sampled_from(SUBJECTS))
        by_address = {actor.address: name for name, actor in self.actors.items()}
        plausible = {
            Kind.COMMISSION: ["manufacturer", "other_manufacturer"],
            Kind.INSPECT: ["customs"],
            Kind.RECALL: ["manufacturer", "auditor"],
            Kind.SELL: ["retailer"],
            Kind.RECEIVE: [by_address.get(self.model.pending_receiver(subject), "carrier")],
        }.get(kind, [by_address.get(self.model.custodian(subject), "manufacturer")])
        actor = data.draw(st.sampled_from(plausible))
        ref = data.draw(st.sampled_from(REFS))
        counterpart = data.draw(st.sampled_from(sorted(CAST)))
        self._attempt(kind, actor, subject, ref, counterpart, stale=False)

    def _attempt(
        self, kind: Kind, actor: str, subject: bytes, ref: bytes, counterpart: str | None, stale: bool
    ) -> None:
        signer = self.actors[actor]
        head = self.model.head(chain_of(subject, kind, signer.address))
        event = TraceEvent(
            subject=subject,
            kind=kind,
            event_hash=os.urandom(32),
            counterpart=self.actors[counterpart].address if counterpart else ZERO_ADDRESS,
            ref=ref,
            time=1_767_225_600,
            prev_head=os.urandom(32) if stale else head,
        )
        before = self.registry.product_of(subject)

        # The chain first: the model's facts take the time of the block the event landed in.
        result: RecordResult | ContractRevert
        try:
            result = self.registry.record([signer.signer.sign(event)])
        except ContractRevert as revert:
            result = revert
        at = 0 if isinstance(result, ContractRevert) else self._block_time(result)
        expected: ContractRevert | None = None
        try:
            self.model.apply(event, signer.address, at)
        except ContractRevert as violation:
            expected = violation

        if isinstance(result, ContractRevert):
            assert expected is not None, f"contract rejected what the model accepts: {result}"
            assert result.error_name == expected.error_name
            assert result.arguments == _as_contract_arguments(expected.arguments)
            return
        assert expected is None, f"contract accepted what the model rejects: {expected}"

        # Independent of the model: only the custodian moves, only the proposed receiver accepts.
        if kind in MOVES_CUSTODY:
            assert signer.address == before.custodian
        if kind is Kind.RECEIVE:
            assert signer.address == before.pending_receiver
        if kind in OBSERVATION_KINDS:
            assert self.registry.head_of(subject) == before.head
        if kind is Kind.WITHDRAW:
            assert event.counterpart == signer.address or actor == "auditor"
        (logged,) = result.events
        assert logged.head == next_head(head, event.event_hash)

    def _block_time(self, result: RecordResult) -> int:
        return int(self.chain.w3.eth.get_block(result.receipt["blockNumber"])["timestamp"])

    @invariant()
    def facts_are_never_rewritten(self) -> None:
        """What the model wrote once stays as it was (the chain's copy is compared at teardown)."""
        if not hasattr(self, "model"):
            return
        seen = self.seen_facts
        for subject, facts in self.model.facts.items():
            for party, party_facts in facts.parties.items():
                for name in ("received_at", "handed_over_at"):
                    key = (subject, party, name)
                    value = getattr(party_facts, name)
                    assert seen.get(key, value) == value
                    if value is not None:
                        seen[key] = value
            key = (subject, "cleared_at", "")
            assert seen.get(key, facts.cleared_at) == facts.cleared_at
            if facts.cleared_at is not None:
                seen[key] = facts.cleared_at
            for name in ("excursion_reports", "recall_reports"):
                reports = tuple(getattr(facts, name))
                key = (subject, name, "")
                earlier = seen.get(key, ())
                assert reports[: len(earlier)] == earlier
                seen[key] = reports

    @invariant()
    def chain_agrees_with_model(self) -> None:
        if not hasattr(self, "registry"):
            return
        for subject in SUBJECTS:
            state = self.registry.product_of(subject)
            assert state.head == self.model.head(subject)
            assert state.custodian == self.model.custodian(subject)
            assert state.pending_receiver == self.model.pending_receiver(subject)
            assert state.recalled == self.model.recalled(subject)

    def teardown(self) -> None:
        if not hasattr(self, "registry"):
            return
        # The heads equal the hash chains recomputed from the logs alone, read back from the node.
        from_logs: dict[bytes, bytes] = {}
        for logged in self.registry.recorded_events():
            chain = chain_of(logged.subject, logged.kind, logged.signer)
            from_logs[chain] = next_head(from_logs.get(chain, ZERO_HASH), logged.event_hash)
        for subject in SUBJECTS:
            assert from_logs.get(subject, ZERO_HASH) == self.registry.head_of(subject)
            # The raw state unitOf reads is the model's unit: what the service re-reads a subject's
            # projection from after a refused transaction.
            raw, unit = self.registry.unit_of(subject), self.model.units.get(subject)
            if unit is None:
                assert raw.status == Status.UNKNOWN
            else:
                assert (raw.status, raw.manufacturer, raw.recalled, raw.cleared, raw.excursions) == (
                    unit.status,
                    unit.manufacturer,
                    unit.recalled,
                    unit.cleared,
                    unit.excursions,
                )
                assert (raw.height, raw.packed_unit, raw.pending_receiver, raw.parent) == (
                    unit.height,
                    unit.packed_unit,
                    unit.pending_receiver,
                    unit.parent,
                )
                assert raw.custodian == (unit.custodian or ZERO_ADDRESS)
            # The trade facts the contract keeps for good are the model's, times included.
            facts = self.model.facts_of(subject)
            assert self.registry.cleared_at(subject) == (facts.cleared_at or 0)
            for name in ("excursion_reports", "recall_reports"):
                on_chain = getattr(self.registry, f"{name}_of")(subject)
                assert [(r.reporter, r.at, r.ordinal) for r in on_chain] == [
                    (r.reporter, r.at, r.ordinal) for r in getattr(facts, name)
                ]
            for actor in self.actors.values():
                party = facts.parties.get(actor.address, PartyFacts())
                assert self.registry.party_facts_of(subject, actor.address) == ChainPartyFacts(
                    party.received_at or 0, party.handed_over_at or 0, party.excursions_before_receipt
                )
                chain = chain_of(subject, Kind.OBSERVE, actor.address)
                assert from_logs.get(chain, ZERO_HASH) == self.registry.observation_head_of(
                    subject, actor.address
                )
                assert self.model.head(chain) == from_logs.get(chain, ZERO_HASH)


def _as_contract_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The model names roles and statuses; the contract reports their bytes32 and enum values."""
    converted = dict(arguments)
    if "role" in converted:
        converted["role"] = Role.by_name(converted["role"])
    if "status" in converted:
        converted["status"] = int(converted["status"])
    return converted


def test_custody_on_chain_matches_the_model_and_the_logs(anvil_chain: Chain) -> None:
    machine = type("CustodyOnAnvil", (CustodyMachine,), {"chain": anvil_chain})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
