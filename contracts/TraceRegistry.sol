// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title TraceRegistry
/// @notice Records the signed supply-chain events of products, lots and logistic units (pallets,
/// containers) and keeps their custody on chain.
///
/// Every event is an EIP-712 typed struct signed by the participant that performed it. Anyone may
/// relay signed events, one or many per transaction; the contract checks each signature, the
/// signer's role and the custody rules, applies the event's effect and emits one
/// {EventRecorded} log per event.
///
/// Each subject keeps a head hash, `head = keccak256(abi.encode(previousHead, eventHash))`, starting
/// from zero, so anyone holding the logs can check that no event was dropped or reordered. That chain
/// holds the subject's facts: the kinds only the parties the rules name may record (its origin,
/// packing, custody, inspections, sale, recall, excursions). Observations (Observe, Withdraw), which
/// any participant may record, go on the reporter's own chain of the subject instead, keyed
/// `keccak256(abi.encode(subject, reporter))` ({observationHeadOf}): a participant can say what it saw
/// of anyone's product, but it can never move, race or hold up the chain of that product's facts.
///
/// Replay protection: a signer signs over the subject's current head (`prevHead`). Recording the
/// event moves the head, so the same signature can never match again, on this contract or, because
/// the EIP-712 domain binds chain id and contract address, on any other. This needs no nonce storage
/// and also fixes the order of a subject's events as their signers saw it. The cost: two parties
/// signing concurrently for one subject race, and the loser re-signs over the new head.
///
/// Aggregation (packing items into a case, cases onto a pallet) points a child at its parent; a
/// child's custody is its outermost parent's, so moving a pallet moves everything on it without
/// looping over the children.
///
/// Merkle-anchored mode, for high volume: an account holding ANCHORER_ROLE (the service's relayer)
/// records only the Merkle root of many signed events in one {anchor} transaction, a few dozen gas
/// per event. Anchored events are not applied: custody state and heads on chain stay as they are,
/// and the service enforces the same rules off chain before it signs them. Anyone holding an event,
/// its signature and its inclusion proof checks it with {verifyAnchored}: the root was anchored, the
/// proof leads from the event's leaf to it, the signature is the signer's and the signer holds the
/// role the kind asks for.
///
/// Trade facts: custody state is current state (a received pallet is sold on, a cleared one rejected
/// later), so the registry also remembers, for good, the facts a payment can rest on, as they happen.
/// Each is written once and never changed or cleared by a later event:
/// - per subject and party ({partyFactsOf}): when the party first received the subject (a Receive it
///   signed), how many excursions the subject had on record by then, and when a shipment of the
///   subject by the party was first received by the party it was shipped to (custody handed over: a
///   Ship alone is a proposal the shipper may still redirect, so it hands nothing over);
/// - per subject ({clearedAt}): when customs first recorded the verdict "cleared", whatever a later
///   inspection says;
/// - per subject ({excursionReportsOf}, {recallReportsOf}): the first {MAX_REPORTERS} distinct parties
///   that reported an excursion, and that recalled it, each with the time of its first report (and,
///   for excursions, the report's place among all the subject's excursion events, which orders it
///   against receipts exactly, even within one block). Only the parties the rules let report can take
///   a place: for an excursion the party then holding the subject, for a recall its manufacturer or an
///   auditor. A holder can fill the places with reports of its own only while it holds the subject, so
///   whoever reads them can tell a report made before a given party's first receipt from one after it.
/// Times are block timestamps (seconds); zero means "never". Facts are kept for the subject an event
/// names, not for what is packed in it or what it is packed in.
contract TraceRegistry is AccessControl, EIP712 {
    bytes32 public constant MANUFACTURER_ROLE = keccak256("MANUFACTURER_ROLE");
    bytes32 public constant CARRIER_ROLE = keccak256("CARRIER_ROLE");
    bytes32 public constant CUSTOMS_ROLE = keccak256("CUSTOMS_ROLE");
    bytes32 public constant RETAILER_ROLE = keccak256("RETAILER_ROLE");
    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR_ROLE");
    /// @notice May anchor Merkle roots of signed events (the service's relayer); not a participant role.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    /// @notice How many units an item may be packed in, one inside the other (case, pallet, container, ...).
    uint256 public constant MAX_PACKING_DEPTH = 8;

    /// @notice How many distinct reporters of excursions, and of recalls, a subject's facts remember.
    uint256 public constant MAX_REPORTERS = 3;

    /// @notice Inspection verdicts carried in `ref` of an Inspect event.
    bytes32 public constant VERDICT_CLEARED = bytes32(uint256(1));
    bytes32 public constant VERDICT_REJECTED = bytes32(uint256(2));

    /// @notice What an event does. The numbering is part of the signed data: never reorder.
    enum Kind {
        Observe, // any participant; recorded on its own chain of the subject, no custody effect
        Commission, // manufacturer creates the subject and holds it
        Aggregate, // custodian packs the subject into `ref` (created if new)
        Disaggregate, // custodian unpacks the subject from `ref`
        Ship, // custodian proposes custody to `counterpart`
        Receive, // the proposed receiver accepts custody
        Inspect, // customs records a verdict (`ref`: VERDICT_CLEARED or VERDICT_REJECTED)
        Sell, // retailer holding custody sells it to a consumer; custody ends
        Recall, // its manufacturer or an auditor recalls it, and what is packed in it (units: auditors only)
        Consume, // custodian consumes the subject as an ingredient of `ref` (transformation), or destroys it
        Excursion, // custodian reports a sensor reading outside the agreed range
        Withdraw // a participant withdraws an event it recorded (`ref`: its eventHash) as erroneous; auditors, anyone's
    }

    enum Status {
        Unknown,
        Active,
        Sold,
        Consumed
    }

    /// @notice The signed part of an event. `kind` is a {Kind}; `counterpart` and `ref` mean what
    /// the kind says and are zero otherwise (Ship: the proposed receiver; Withdraw: the withdrawn
    /// event's signer and eventHash); `time` is the event time in seconds since the epoch; `prevHead`
    /// is the head of the chain the event joins (see {chainOf}).
    struct TraceEvent {
        bytes32 subject;
        uint8 kind;
        bytes32 eventHash;
        address counterpart;
        bytes32 ref;
        uint64 time;
        bytes32 prevHead;
    }

    /// @notice An event with its signer and compact (EIP-2098) signature.
    struct SignedEvent {
        TraceEvent ev;
        address signer;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice A subject's state as {productOf} reports it, custody resolved through its parents.
    struct ProductView {
        Status status;
        address manufacturer;
        address custodian;
        address pendingReceiver;
        bytes32 parent;
        bool recalled;
        bool cleared;
        uint16 excursions;
        bytes32 head;
    }

    /// @notice A subject's own stored state, nothing resolved through its parents: what an off-chain
    /// copy of the custody rules needs to take the subject up again. `recalled` is its own flag (see
    /// {productOf} for a recall inherited from its units); `custodian` is zero while its manufacturer
    /// holds it; `pendingReceiver` is set on a shipped subject, not on what is packed in it.
    struct UnitView {
        Status status;
        address manufacturer;
        bool recalled;
        bool cleared;
        uint16 excursions;
        uint8 height;
        bool packedUnit;
        address custodian;
        address pendingReceiver;
        bytes32 parent;
        bytes32 head;
    }

    /// @notice Where and how big an anchored batch is; `count` is zero for a root never anchored.
    struct Anchor {
        uint64 blockNumber;
        uint64 timestamp;
        uint32 count;
    }

    /// @notice What the registry remembers for good about one party and one subject (see the contract's
    /// notice). Times are block timestamps; zero: not yet.
    /// @param receivedAt The party's first receipt of the subject (a Receive it signed).
    /// @param handedOverAt The first receipt, by the party it was shipped to, of a shipment of the
    /// subject by this party: custody passed from it to someone else.
    /// @param excursionsBeforeReceipt How many excursion events the subject had on record at the
    /// party's first receipt: a report whose `ordinal` is at most this came before it.
    struct PartyFacts {
        uint64 receivedAt;
        uint64 handedOverAt;
        uint16 excursionsBeforeReceipt;
    }

    /// @notice One party's first report about a subject (see {excursionReportsOf}, {recallReportsOf}).
    /// @param at Block timestamp of the report.
    /// @param ordinal For an excursion, its place among all the subject's excursion events (1: the
    /// first); zero for a recall.
    struct Report {
        address reporter;
        uint64 at;
        uint16 ordinal;
    }

    struct Product {
        address manufacturer;
        Status status;
        bool recalled;
        bool cleared;
        uint16 excursions;
        uint8 height; // levels of packing below it, at the most it has held
        bool packedUnit; // came into being by packing (a pallet's SSCC), not by commissioning
        uint40 handedOverAt; // its manufacturer's first handover of it (see {partyFactsOf}): no slot of its own
    }

    /// @dev A subject's last recorded custodian (zero while its manufacturer holds it from the start),
    /// with the time of its receipt of the subject and the excursions on record then, when it came by
    /// a receipt (zero when by unpacking). The receipt moves to the party's own {PartyFacts} when
    /// custody moves on, so a handover writes one new slot (the sender's), not two.
    struct Holder {
        address custodian;
        uint40 receivedAt;
        uint16 excursionsBeforeReceipt;
    }

    /// @dev The last role a signer was found to hold within one {record} call (`_ANY_PARTICIPANT`:
    /// some participant role). Roles cannot change during the call (it makes no external call but
    /// to the ecrecover precompile), and a relayed batch is mostly one party's run of events, so
    /// each run looks its signer's roles up once instead of once per event (up to five lookups).
    struct RoleMemo {
        address signer;
        bytes32 role;
    }

    bytes32 private constant _ANY_PARTICIPANT = keccak256("any participant role");

    bytes32 private constant _TRACE_EVENT_TYPEHASH =
        keccak256(
            "TraceEvent(bytes32 subject,uint8 kind,bytes32 eventHash,address counterpart,bytes32 ref,uint64 time,bytes32 prevHead)"
        );

    mapping(bytes32 subject => Product) private _products;
    /// @dev Keyed by chain ({chainOf}): a subject's facts, or one reporter's observations of it.
    mapping(bytes32 chain => bytes32) private _heads;
    mapping(bytes32 subject => bytes32) private _parents;
    /// @dev Written lazily: zero while the manufacturer still holds an active subject, which saves
    /// a storage slot on every commissioning.
    mapping(bytes32 subject => Holder) private _holders;
    mapping(bytes32 subject => address) private _pendingReceivers;
    mapping(bytes32 root => Anchor) private _anchors;
    mapping(bytes32 subject => mapping(address party => PartyFacts)) private _partyFacts;
    mapping(bytes32 subject => uint64) private _clearedAt;
    mapping(bytes32 subject => Report[MAX_REPORTERS]) private _excursionReports;
    mapping(bytes32 subject => Report[MAX_REPORTERS]) private _recallReports;

    /// @notice Emitted once per recorded event, after its effect is applied.
    /// @param head The subject's head hash after this event.
    event EventRecorded(
        bytes32 indexed subject,
        bytes32 indexed eventHash,
        address indexed signer,
        Kind kind,
        address counterpart,
        bytes32 ref,
        uint64 time,
        bytes32 head
    );

    /// @notice Emitted once per {anchor}: `count` signed events are the leaves under `root`.
    event BatchAnchored(bytes32 indexed root, address indexed anchorer, uint32 count);

    error TraceRegistryEmptyBatch();
    error TraceRegistryAlreadyAnchored(bytes32 root, uint64 blockNumber);
    error TraceRegistryUnknownKind(bytes32 subject, uint8 kind);
    error TraceRegistryInvalidSignature(bytes32 subject, address signer, address recovered);
    error TraceRegistryStaleHead(bytes32 subject, bytes32 head, bytes32 signedHead);
    error TraceRegistryNotParticipant(address signer);
    error TraceRegistryMissingRole(address signer, bytes32 role);
    error TraceRegistryNotManufacturerOrAuditor(bytes32 subject, address signer, address manufacturer);
    error TraceRegistryAlreadyCommissioned(bytes32 subject);
    error TraceRegistryUnknownSubject(bytes32 subject);
    error TraceRegistryNotActive(bytes32 subject, Status status);
    error TraceRegistryNotCustodian(bytes32 subject, address caller, address custodian);
    error TraceRegistryNotProposedReceiver(bytes32 subject, address caller, address proposedReceiver);
    error TraceRegistryInvalidReceiver(bytes32 subject, address receiver);
    error TraceRegistryInTransit(bytes32 subject, address proposedReceiver);
    error TraceRegistryPacked(bytes32 subject, bytes32 parent);
    error TraceRegistryNotPackedIn(bytes32 subject, bytes32 expectedParent, bytes32 actualParent);
    error TraceRegistryInvalidParent(bytes32 subject, bytes32 parent);
    error TraceRegistryPackingCycle(bytes32 subject, bytes32 parent);
    error TraceRegistryPackingTooDeep(bytes32 subject, uint256 maxDepth);
    error TraceRegistryInvalidVerdict(bytes32 subject, bytes32 verdict);
    error TraceRegistryInvalidWithdrawal(bytes32 subject, bytes32 withdrawnEventHash);
    error TraceRegistryNotSignerOrAuditor(bytes32 subject, address signer, address withdrawnSigner);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and so may grant and revoke participant roles.
    constructor(address admin) EIP712("TraceRegistry", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- recording

    /// @notice Records a batch of signed events in order, atomically.
    /// @dev Anyone may relay: authority comes from each event's signature, not from the sender.
    /// Requirements, per event: a known kind; a valid signature by `signer` over the current head of
    /// the chain the event joins ({chainOf}); the role and custody the kind asks for (see {Kind}).
    /// The first event that fails reverts the whole batch with its reason.
    /// Emits one {EventRecorded} per event.
    function record(SignedEvent[] calldata events) external {
        if (events.length == 0) revert TraceRegistryEmptyBatch();
        RoleMemo memory roles;
        for (uint256 i = 0; i < events.length; ++i) {
            _record(events[i], roles);
        }
    }

    function _record(SignedEvent calldata signed, RoleMemo memory roles) private {
        TraceEvent calldata ev = signed.ev;
        bytes32 subject = ev.subject;
        if (ev.kind > uint8(type(Kind).max)) revert TraceRegistryUnknownKind(subject, ev.kind);

        (address recovered, ECDSA.RecoverError failure, ) = ECDSA.tryRecover(
            _hashTypedDataV4(_hashTraceEvent(ev)),
            signed.r,
            signed.vs
        );
        if (failure != ECDSA.RecoverError.NoError || recovered != signed.signer) {
            revert TraceRegistryInvalidSignature(subject, signed.signer, recovered);
        }
        Kind kind = Kind(ev.kind);
        bytes32 chain = _chainOf(subject, kind, signed.signer);
        bytes32 head = _heads[chain];
        if (ev.prevHead != head) revert TraceRegistryStaleHead(subject, head, ev.prevHead);

        _apply(kind, ev, signed.signer, roles);

        head = keccak256(abi.encode(head, ev.eventHash));
        _heads[chain] = head;
        emit EventRecorded(subject, ev.eventHash, signed.signer, kind, ev.counterpart, ev.ref, ev.time, head);
    }

    function _apply(Kind kind, TraceEvent calldata ev, address signer, RoleMemo memory roles) private {
        if (kind == Kind.Commission) {
            _requireRole(MANUFACTURER_ROLE, signer, roles);
            _commission(ev.subject, signer);
        } else if (kind == Kind.Recall) {
            _recall(ev.subject, signer);
        } else if (kind == Kind.Inspect) {
            _requireRole(CUSTOMS_ROLE, signer, roles);
            _inspect(ev.subject, ev.ref);
        } else {
            _checkParticipant(signer, roles);
            if (kind == Kind.Aggregate) _aggregate(ev.subject, ev.ref, signer);
            else if (kind == Kind.Disaggregate) _disaggregate(ev.subject, ev.ref, signer);
            else if (kind == Kind.Ship) _ship(ev.subject, ev.counterpart, signer);
            else if (kind == Kind.Receive) _receive(ev.subject, signer);
            else if (kind == Kind.Sell) _sell(ev.subject, signer, roles);
            else if (kind == Kind.Consume) _consume(ev.subject, signer);
            else if (kind == Kind.Excursion) _excursion(ev.subject, signer);
            else if (kind == Kind.Withdraw) _withdraw(ev.subject, ev.counterpart, ev.ref, signer);
            // Kind.Observe: signed and chained on the reporter's own chain, no custody effect.
        }
    }

    // ---------------------------------------------------------------- anchoring

    /// @notice Records the Merkle root of a batch of `count` signed events, without applying them.
    /// @dev Leaves are {anchoredLeaf} of each event; inner nodes hash sorted pairs, as OpenZeppelin's
    /// {MerkleProof} expects. The contract cannot see the leaves, so `count` is the anchorer's claim,
    /// kept for statistics; what an anchor proves is that whoever holds a leaf and its proof held it
    /// when this block was made. Requirements: the caller holds ANCHORER_ROLE; `count` is not zero;
    /// the root was not anchored before (a block number and time per root, never overwritten).
    /// Emits {BatchAnchored}.
    function anchor(bytes32 root, uint32 count) external onlyRole(ANCHORER_ROLE) {
        if (count == 0) revert TraceRegistryEmptyBatch();
        Anchor storage existing = _anchors[root];
        if (existing.count != 0) revert TraceRegistryAlreadyAnchored(root, existing.blockNumber);
        _anchors[root] = Anchor(uint64(block.number), uint64(block.timestamp), count);
        emit BatchAnchored(root, msg.sender, count);
    }

    /// @notice Whether `signed` is a leaf of the anchored batch `root`, signed by its signer, who holds
    /// the role its kind asks for (Commission: manufacturer; Inspect: customs; Sell: retailer; Recall:
    /// manufacturer or auditor; any other: any participant role), today, and (Withdraw) withdraws an
    /// event of its own unless it is an auditor.
    /// @dev Custody is not checked here: anchored events change no state on chain, so their custody
    /// continuity is checked off chain, over the subject's signed head chain. Never reverts on a
    /// false claim; returns false.
    function verifyAnchored(
        SignedEvent calldata signed,
        bytes32[] calldata proof,
        bytes32 root
    ) external view returns (bool) {
        if (_anchors[root].count == 0) return false;
        TraceEvent calldata ev = signed.ev;
        if (ev.kind > uint8(type(Kind).max)) return false;
        bytes32 digest = _hashTypedDataV4(_hashTraceEvent(ev));
        (address recovered, ECDSA.RecoverError failure, ) = ECDSA.tryRecover(digest, signed.r, signed.vs);
        if (failure != ECDSA.RecoverError.NoError || recovered != signed.signer) return false;
        if (!_holdsRoleFor(Kind(ev.kind), signed.signer)) return false;
        if (_anchoredRuleBroken(ev, signed.signer)) return false;
        return MerkleProof.verifyCalldata(proof, root, _leaf(digest, signed.signer, signed.r, signed.vs));
    }

    /// @notice The Merkle leaf of a signed event in an anchored batch.
    /// @dev `keccak256(bytes.concat(keccak256(abi.encode(digest, signer, r, vs))))`, where `digest` is
    /// the event's EIP-712 digest (so a leaf is bound to this chain and this contract). Hashing twice,
    /// as OpenZeppelin's StandardMerkleTree does, separates leaves from inner nodes: an inner node is
    /// keccak256 of 64 bytes, a leaf keccak256 of a 32-byte hash, so no inner node can be presented as
    /// a leaf (that would take a keccak256 collision between a 32- and a 64-byte input), and a proof
    /// for a subtree never verifies as a proof of an event.
    function anchoredLeaf(SignedEvent calldata signed) external view returns (bytes32) {
        return _leaf(_hashTypedDataV4(_hashTraceEvent(signed.ev)), signed.signer, signed.r, signed.vs);
    }

    /// @notice The block, time and size of the anchored batch `root`; zeros if it was never anchored.
    function anchorOf(bytes32 root) external view returns (Anchor memory) {
        return _anchors[root];
    }

    function _leaf(bytes32 digest, address signer, bytes32 r, bytes32 vs) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(digest, signer, r, vs))));
    }

    function _holdsRoleFor(Kind kind, address signer) private view returns (bool) {
        if (kind == Kind.Commission) return hasRole(MANUFACTURER_ROLE, signer);
        if (kind == Kind.Inspect) return hasRole(CUSTOMS_ROLE, signer);
        if (kind == Kind.Sell) return hasRole(RETAILER_ROLE, signer);
        if (kind == Kind.Recall) return hasRole(MANUFACTURER_ROLE, signer) || hasRole(AUDITOR_ROLE, signer);
        return _isParticipant(signer);
    }

    /// @dev Whether a verifyAnchored event's own fields break its kind's rule (none but Withdraw's).
    function _anchoredRuleBroken(TraceEvent calldata ev, address signer) private view returns (bool) {
        if (Kind(ev.kind) != Kind.Withdraw) return false;
        return ev.ref == bytes32(0) || (ev.counterpart != signer && !hasRole(AUDITOR_ROLE, signer));
    }

    // ---------------------------------------------------------------- effects

    function _commission(bytes32 subject, address manufacturer) private {
        if (_products[subject].status != Status.Unknown) revert TraceRegistryAlreadyCommissioned(subject);
        _products[subject] = Product(manufacturer, Status.Active, false, false, 0, 0, false, 0);
    }

    function _aggregate(bytes32 child, bytes32 parent, address signer) private {
        if (parent == bytes32(0)) revert TraceRegistryInvalidParent(child, parent);
        _checkFreeCustodian(child, signer);
        bytes32 currentParent = _parents[child];
        if (currentParent != bytes32(0)) revert TraceRegistryPacked(child, currentParent);

        if (_products[parent].status == Status.Unknown) {
            // A new logistic unit (a pallet's SSCC) comes into being when something is packed on it.
            _products[parent] = Product(signer, Status.Active, false, false, 0, 0, true, 0);
        } else {
            _checkFreeCustodian(parent, signer);
        }
        // The deepest thing inside the child ends up `height + ancestors` levels down.
        uint256 childHeight = _products[child].height;
        uint256 ancestors = 0;
        for (bytes32 ancestor = parent; ancestor != bytes32(0); ancestor = _parents[ancestor]) {
            if (ancestor == child) revert TraceRegistryPackingCycle(child, parent);
            if (++ancestors + childHeight > MAX_PACKING_DEPTH) {
                revert TraceRegistryPackingTooDeep(child, MAX_PACKING_DEPTH);
            }
        }
        _parents[child] = parent;
        // Heights only grow: unpacking leaves them, which keeps the limit conservative and cheap.
        uint8 height = uint8(childHeight + 1);
        for (bytes32 unit = parent; unit != bytes32(0) && _products[unit].height < height; unit = _parents[unit]) {
            _products[unit].height = height;
            ++height;
        }
    }

    function _disaggregate(bytes32 child, bytes32 parent, address signer) private {
        _checkFreeCustodian(child, signer);
        bytes32 currentParent = _parents[child];
        if (currentParent == bytes32(0) || currentParent != parent) {
            revert TraceRegistryNotPackedIn(child, parent, currentParent);
        }
        // The child leaves with what it inherited from its parents: custody and any recall.
        if (_recalledThroughParents(child)) _products[child].recalled = true;
        delete _parents[child];
        Holder memory previous = _holders[child];
        if (previous.custodian != signer) {
            // The unpacker holds it now, but did not receive it: a receipt held here goes to its party.
            _keepReceipt(child, previous);
            _holders[child] = Holder(signer, 0, 0);
        }
    }

    function _ship(bytes32 subject, address receiver, address signer) private {
        _checkActive(subject);
        bytes32 parent = _parents[subject];
        if (parent != bytes32(0)) revert TraceRegistryPacked(subject, parent);
        address custodian = _custodianOfRoot(subject);
        if (signer != custodian) revert TraceRegistryNotCustodian(subject, signer, custodian);
        if (receiver == address(0) || receiver == signer) revert TraceRegistryInvalidReceiver(subject, receiver);
        // A custodian may redirect a shipment that was not yet received.
        _pendingReceivers[subject] = receiver;
    }

    function _receive(bytes32 subject, address signer) private {
        _checkActive(subject);
        bytes32 parent = _parents[subject];
        if (parent != bytes32(0)) revert TraceRegistryPacked(subject, parent);
        address proposed = _pendingReceivers[subject];
        if (signer != proposed) revert TraceRegistryNotProposedReceiver(subject, signer, proposed);
        delete _pendingReceivers[subject];

        // Unpacked, so the subject is its own root; a pending shipment kept its custodian from changing.
        Product storage product = _products[subject];
        Holder memory previous = _holders[subject];
        address manufacturer = product.manufacturer;
        address sender = previous.custodian == address(0) ? manufacturer : previous.custodian;
        if (sender == manufacturer) {
            if (product.handedOverAt == 0) product.handedOverAt = uint40(block.timestamp);
            _keepReceipt(subject, previous);
        } else {
            // One write of the sender's facts: its receipt held in `previous`, and this handover.
            PartyFacts memory sent = _partyFacts[subject][sender];
            bool changed = sent.handedOverAt == 0;
            if (changed) sent.handedOverAt = uint64(block.timestamp);
            if (sent.receivedAt == 0 && previous.receivedAt != 0) {
                sent.receivedAt = previous.receivedAt;
                sent.excursionsBeforeReceipt = previous.excursionsBeforeReceipt;
                changed = true;
            }
            if (changed) _partyFacts[subject][sender] = sent;
        }
        _holders[subject] = Holder(signer, uint40(block.timestamp), product.excursions);
    }

    /// @dev Moves the receipt a Holder record holds to its party's own facts, unless it has an earlier one.
    function _keepReceipt(bytes32 subject, Holder memory holder) private {
        if (holder.receivedAt == 0) return;
        PartyFacts storage facts = _partyFacts[subject][holder.custodian];
        if (facts.receivedAt != 0) return;
        facts.receivedAt = holder.receivedAt;
        facts.excursionsBeforeReceipt = holder.excursionsBeforeReceipt;
    }

    function _inspect(bytes32 subject, bytes32 verdict) private {
        _checkActive(subject);
        if (verdict != VERDICT_CLEARED && verdict != VERDICT_REJECTED) {
            revert TraceRegistryInvalidVerdict(subject, verdict);
        }
        bool cleared = verdict == VERDICT_CLEARED;
        _products[subject].cleared = cleared;
        if (cleared && _clearedAt[subject] == 0) _clearedAt[subject] = uint64(block.timestamp);
    }

    function _sell(bytes32 subject, address signer, RoleMemo memory roles) private {
        _requireRole(RETAILER_ROLE, signer, roles);
        _checkFreeCustodian(subject, signer);
        // An item sold out of a case leaves the case; recording an unpacking first is not required.
        if (_parents[subject] != bytes32(0)) {
            if (_recalledThroughParents(subject)) _products[subject].recalled = true;
            delete _parents[subject];
        }
        _products[subject].status = Status.Sold;
    }

    function _recall(bytes32 subject, address signer) private {
        Product storage product = _products[subject];
        if (product.status == Status.Unknown) revert TraceRegistryUnknownSubject(subject);
        // Whoever packs a pallet "made" it, but not what is on it: a recall of a packed unit reaches
        // every item on it, so only an auditor may recall one.
        address manufacturer = product.packedUnit ? address(0) : product.manufacturer;
        if (signer != manufacturer && !hasRole(AUDITOR_ROLE, signer)) {
            revert TraceRegistryNotManufacturerOrAuditor(subject, signer, manufacturer);
        }
        product.recalled = true;
        _report(_recallReports[subject], signer, 0);
    }

    function _consume(bytes32 subject, address signer) private {
        _checkFreeCustodian(subject, signer);
        bytes32 parent = _parents[subject];
        if (parent != bytes32(0)) revert TraceRegistryPacked(subject, parent);
        _products[subject].status = Status.Consumed;
    }

    function _excursion(bytes32 subject, address signer) private {
        _checkActive(subject);
        address custodian = _custodianOf(subject);
        if (signer != custodian) revert TraceRegistryNotCustodian(subject, signer, custodian);
        Product storage product = _products[subject];
        uint16 excursions = product.excursions;
        if (excursions < type(uint16).max) product.excursions = ++excursions;
        _report(_excursionReports[subject], signer, excursions);
    }

    /// @dev Keeps the reporter's first report if it is among the first MAX_REPORTERS distinct ones.
    function _report(Report[MAX_REPORTERS] storage reports, address reporter, uint16 ordinal) private {
        for (uint256 i = 0; i < MAX_REPORTERS; ++i) {
            address known = reports[i].reporter;
            if (known == reporter) return;
            if (known == address(0)) {
                reports[i] = Report(reporter, uint64(block.timestamp), ordinal);
                return;
            }
        }
    }

    /// @dev The registry cannot know who signed the withdrawn event without storing every event's
    /// signer, so the withdrawal names it (`counterpart`) and this checks the name against the signer:
    /// a participant withdraws only what it says is its own, an auditor anyone's. Whether the named
    /// signer really recorded `ref` is checked by whoever reads the withdrawal against the withdrawn
    /// event's own log (tracechain's trace and `tracechain verify` do); a withdrawal naming the wrong
    /// signer withdraws nothing.
    function _withdraw(bytes32 subject, address withdrawnSigner, bytes32 withdrawnEventHash, address signer) private view {
        if (withdrawnEventHash == bytes32(0)) revert TraceRegistryInvalidWithdrawal(subject, withdrawnEventHash);
        if (withdrawnSigner != signer && !hasRole(AUDITOR_ROLE, signer)) {
            revert TraceRegistryNotSignerOrAuditor(subject, signer, withdrawnSigner);
        }
    }

    // ---------------------------------------------------------------- checks

    /// @dev Any role remembered for the signer is a participant role (only those are remembered).
    function _checkParticipant(address signer, RoleMemo memory roles) private view {
        if (roles.signer == signer) return;
        if (!_isParticipant(signer)) revert TraceRegistryNotParticipant(signer);
        (roles.signer, roles.role) = (signer, _ANY_PARTICIPANT);
    }

    function _isParticipant(address signer) private view returns (bool) {
        return
            hasRole(MANUFACTURER_ROLE, signer) ||
            hasRole(CARRIER_ROLE, signer) ||
            hasRole(CUSTOMS_ROLE, signer) ||
            hasRole(RETAILER_ROLE, signer) ||
            hasRole(AUDITOR_ROLE, signer);
    }

    /// @dev Unlike AccessControl's `_checkRole`, this reverts with an error that names the signer.
    function _requireRole(bytes32 role, address signer, RoleMemo memory roles) private view {
        if (roles.signer == signer && roles.role == role) return;
        if (!hasRole(role, signer)) revert TraceRegistryMissingRole(signer, role);
        (roles.signer, roles.role) = (signer, role);
    }

    function _checkActive(bytes32 subject) private view {
        Status status = _products[subject].status;
        if (status == Status.Unknown) revert TraceRegistryUnknownSubject(subject);
        if (status != Status.Active) revert TraceRegistryNotActive(subject, status);
    }

    /// @dev The signer holds the subject (through its parents) and no shipment of it is pending.
    function _checkFreeCustodian(bytes32 subject, address signer) private view {
        _checkActive(subject);
        bytes32 root = _rootOf(subject);
        address custodian = _custodianOfRoot(root);
        if (signer != custodian) revert TraceRegistryNotCustodian(subject, signer, custodian);
        address proposed = _pendingReceivers[root];
        if (proposed != address(0)) revert TraceRegistryInTransit(subject, proposed);
    }

    // ---------------------------------------------------------------- reading

    function _rootOf(bytes32 subject) private view returns (bytes32 root) {
        root = subject;
        for (bytes32 parent = _parents[root]; parent != bytes32(0); parent = _parents[root]) {
            root = parent;
        }
    }

    function _custodianOf(bytes32 subject) private view returns (address) {
        return _custodianOfRoot(_rootOf(subject));
    }

    function _custodianOfRoot(bytes32 root) private view returns (address) {
        if (_products[root].status != Status.Active) return address(0);
        address custodian = _holders[root].custodian;
        return custodian == address(0) ? _products[root].manufacturer : custodian;
    }

    function _recalledThroughParents(bytes32 subject) private view returns (bool) {
        for (bytes32 unit = subject; unit != bytes32(0); unit = _parents[unit]) {
            if (_products[unit].recalled) return true;
        }
        return false;
    }

    function _chainOf(bytes32 subject, Kind kind, address signer) private pure returns (bytes32) {
        if (kind == Kind.Observe || kind == Kind.Withdraw) return keccak256(abi.encode(subject, signer));
        return subject;
    }

    function _hashTraceEvent(TraceEvent calldata ev) private pure returns (bytes32) {
        return
            keccak256(
                abi.encode(
                    _TRACE_EVENT_TYPEHASH,
                    ev.subject,
                    ev.kind,
                    ev.eventHash,
                    ev.counterpart,
                    ev.ref,
                    ev.time,
                    ev.prevHead
                )
            );
    }

    /// @notice The head of the subject's chain of facts: zero before its first.
    function headOf(bytes32 subject) external view returns (bytes32) {
        return _heads[subject];
    }

    /// @notice The head of `reporter`'s chain of observations of the subject: zero before its first.
    function observationHeadOf(bytes32 subject, address reporter) external view returns (bytes32) {
        return _heads[keccak256(abi.encode(subject, reporter))];
    }

    /// @notice The chain an event of `kind` by `signer` joins: the subject's own for facts, the
    /// signer's chain of the subject for observations (Observe, Withdraw).
    function chainOf(bytes32 subject, Kind kind, address signer) external pure returns (bytes32) {
        return _chainOf(subject, kind, signer);
    }

    /// @notice The subject's state with custody, pending receiver and recall resolved through the
    /// units it is packed in. Unknown subjects report `Status.Unknown` and zeros.
    function productOf(bytes32 subject) external view returns (ProductView memory view_) {
        Product memory product = _products[subject];
        bytes32 root = _rootOf(subject);
        view_ = ProductView({
            status: product.status,
            manufacturer: product.manufacturer,
            custodian: _custodianOfRoot(root),
            pendingReceiver: _pendingReceivers[root],
            parent: _parents[subject],
            recalled: _recalledThroughParents(subject),
            cleared: product.cleared,
            excursions: product.excursions,
            head: _heads[subject]
        });
    }

    /// @notice The subject's own stored state (see {UnitView}); zeros for an unknown subject.
    function unitOf(bytes32 subject) external view returns (UnitView memory) {
        Product memory product = _products[subject];
        return
            UnitView({
                status: product.status,
                manufacturer: product.manufacturer,
                recalled: product.recalled,
                cleared: product.cleared,
                excursions: product.excursions,
                height: product.height,
                packedUnit: product.packedUnit,
                custodian: _holders[subject].custodian,
                pendingReceiver: _pendingReceivers[subject],
                parent: _parents[subject],
                head: _heads[subject]
            });
    }

    /// @notice What the registry remembers for good about `party` and the subject (see {PartyFacts});
    /// zeros for a party that never received it nor handed it over.
    function partyFactsOf(bytes32 subject, address party) external view returns (PartyFacts memory facts) {
        facts = _partyFacts[subject][party];
        if (facts.receivedAt == 0) {
            Holder memory holder = _holders[subject];
            if (holder.custodian == party && holder.receivedAt != 0) {
                facts.receivedAt = holder.receivedAt;
                facts.excursionsBeforeReceipt = holder.excursionsBeforeReceipt;
            }
        }
        Product storage product = _products[subject];
        if (party == product.manufacturer) facts.handedOverAt = product.handedOverAt;
    }

    /// @notice When customs first recorded the verdict "cleared" for the subject (block timestamp);
    /// zero if it never did. A later rejection does not change it: see {productOf} for the latest verdict.
    function clearedAt(bytes32 subject) external view returns (uint64) {
        return _clearedAt[subject];
    }

    /// @notice The first {MAX_REPORTERS} distinct parties that reported an excursion of the subject,
    /// in the order they first did, each with its first report (none: an empty array).
    /// @dev Only the party holding the subject may report one, so a party can take a place only while
    /// it holds the subject: a reader comparing `ordinal` with a party's
    /// {PartyFacts-excursionsBeforeReceipt} knows whether a report came before that party's first
    /// receipt. Reports beyond the first MAX_REPORTERS reporters are counted in `excursions` and
    /// logged, not remembered here. The count stops at 65,535, and so do ordinals: a report numbered
    /// 65,535 cannot be ordered against a receipt made after that many.
    function excursionReportsOf(bytes32 subject) external view returns (Report[] memory) {
        return _filled(_excursionReports[subject]);
    }

    /// @notice The first {MAX_REPORTERS} distinct parties that recalled the subject itself (its
    /// manufacturer or auditors; a recall of a unit it is packed in is not one), each with its first
    /// recall (none: an empty array).
    function recallReportsOf(bytes32 subject) external view returns (Report[] memory) {
        return _filled(_recallReports[subject]);
    }

    /// @dev The places taken (they fill from the first), reading no empty one past the first.
    function _filled(Report[MAX_REPORTERS] storage places) private view returns (Report[] memory reports) {
        uint256 count = 0;
        while (count < MAX_REPORTERS && places[count].reporter != address(0)) ++count;
        reports = new Report[](count);
        for (uint256 i = 0; i < count; ++i) reports[i] = places[i];
    }

    /// @notice The EIP-712 digest a signer signs for `ev`, for off-chain signers to check theirs.
    function eventDigest(TraceEvent calldata ev) external view returns (bytes32) {
        return _hashTypedDataV4(_hashTraceEvent(ev));
    }
}
