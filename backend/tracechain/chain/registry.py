"""Typed access to a deployed TraceRegistry: record signed events, read custody, read the logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import FilterParams, RPCEndpoint, TxReceipt

from tracechain.chain.artifacts import load_artifact
from tracechain.chain.connect import Chain
from tracechain.chain.eip712 import Domain
from tracechain.chain.trace_event import Kind, SignedEvent, Status
from tracechain.chain.transactions import as_tracechain_error, call, transact
from tracechain.errors import ChainError, ContractRevert


class Role:
    """TraceRegistry's participant roles, as the contract names them."""

    MANUFACTURER = keccak(text="MANUFACTURER_ROLE")
    CARRIER = keccak(text="CARRIER_ROLE")
    CUSTOMS = keccak(text="CUSTOMS_ROLE")
    RETAILER = keccak(text="RETAILER_ROLE")
    AUDITOR = keccak(text="AUDITOR_ROLE")
    ANCHORER = keccak(text="ANCHORER_ROLE")
    """Not a participant role: may anchor Merkle roots (the service's relayer in merkle mode)."""

    @classmethod
    def by_name(cls, name: str) -> bytes:
        role: bytes = getattr(cls, name.upper())
        return role


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One EventRecorded log and where the chain holds it."""

    subject: bytes
    event_hash: bytes
    signer: str
    kind: Kind
    counterpart: str
    ref: bytes
    time: int
    head: bytes
    block_number: int
    transaction_hash: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class ProductState:
    status: Status
    manufacturer: str
    custodian: str
    pending_receiver: str
    parent: bytes
    recalled: bool
    cleared: bool
    excursions: int
    head: bytes


@dataclass(frozen=True, slots=True)
class UnitState:
    """TraceRegistry.unitOf: a subject's own stored state, nothing resolved through its parents."""

    status: Status
    manufacturer: str
    recalled: bool
    cleared: bool
    excursions: int
    height: int
    packed_unit: bool
    custodian: str
    """Zero while its manufacturer holds it."""
    pending_receiver: str
    parent: bytes
    head: bytes


@dataclass(frozen=True, slots=True)
class PartyFacts:
    """TraceRegistry.partyFactsOf: what the registry keeps for good about one party and one subject.

    Times are block timestamps, zero for "not yet". `handed_over_at`: a shipment of the subject by
    the party was first received by the party it was shipped to. A report with `ordinal` at most
    `excursions_before_receipt` came before the party's first receipt."""

    received_at: int
    handed_over_at: int
    excursions_before_receipt: int


@dataclass(frozen=True, slots=True)
class Report:
    """One party's first excursion or recall report of a subject (TraceRegistry.Report); `ordinal`
    is an excursion's place among the subject's excursion events, zero for a recall."""

    reporter: str
    at: int
    ordinal: int


@dataclass(frozen=True, slots=True)
class AnchoredBatch:
    """One BatchAnchored log: `count` signed events are the leaves under `root`."""

    root: bytes
    anchorer: str
    count: int
    block_number: int
    transaction_hash: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """TraceRegistry.anchorOf: zeros for a root never anchored."""

    block_number: int
    timestamp: int
    count: int


@dataclass(frozen=True)
class RecordResult:
    receipt: TxReceipt
    events: list[RecordedEvent]

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"])


class TraceRegistry:
    def __init__(self, chain: Chain, address: str, deployed_at: int = 0) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.deployed_at = deployed_at
        """The block it was deployed in, when known: no log of it is older, so log reads start there."""
        self.contract: Contract = chain.w3.eth.contract(
            address=self.address, abi=load_artifact("TraceRegistry").abi
        )
        self.domain = Domain(chain.chain_id, self.address)

    @classmethod
    def deploy(cls, chain: Chain, admin: str | None = None) -> TraceRegistry:
        """Deploy a new registry; `admin` (default: the relayer) may grant participant roles."""
        artifact = load_artifact("TraceRegistry")
        factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = transact(chain, factory.constructor(admin or chain.relayer.address))
        address = receipt["contractAddress"]
        assert address is not None, "a contract creation receipt names the contract"
        return cls(chain, address, deployed_at=receipt["blockNumber"])

    def grant_role(self, role: bytes, account: str) -> TxReceipt:
        """Sent by the relayer, which must hold the admin role."""
        return transact(self.chain, self.contract.functions.grantRole(role, to_checksum_address(account)))

    def has_role(self, role: bytes, account: str) -> bool:
        return bool(call(self.contract.functions.hasRole(role, to_checksum_address(account))))

    def record(self, events: Sequence[SignedEvent], gas: int | None = None) -> RecordResult:
        receipt = transact(
            self.chain, self.contract.functions.record([e.as_abi_tuple() for e in events]), gas
        )
        logs = self.contract.events.EventRecorded().process_receipt(receipt)
        return RecordResult(receipt, [_recorded(log) for log in logs])

    def anchor(self, root: bytes, count: int, gas: int | None = None) -> TxReceipt:
        """Sent by the relayer, which must hold the anchorer role."""
        return transact(self.chain, self.contract.functions.anchor(root, count), gas)

    def anchor_calldata(self, root: bytes, count: int) -> bytes:
        """The calldata of `anchor(root, count)`, for a transaction signed elsewhere (the outbox),
        as `record_calldata` is for `record`."""
        return bytes.fromhex(self.contract.encode_abi("anchor", [root, count])[2:])

    def anchor_of(self, root: bytes) -> Anchor:
        block_number, timestamp, count = call(self.contract.functions.anchorOf(root))
        return Anchor(block_number, timestamp, count)

    def verify_anchored(self, signed: SignedEvent, proof: Sequence[bytes], root: bytes) -> bool:
        return bool(call(self.contract.functions.verifyAnchored(signed.as_abi_tuple(), list(proof), root)))

    def anchored_leaf(self, signed: SignedEvent) -> bytes:
        return bytes(call(self.contract.functions.anchoredLeaf(signed.as_abi_tuple())))

    def anchored_batches(
        self, from_block: int | None = None, to_block: int | str = "latest"
    ) -> list[AnchoredBatch]:
        logs = self.contract.events.BatchAnchored().get_logs(
            from_block=self.deployed_at if from_block is None else from_block, to_block=to_block
        )
        return [anchored_batch(log) for log in logs]

    def head_of(self, subject: bytes) -> bytes:
        """The head of the subject's chain of facts."""
        return bytes(call(self.contract.functions.headOf(subject)))

    def observation_head_of(self, subject: bytes, reporter: str) -> bytes:
        """The head of `reporter`'s chain of observations of the subject."""
        return bytes(call(self.contract.functions.observationHeadOf(subject, to_checksum_address(reporter))))

    def product_of(self, subject: bytes) -> ProductState:
        v = call(self.contract.functions.productOf(subject))
        return ProductState(Status(v[0]), v[1], v[2], v[3], bytes(v[4]), v[5], v[6], v[7], bytes(v[8]))

    def unit_of(self, subject: bytes) -> UnitState:
        """The subject's own stored state, as custody.Unit keeps it, and its head."""
        v = call(self.contract.functions.unitOf(subject))
        return UnitState(
            Status(v[0]), v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], bytes(v[9]), bytes(v[10])
        )

    def party_facts_of(self, subject: bytes, party: str) -> PartyFacts:
        received_at, handed_over_at, before = call(
            self.contract.functions.partyFactsOf(subject, to_checksum_address(party))
        )
        return PartyFacts(received_at, handed_over_at, before)

    def cleared_at(self, subject: bytes) -> int:
        """When customs first cleared the subject (block timestamp), whatever it said later; 0: never."""
        return int(call(self.contract.functions.clearedAt(subject)))

    def excursion_reports_of(self, subject: bytes) -> list[Report]:
        """The first distinct reporters of an excursion of the subject (at most MAX_REPORTERS), in order."""
        return _reports(call(self.contract.functions.excursionReportsOf(subject)))

    def recall_reports_of(self, subject: bytes) -> list[Report]:
        """The first distinct parties that recalled the subject itself (at most MAX_REPORTERS), in order."""
        return _reports(call(self.contract.functions.recallReportsOf(subject)))

    def event_digest(self, event_tuple: tuple[Any, ...]) -> bytes:
        return bytes(call(self.contract.functions.eventDigest(event_tuple)))

    def record_calldata(self, events: Sequence[SignedEvent]) -> bytes:
        """The calldata of `record(events)`, assembled from 32-byte words.

        Every field of a SignedEvent is static, so the ABI encoding is the selector, the array's
        offset and length, then ten words per event. web3's generic encoder took ~1 ms per event,
        which capped the submitter; a test proves both encodings equal.
        """
        words = [self._record_selector, _word(32), _word(len(events))]
        for signed in events:
            event = signed.event
            words += [
                event.subject,
                _word(int(event.kind)),
                event.event_hash,
                _address_word(event.counterpart),
                event.ref,
                _word(event.time),
                event.prev_head,
                _address_word(signed.signer),
                signed.r,
                signed.vs,
            ]
        return b"".join(words)

    def simulate_record(
        self, events: Sequence[SignedEvent], block: int | str = "latest"
    ) -> ContractRevert | None:
        """How `record(events)` would revert on the state after `block`, or None if it would pass."""
        call_ = {"from": self.chain.relayer.address, "to": self.address, "data": self.record_calldata(events)}
        try:
            self.chain.w3.eth.call(call_, block)  # type: ignore[arg-type]
        except Exception as exc:
            error = as_tracechain_error(exc)
            if isinstance(error, ContractRevert):
                return error
            raise
        return None

    @property
    def _record_selector(self) -> bytes:
        return bytes.fromhex(self.contract.encode_abi("record", [[]])[2:10])

    def recorded_events(
        self, from_block: int | None = None, to_block: int | str = "latest", subject: bytes | None = None
    ) -> list[RecordedEvent]:
        """EventRecorded logs (from its deployment unless told), decoded by slicing their words
        (web3's generic decoder took ~1 ms a log, which capped the indexer; a test proves both
        decodings equal)."""
        if from_block is None:
            from_block = self.deployed_at
        topics: list[Any] = [_EVENT_RECORDED_TOPIC] + (["0x" + subject.hex()] if subject is not None else [])
        if not self.chain.speaks_raw_json_rpc:  # eth-tester only speaks through web3's formatters
            params: FilterParams = {
                "address": self.address,
                "fromBlock": from_block,
                "toBlock": to_block,  # type: ignore[typeddict-item]
                "topics": topics,
            }
            return [_decode_recorded(log) for log in self.chain.w3.eth.get_logs(params)]
        raw = {
            "address": self.address,
            "fromBlock": hex(from_block),
            "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
            "topics": topics,
        }
        # The raw JSON-RPC answer: web3's result formatters cost as much as the decoding did.
        response = self.chain.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [raw])
        if "error" in response:
            raise ChainError(f"eth_getLogs failed: {response['error']}")
        return [_decode_recorded(log) for log in response["result"]]

    def grant_role_call(self, role: bytes, account: str) -> ContractFunction:
        """`grantRole(role, account)` unsent, for the outbox: the relayer, which must hold the admin
        role, signs and sends it with the outbox's nonces (`grant_role` sends one at once)."""
        return self.contract.functions.grantRole(role, to_checksum_address(account))


_EVENT_RECORDED_TOPIC = (
    "0x" + keccak(text="EventRecorded(bytes32,bytes32,address,uint8,address,bytes32,uint64,bytes32)").hex()
)


def _reports(reports: Any) -> list[Report]:
    return [Report(reporter, at, ordinal) for reporter, at, ordinal in reports]


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


@lru_cache(maxsize=4096)
def _checksummed(word: bytes) -> str:
    """An address from its 32-byte word; cached, since a few signers sign most events."""
    return to_checksum_address(word[12:])


def _raw_bytes(value: Any) -> bytes:
    """A JSON-RPC hex string (or bytes, as the in-process chain may answer) as bytes."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def _raw_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _decode_recorded(log: Any) -> RecordedEvent:
    topics, data = [_raw_bytes(topic) for topic in log["topics"]], _raw_bytes(log["data"])
    return RecordedEvent(
        subject=topics[1],
        event_hash=topics[2],
        signer=_checksummed(topics[3]),
        kind=Kind(int.from_bytes(data[0:32], "big")),
        counterpart=_checksummed(data[32:64]),
        ref=data[64:96],
        time=int.from_bytes(data[96:128], "big"),
        head=data[128:160],
        block_number=_raw_int(log["blockNumber"]),
        transaction_hash=_raw_bytes(log["transactionHash"]),
        log_index=_raw_int(log["logIndex"]),
    )


def _recorded(log: Any) -> RecordedEvent:
    args = log["args"]
    return RecordedEvent(
        subject=bytes(args["subject"]),
        event_hash=bytes(args["eventHash"]),
        signer=args["signer"],
        kind=Kind(args["kind"]),
        counterpart=args["counterpart"],
        ref=bytes(args["ref"]),
        time=args["time"],
        head=bytes(args["head"]),
        block_number=log["blockNumber"],
        transaction_hash=bytes(log["transactionHash"]),
        log_index=log["logIndex"],
    )


def anchored_batch(log: Any) -> AnchoredBatch:
    args = log["args"]
    return AnchoredBatch(
        root=bytes(args["root"]),
        anchorer=args["anchorer"],
        count=args["count"],
        block_number=log["blockNumber"],
        transaction_hash=bytes(log["transactionHash"]),
        log_index=log["logIndex"],
    )
