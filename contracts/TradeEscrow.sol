// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {TraceRegistry} from "./TraceRegistry.sol";

/// @title TradeEscrow
/// @notice Holds a buyer's ERC-20 payment for a shipment and pays it to the seller by milestones that
/// {TraceRegistry} records as facts, refunds it after a missed deadline, applies agreed penalties on
/// an excursion or a recall reported by a party other than the buyer, and lets an agreed arbiter
/// split it in a dispute that times out.
///
/// An order pays `amount` of `token` in up to three milestones, each a share in basis points of the
/// amount, the shares summing to 10,000 (FOB-like 3000/0/7000, DAP-like 0/0/10000). A milestone
/// whose share is zero is not part of the order. The buyer proposes the terms ({createOrder}), the
/// seller accepts them, arbiter and dispute window included ({acceptOrder}), and only then may the
/// buyer fund the order.
///
/// Milestones rest on facts the registry writes once, when they happen, and never changes
/// ({TraceRegistry-partyFactsOf}, {TraceRegistry-clearedAt}), never on current custody state:
/// - Shipped: the seller handed the shipment over: a shipment of it signed by the seller was
///   received by the party it was shipped to (a carrier, the receiver, anyone who signs the receipt).
///   A proposal alone, a shipment redirected before receipt, consuming or selling the pallet, or a
///   shipment by anyone else is not one.
/// - CustomsCleared: customs recorded the verdict "cleared" for the shipment at least once.
/// - Received: the order's receiving address signed a receipt of the shipment at least once.
/// The shipment must travel as itself: facts are kept for the subject an event names, so a pallet
/// moved only inside a container is neither shipped nor received by its own record.
///
/// Penalties: an order may agree a share of the amount (basis points) to refund to the buyer on a
/// temperature excursion and another on a recall. They count only when reported by a party other
/// than the buyer and its receiving address ({TraceRegistry-excursionReportsOf},
/// {TraceRegistry-recallReportsOf}, which keep the first three distinct reporters), and an excursion
/// only when reported before the receiver's first receipt of the shipment (only the party holding the
/// goods may report one, so: while the seller or a carrier held them). Each is applied at most once
/// and refunds `amount * penaltyBps / 10_000`, capped at what is still unreleased. Milestones already
/// released stay paid; every milestone not yet released shrinks in the same proportion, because a
/// release pays `unreleased * milestoneBps / unreleasedBps` (the last milestone pays all that is left,
/// so rounding leaves no dust). Example: 1,000 dUSD at 3000/0/7000 with a 2,000 bps excursion
/// penalty: Shipped pays 300, the excursion refunds 200, Received pays the remaining 500.
///
/// Disputes: an order with an arbiter has a dispute window (1 hour to 365 days) agreed with it. Once
/// per order the buyer or the seller may open a dispute, which freezes the order until the arbiter
/// splits what is left or the window ends; then anyone may end it and the rules above resume.
///
/// Invariants (tests/contracts/test_trade_escrow_properties.py checks them on random sequences):
/// 1. Delivered goods are paid for: once the receiver has received the shipment, no sequence of the
///    buyer's (or the receiver's) own actions keeps from the seller more than the penalties due on
///    reports by other parties: the buyer's own excursion or recall reports trigger nothing, later
///    sales, consumption or onward shipments leave Received met, and {reclaim} is refused for good.
/// 2. Nothing is paid for goods not shipped: the seller is paid Shipped only after it handed the
///    shipment over, CustomsCleared only after customs cleared it, Received only after the receiver
///    received it, whatever the seller does. Once Received is released, Shipped and
///    CustomsCleared count as met, so no order with a released Received milestone is left holding
///    funds no condition will ever free.
/// 3. Penalties come first: {release} applies every penalty due before it pays (and pays nothing if
///    they took the rest), so releasing early never beats a penalty that is already reported.
/// 4. No funds are frozen for good: a dispute ends when its agreed window does; an order the seller
///    never accepted holds nothing; a funded order is either paid out by its milestones, refunded by
///    penalties, or reclaimable by the buyer after the deadline while the receiver has not received
///    the shipment and it is not on its way to the receiver.
/// 5. Accounting: for every funded order `paid + refunded + unreleased == amount`; the escrow's
///    balance of a token is the sum of `unreleased` over its open orders in that token. An order
///    closes when nothing is left in it.
///
/// Deadline: once it has passed, the buyer may take back everything unreleased, unless the receiver
/// has ever received the shipment (delivered goods are paid for: anyone can release Received
/// instead, late or not) or a shipment of it to the receiver is pending (goods at the door are
/// received and paid, or sent back, before the money goes back). Until the buyer does, milestones
/// whose conditions hold can still be released.
///
/// Tokens: the escrow must receive exactly `amount` when an order is funded, so fee-on-transfer
/// tokens are rejected at funding; tokens that return nothing from `transfer` (USDT) work through
/// SafeERC20. A token that can block transfers to an address (a blacklist) can hold up a payment
/// to that address.
///
/// Every function that moves tokens or changes an existing order is `nonReentrant` (OpenZeppelin's
/// transient-storage guard: Cancun runs on every chain tracechain supports) and follows
/// checks-effects-interactions.
contract TradeEscrow is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The whole of an order's amount, in basis points.
    uint16 public constant BPS = 10_000;
    /// @notice The shortest and longest dispute window an order with an arbiter may agree.
    uint32 public constant MIN_DISPUTE_WINDOW = 1 hours;
    uint32 public constant MAX_DISPUTE_WINDOW = 365 days;

    /// @notice The conditions an order pays on. The numbering is part of the ABI: never reorder.
    enum Milestone {
        Shipped,
        CustomsCleared,
        Received
    }

    /// @notice What an order may penalise. The numbering is part of the ABI: never reorder.
    enum Penalty {
        Excursion,
        Recall
    }

    /// @notice Unknown: no such order. Created: proposed by the buyer, waiting for the seller.
    /// Accepted: the seller accepted the terms; waiting for the buyer's funds. Funded: paying out by
    /// milestones. Disputed: frozen until the arbiter resolves or the dispute window ends. Closed:
    /// nothing left in it.
    enum OrderState {
        Unknown,
        Created,
        Accepted,
        Funded,
        Disputed,
        Closed
    }

    /// @notice What the buyer proposes in {createOrder}; the buyer is the sender.
    /// @param seller Is paid the milestones; must hand the shipment over for Shipped.
    /// @param shipment The subject id of the shipment in the registry (an SSCC's id).
    /// @param receiver The buyer's receiving address: its receipt of the shipment is delivery.
    /// @param milestoneBps Shares of `amount` paid on Shipped, CustomsCleared, Received; sum 10,000.
    /// @param deadline Delivery deadline (seconds since the epoch); after it the buyer may reclaim
    /// whatever is unreleased unless the shipment was delivered or is on its way to the receiver.
    /// @param arbiter Resolves disputes; zero for none (then no dispute can be opened).
    /// @param disputeWindow How long (seconds) a dispute may freeze the order before it ends by
    /// itself: 1 hour to 365 days with an arbiter, zero without.
    /// @param excursionPenaltyBps Refunded to the buyer once another party reports an excursion of
    /// the shipment before the receiver's receipt.
    /// @param recallPenaltyBps Refunded to the buyer once another party recalls the shipment.
    struct OrderTerms {
        address seller;
        IERC20 token;
        uint256 amount;
        bytes32 shipment;
        address receiver;
        uint16[3] milestoneBps;
        uint64 deadline;
        address arbiter;
        uint32 disputeWindow;
        uint16 excursionPenaltyBps;
        uint16 recallPenaltyBps;
    }

    /// @notice An order as {orderOf} reports it. `released` and `penaltiesApplied` are indexed by
    /// {Milestone} and {Penalty}; `paid` went to the seller, `refunded` to the buyer;
    /// `disputeEndsAt` is when the order's one dispute ends (zero: none opened).
    struct OrderView {
        OrderState state;
        address buyer;
        OrderTerms terms;
        bool[3] released;
        bool[2] penaltiesApplied;
        uint256 paid;
        uint256 refunded;
        uint256 unreleased;
        uint64 disputeEndsAt;
    }

    /// @dev Packed into eight slots; amounts fit in uint128 (checked at creation).
    struct Order {
        address buyer;
        uint64 deadline;
        OrderState state;
        uint8 released; // bit i set: Milestone(i) released
        uint8 penalized; // bit i set: Penalty(i) applied
        address seller;
        uint16 shippedBps;
        uint16 clearedBps;
        uint16 receivedBps;
        uint16 excursionPenaltyBps;
        uint16 recallPenaltyBps;
        IERC20 token;
        uint32 disputeWindow;
        uint64 disputeEndsAt;
        address receiver;
        address arbiter;
        bytes32 shipment;
        uint128 amount;
        uint128 unreleased;
        uint128 paid;
        uint128 refunded;
    }

    uint8 private constant _RECEIVED_BIT = uint8(1) << uint8(Milestone.Received);
    /// @dev The registry's excursion count stops here: a report with this ordinal cannot be ordered
    /// against a receipt.
    uint16 private constant _UNORDERED = type(uint16).max;

    TraceRegistry private immutable _registry;
    uint256 private _orderCount;
    mapping(uint256 orderId => Order) private _orders;

    /// @notice Emitted when the buyer creates an order.
    event OrderCreated(uint256 indexed orderId, address indexed buyer, address indexed seller, OrderTerms terms);
    /// @notice Emitted when the seller accepts the order's terms, arbiter and dispute window included.
    event OrderAccepted(uint256 indexed orderId, address indexed seller);
    /// @notice Emitted when the escrow has received the order's amount from the buyer.
    event OrderFunded(uint256 indexed orderId, address indexed buyer, IERC20 token, uint256 amount);
    /// @notice Emitted when a milestone's payment (possibly reduced by penalties) goes to the seller.
    event MilestoneReleased(
        uint256 indexed orderId,
        Milestone indexed milestone,
        address indexed seller,
        uint256 amount
    );
    /// @notice Emitted when a penalty's refund goes to the buyer.
    event PenaltyApplied(uint256 indexed orderId, Penalty indexed penalty, address indexed buyer, uint256 refund);
    /// @notice Emitted when the buyer takes back what was unreleased after a missed deadline.
    event OrderReclaimed(uint256 indexed orderId, address indexed buyer, uint256 refund);
    /// @notice Emitted when the buyer or the seller freezes an order for its arbiter, until `endsAt`.
    event DisputeOpened(uint256 indexed orderId, address indexed openedBy, uint64 endsAt);
    /// @notice Emitted when a dispute's window ended without a resolution and the order resumed.
    event DisputeEnded(uint256 indexed orderId, address indexed endedBy);
    /// @notice Emitted when the arbiter splits what was unreleased.
    event DisputeResolved(
        uint256 indexed orderId,
        address indexed arbiter,
        uint16 toSellerBps,
        uint256 toSeller,
        uint256 toBuyer
    );
    /// @notice Emitted when an order has nothing left in it, after the event that emptied it.
    event OrderClosed(uint256 indexed orderId, uint256 paid, uint256 refunded);

    error TradeEscrowInvalidSeller(address seller);
    error TradeEscrowInvalidReceiver(address receiver);
    error TradeEscrowInvalidArbiter(address arbiter);
    error TradeEscrowInvalidDisputeWindow(address arbiter, uint32 disputeWindow);
    error TradeEscrowInvalidToken(address token);
    error TradeEscrowInvalidAmount(uint256 amount);
    error TradeEscrowInvalidShipment(bytes32 shipment);
    error TradeEscrowDeadlineNotInFuture(uint64 deadline, uint256 timestamp);
    error TradeEscrowMilestonesNotWhole(uint256 totalBps);
    error TradeEscrowPenaltyTooHigh(Penalty penalty, uint16 bps);
    error TradeEscrowUnknownOrder(uint256 orderId);
    error TradeEscrowUnexpectedState(uint256 orderId, OrderState state, OrderState expected);
    error TradeEscrowNotBuyer(uint256 orderId, address caller, address buyer);
    error TradeEscrowNotSeller(uint256 orderId, address caller, address seller);
    error TradeEscrowNotParty(uint256 orderId, address caller);
    error TradeEscrowNotArbiter(uint256 orderId, address caller, address arbiter);
    error TradeEscrowNoArbiter(uint256 orderId);
    error TradeEscrowDeadlinePassed(uint256 orderId, uint64 deadline);
    error TradeEscrowDeadlineNotPassed(uint256 orderId, uint64 deadline);
    error TradeEscrowAmountNotReceived(uint256 orderId, IERC20 token, uint256 expected, uint256 received);
    error TradeEscrowMilestoneNotInOrder(uint256 orderId, Milestone milestone);
    error TradeEscrowMilestoneAlreadyReleased(uint256 orderId, Milestone milestone);
    /// @param party Whose fact is missing: the seller (Shipped), the receiver (Received), zero (customs).
    error TradeEscrowMilestoneNotReached(uint256 orderId, Milestone milestone, bytes32 shipment, address party);
    error TradeEscrowPenaltyNotInOrder(uint256 orderId, Penalty penalty);
    error TradeEscrowPenaltyAlreadyApplied(uint256 orderId, Penalty penalty);
    error TradeEscrowPenaltyNotTriggered(uint256 orderId, Penalty penalty, bytes32 shipment);
    error TradeEscrowDelivered(uint256 orderId, address receiver, uint64 receivedAt);
    error TradeEscrowDeliveryPending(uint256 orderId, address receiver);
    error TradeEscrowDisputeAlreadyOpened(uint256 orderId, uint64 endsAt);
    error TradeEscrowDisputeEnded(uint256 orderId, uint64 endsAt);
    error TradeEscrowDisputeNotEnded(uint256 orderId, uint64 endsAt);
    error TradeEscrowInvalidSplit(uint256 orderId, uint16 toSellerBps);

    /// @param registry_ The TraceRegistry whose recorded facts decide the milestones and penalties.
    constructor(TraceRegistry registry_) {
        _registry = registry_;
    }

    // ---------------------------------------------------------------- orders

    /// @notice Creates an order with the sender as buyer; the seller accepts it with {acceptOrder}.
    /// @dev Requirements: a seller other than zero and the sender; a receiver other than zero and the
    /// seller; an arbiter that is neither party (or zero); a dispute window of 1 hour to 365 days
    /// with an arbiter, zero without; a token contract; an amount above zero that fits in uint128; a
    /// non-zero shipment id; a deadline in the future; milestone shares that sum to 10,000;
    /// penalties of at most 10,000 each. The shipment need not exist yet.
    /// Emits {OrderCreated}.
    /// @return orderId The new order's id, counting from 1.
    function createOrder(OrderTerms calldata terms) external returns (uint256 orderId) {
        _checkTerms(terms);
        orderId = ++_orderCount;
        Order storage order = _orders[orderId];
        order.buyer = msg.sender;
        order.deadline = terms.deadline;
        order.state = OrderState.Created;
        order.seller = terms.seller;
        order.shippedBps = terms.milestoneBps[uint8(Milestone.Shipped)];
        order.clearedBps = terms.milestoneBps[uint8(Milestone.CustomsCleared)];
        order.receivedBps = terms.milestoneBps[uint8(Milestone.Received)];
        order.excursionPenaltyBps = terms.excursionPenaltyBps;
        order.recallPenaltyBps = terms.recallPenaltyBps;
        order.token = terms.token;
        order.disputeWindow = terms.disputeWindow;
        order.receiver = terms.receiver;
        order.arbiter = terms.arbiter;
        order.shipment = terms.shipment;
        order.amount = uint128(terms.amount);
        emit OrderCreated(orderId, msg.sender, terms.seller, terms);
    }

    /// @notice The seller accepts the order's terms, its arbiter and dispute window included; the
    /// buyer may then fund it.
    /// @dev Requirements: the order is Created; the sender is its seller; its deadline has not
    /// passed. Emits {OrderAccepted}.
    function acceptOrder(uint256 orderId) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Created);
        address seller = order.seller;
        if (msg.sender != seller) revert TradeEscrowNotSeller(orderId, msg.sender, seller);
        if (block.timestamp > order.deadline) revert TradeEscrowDeadlinePassed(orderId, order.deadline);
        order.state = OrderState.Accepted;
        emit OrderAccepted(orderId, seller);
    }

    /// @notice Pulls exactly the order's amount from the buyer, who must have approved the escrow.
    /// @dev Requirements: the seller accepted the order (Accepted); the sender is its buyer; its
    /// deadline has not passed; the escrow's balance grows by exactly the amount (no fee-on-transfer
    /// tokens). Emits {OrderFunded}.
    function fund(uint256 orderId) external nonReentrant {
        _pullFunds(orderId, _fundable(orderId));
    }

    /// @notice Funds the order with an EIP-2612 permit in the same transaction, no prior approval.
    /// @dev The permit's signature is the buyer's; anyone who saw it could front-run the `permit` call
    /// and make ours fail, but the allowance would be there all the same, so a failing `permit` call
    /// is ignored and the transfer decides. Requirements and event as {fund}.
    function fundWithPermit(
        uint256 orderId,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        Order storage order = _fundable(orderId);
        try
            IERC20Permit(address(order.token)).permit(
                msg.sender,
                address(this),
                order.amount,
                permitDeadline,
                v,
                r,
                s
            )
        {} catch {} // solhint-disable-line no-empty-blocks
        _pullFunds(orderId, order);
    }

    /// @notice Pays a milestone's share of what is unreleased to the seller, once, after applying
    /// every penalty already due. Anyone may call.
    /// @dev Requirements: the order is Funded (not disputed, not closed); the milestone is part of the
    /// order (non-zero share) and not yet released; the registry's facts show its condition (see the
    /// contract's notice), or Received was released. Applies the penalties due first ({applyPenalty});
    /// if they took all that was left, the order closes and nothing is paid. Otherwise pays
    /// `unreleased * share / unreleasedShares`, all that is left for the last milestone.
    /// Emits {PenaltyApplied} per penalty applied, {MilestoneReleased} unless they closed the order,
    /// and {OrderClosed} when nothing is left.
    function release(uint256 orderId, Milestone milestone) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Funded);
        uint256 bps = _milestoneBps(order, milestone);
        if (bps == 0) revert TradeEscrowMilestoneNotInOrder(orderId, milestone);
        uint8 bit = uint8(1) << uint8(milestone);
        if (order.released & bit != 0) revert TradeEscrowMilestoneAlreadyReleased(orderId, milestone);
        if (order.released & _RECEIVED_BIT == 0 && !_reached(order, milestone)) {
            revert TradeEscrowMilestoneNotReached(orderId, milestone, order.shipment, _partyOf(order, milestone));
        }

        uint256 refund = _applyDue(orderId, order, Penalty.Excursion) + _applyDue(orderId, order, Penalty.Recall);
        uint256 payment;
        if (order.state == OrderState.Funded) {
            uint256 unreleasedBps = _unreleasedBps(order);
            uint256 unreleased = order.unreleased;
            // The last milestone takes all that is left, so rounding never strands a remainder.
            payment = bps == unreleasedBps ? unreleased : (unreleased * bps) / unreleasedBps;
            order.released |= bit;
            order.unreleased = uint128(unreleased - payment);
            order.paid += uint128(payment);
            emit MilestoneReleased(orderId, milestone, order.seller, payment);
            _closeIfEmpty(orderId, order);
        }
        _pay(order.token, order.buyer, refund);
        _pay(order.token, order.seller, payment);
    }

    /// @notice Refunds an agreed penalty to the buyer, once, when the registry shows its trigger: an
    /// excursion of the shipment reported by a party other than the buyer and its receiver before the
    /// receiver's first receipt, or a recall of it by a party other than those two. Anyone may call.
    /// @dev Requirements: the order is Funded; the penalty is part of the order (non-zero share) and
    /// not yet applied; the registry shows the trigger. Refunds `amount * penaltyBps / 10_000`, capped
    /// at what is unreleased; the milestones not yet released shrink proportionally (see the
    /// contract's notice). Emits {PenaltyApplied}, and {OrderClosed} when nothing is left.
    function applyPenalty(uint256 orderId, Penalty penalty) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Funded);
        uint256 bps = _penaltyBps(order, penalty);
        if (bps == 0) revert TradeEscrowPenaltyNotInOrder(orderId, penalty);
        if (order.penalized & (uint8(1) << uint8(penalty)) != 0) {
            revert TradeEscrowPenaltyAlreadyApplied(orderId, penalty);
        }
        if (!_triggered(order, penalty)) revert TradeEscrowPenaltyNotTriggered(orderId, penalty, order.shipment);
        _pay(order.token, order.buyer, _penalize(orderId, order, penalty, bps));
    }

    /// @notice After a missed deadline, returns everything unreleased to the buyer and closes the order.
    /// @dev Requirements: the order is Funded; the sender is its buyer; the deadline has passed; the
    /// Received milestone was not released; the receiver never received the shipment (delivered goods
    /// are paid for: release Received instead, late or not); no shipment of it to the receiver is
    /// pending (the receiver receives it, or it is sent elsewhere, first).
    /// Emits {OrderReclaimed} and {OrderClosed}.
    function reclaim(uint256 orderId) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Funded);
        address buyer = order.buyer;
        if (msg.sender != buyer) revert TradeEscrowNotBuyer(orderId, msg.sender, buyer);
        if (block.timestamp <= order.deadline) revert TradeEscrowDeadlineNotPassed(orderId, order.deadline);
        if (order.released & _RECEIVED_BIT != 0) {
            revert TradeEscrowMilestoneAlreadyReleased(orderId, Milestone.Received);
        }
        address receiver = order.receiver;
        bytes32 shipment = order.shipment;
        uint64 receivedAt = _registry.partyFactsOf(shipment, receiver).receivedAt;
        if (receivedAt != 0) revert TradeEscrowDelivered(orderId, receiver, receivedAt);
        if (_registry.productOf(shipment).pendingReceiver == receiver) {
            revert TradeEscrowDeliveryPending(orderId, receiver);
        }

        uint256 refund = order.unreleased;
        order.unreleased = 0;
        order.refunded += uint128(refund);
        order.state = OrderState.Closed;
        emit OrderReclaimed(orderId, buyer, refund);
        emit OrderClosed(orderId, order.paid, order.refunded);
        _pay(order.token, buyer, refund);
    }

    /// @notice Freezes the order (no release, penalty or reclaim) until its arbiter resolves it or
    /// the agreed dispute window ends. Once per order.
    /// @dev Requirements: the order is Funded and names an arbiter; the sender is its buyer or seller;
    /// no dispute was opened on it before. Emits {DisputeOpened} with the time the dispute ends.
    function openDispute(uint256 orderId) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Funded);
        if (order.arbiter == address(0)) revert TradeEscrowNoArbiter(orderId);
        if (msg.sender != order.buyer && msg.sender != order.seller) revert TradeEscrowNotParty(orderId, msg.sender);
        if (order.disputeEndsAt != 0) revert TradeEscrowDisputeAlreadyOpened(orderId, order.disputeEndsAt);
        uint64 endsAt = uint64(block.timestamp) + order.disputeWindow;
        order.disputeEndsAt = endsAt;
        order.state = OrderState.Disputed;
        emit DisputeOpened(orderId, msg.sender, endsAt);
    }

    /// @notice Ends a dispute whose window has passed without a resolution: the order is Funded
    /// again and its rules resume (milestones, penalties, the deadline). Anyone may call.
    /// @dev Requirements: the order is Disputed; its dispute's end has come (`block.timestamp` is at
    /// least `disputeEndsAt`). Emits {DisputeEnded}.
    function endDispute(uint256 orderId) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Disputed);
        uint64 endsAt = order.disputeEndsAt;
        if (block.timestamp < endsAt) revert TradeEscrowDisputeNotEnded(orderId, endsAt);
        order.state = OrderState.Funded;
        emit DisputeEnded(orderId, msg.sender);
    }

    /// @notice Splits what is unreleased: `toSellerBps` of it to the seller, the rest to the buyer,
    /// and closes the order.
    /// @dev Requirements: the order is Disputed; the sender is its arbiter; the dispute's window has
    /// not ended (`block.timestamp` is before `disputeEndsAt`); `toSellerBps` is at most 10,000.
    /// Emits {DisputeResolved} and {OrderClosed}.
    function resolve(uint256 orderId, uint16 toSellerBps) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Disputed);
        address arbiter = order.arbiter;
        if (msg.sender != arbiter) revert TradeEscrowNotArbiter(orderId, msg.sender, arbiter);
        uint64 endsAt = order.disputeEndsAt;
        if (block.timestamp >= endsAt) revert TradeEscrowDisputeEnded(orderId, endsAt);
        if (toSellerBps > BPS) revert TradeEscrowInvalidSplit(orderId, toSellerBps);

        uint256 unreleased = order.unreleased;
        uint256 toSeller = (unreleased * toSellerBps) / BPS;
        uint256 toBuyer = unreleased - toSeller;
        order.unreleased = 0;
        order.paid += uint128(toSeller);
        order.refunded += uint128(toBuyer);
        order.state = OrderState.Closed;
        emit DisputeResolved(orderId, arbiter, toSellerBps, toSeller, toBuyer);
        emit OrderClosed(orderId, order.paid, order.refunded);
        _pay(order.token, order.seller, toSeller);
        _pay(order.token, order.buyer, toBuyer);
    }

    // ---------------------------------------------------------------- reading

    /// @notice The registry this escrow reads facts from.
    function registry() external view returns (TraceRegistry) {
        return _registry;
    }

    /// @notice How many orders were created; ids run from 1 to this.
    function orderCount() external view returns (uint256) {
        return _orderCount;
    }

    /// @notice The order's terms and progress. Unknown ids report `OrderState.Unknown` and zeros.
    function orderOf(uint256 orderId) external view returns (OrderView memory view_) {
        Order storage order = _orders[orderId];
        view_.state = order.state;
        view_.buyer = order.buyer;
        view_.terms = OrderTerms({
            seller: order.seller,
            token: order.token,
            amount: order.amount,
            shipment: order.shipment,
            receiver: order.receiver,
            milestoneBps: [order.shippedBps, order.clearedBps, order.receivedBps],
            deadline: order.deadline,
            arbiter: order.arbiter,
            disputeWindow: order.disputeWindow,
            excursionPenaltyBps: order.excursionPenaltyBps,
            recallPenaltyBps: order.recallPenaltyBps
        });
        for (uint8 i = 0; i < 3; ++i) view_.released[i] = order.released & (uint8(1) << i) != 0;
        for (uint8 i = 0; i < 2; ++i) view_.penaltiesApplied[i] = order.penalized & (uint8(1) << i) != 0;
        view_.paid = order.paid;
        view_.refunded = order.refunded;
        view_.unreleased = order.unreleased;
        view_.disputeEndsAt = order.disputeEndsAt;
    }

    /// @notice What the order still holds: neither paid to the seller nor refunded to the buyer.
    function unreleasedOf(uint256 orderId) external view returns (uint256) {
        return _orders[orderId].unreleased;
    }

    /// @notice Whether the milestone's condition holds (or counts as met after delivery). Says
    /// nothing about whether it is part of the order or already released.
    function milestoneReached(uint256 orderId, Milestone milestone) external view returns (bool) {
        Order storage order = _orders[orderId];
        if (order.released & _RECEIVED_BIT != 0) return true;
        return _reached(order, milestone);
    }

    /// @notice Whether the registry shows the penalty's trigger for the order (see {applyPenalty}).
    function penaltyTriggered(uint256 orderId, Penalty penalty) external view returns (bool) {
        return _triggered(_orders[orderId], penalty);
    }

    // ---------------------------------------------------------------- internals

    function _checkTerms(OrderTerms calldata terms) private view {
        if (terms.seller == address(0) || terms.seller == msg.sender) revert TradeEscrowInvalidSeller(terms.seller);
        if (terms.receiver == address(0) || terms.receiver == terms.seller) {
            revert TradeEscrowInvalidReceiver(terms.receiver);
        }
        if (terms.arbiter == msg.sender || terms.arbiter == terms.seller) revert TradeEscrowInvalidArbiter(terms.arbiter);
        uint32 window = terms.disputeWindow;
        if (
            terms.arbiter == address(0)
                ? window != 0
                : window < MIN_DISPUTE_WINDOW || window > MAX_DISPUTE_WINDOW
        ) revert TradeEscrowInvalidDisputeWindow(terms.arbiter, window);
        if (address(terms.token).code.length == 0) revert TradeEscrowInvalidToken(address(terms.token));
        if (terms.amount == 0 || terms.amount > type(uint128).max) revert TradeEscrowInvalidAmount(terms.amount);
        if (terms.shipment == bytes32(0)) revert TradeEscrowInvalidShipment(terms.shipment);
        if (terms.deadline <= block.timestamp) revert TradeEscrowDeadlineNotInFuture(terms.deadline, block.timestamp);
        uint256 total = uint256(terms.milestoneBps[0]) + terms.milestoneBps[1] + terms.milestoneBps[2];
        if (total != BPS) revert TradeEscrowMilestonesNotWhole(total);
        if (terms.excursionPenaltyBps > BPS) {
            revert TradeEscrowPenaltyTooHigh(Penalty.Excursion, terms.excursionPenaltyBps);
        }
        if (terms.recallPenaltyBps > BPS) revert TradeEscrowPenaltyTooHigh(Penalty.Recall, terms.recallPenaltyBps);
    }

    function _orderIn(uint256 orderId, OrderState expected) private view returns (Order storage order) {
        order = _orders[orderId];
        OrderState state = order.state;
        if (state == OrderState.Unknown) revert TradeEscrowUnknownOrder(orderId);
        if (state != expected) revert TradeEscrowUnexpectedState(orderId, state, expected);
    }

    function _fundable(uint256 orderId) private view returns (Order storage order) {
        order = _orderIn(orderId, OrderState.Accepted);
        if (msg.sender != order.buyer) revert TradeEscrowNotBuyer(orderId, msg.sender, order.buyer);
        if (block.timestamp > order.deadline) revert TradeEscrowDeadlinePassed(orderId, order.deadline);
    }

    /// @dev Effects first; the balance check after the transfer undoes them all by reverting.
    function _pullFunds(uint256 orderId, Order storage order) private {
        IERC20 token = order.token;
        uint256 amount = order.amount;
        order.state = OrderState.Funded;
        order.unreleased = uint128(amount);
        emit OrderFunded(orderId, msg.sender, token, amount);

        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 after_ = token.balanceOf(address(this));
        if (after_ != before + amount) {
            revert TradeEscrowAmountNotReceived(orderId, token, amount, after_ > before ? after_ - before : 0);
        }
    }

    function _pay(IERC20 token, address to, uint256 value) private {
        if (value != 0) token.safeTransfer(to, value);
    }

    function _closeIfEmpty(uint256 orderId, Order storage order) private {
        if (order.unreleased != 0) return;
        order.state = OrderState.Closed;
        emit OrderClosed(orderId, order.paid, order.refunded);
    }

    /// @dev Applies the penalty if it is part of the order, not applied yet, triggered, and the order
    /// is still open; returns the refund to pay (the caller pays it, after all its effects).
    function _applyDue(uint256 orderId, Order storage order, Penalty penalty) private returns (uint256) {
        uint256 bps = _penaltyBps(order, penalty);
        if (bps == 0 || order.state != OrderState.Funded) return 0;
        if (order.penalized & (uint8(1) << uint8(penalty)) != 0 || !_triggered(order, penalty)) return 0;
        return _penalize(orderId, order, penalty, bps);
    }

    /// @dev The effects of applying a penalty; returns the refund, which the caller pays.
    function _penalize(uint256 orderId, Order storage order, Penalty penalty, uint256 bps) private returns (uint256) {
        uint256 unreleased = order.unreleased;
        uint256 refund = (uint256(order.amount) * bps) / BPS;
        if (refund > unreleased) refund = unreleased;
        order.penalized |= uint8(1) << uint8(penalty);
        order.unreleased = uint128(unreleased - refund);
        order.refunded += uint128(refund);
        emit PenaltyApplied(orderId, penalty, order.buyer, refund);
        _closeIfEmpty(orderId, order);
        return refund;
    }

    function _milestoneBps(Order storage order, Milestone milestone) private view returns (uint256) {
        if (milestone == Milestone.Shipped) return order.shippedBps;
        if (milestone == Milestone.CustomsCleared) return order.clearedBps;
        return order.receivedBps;
    }

    function _penaltyBps(Order storage order, Penalty penalty) private view returns (uint256) {
        return penalty == Penalty.Excursion ? order.excursionPenaltyBps : order.recallPenaltyBps;
    }

    function _unreleasedBps(Order storage order) private view returns (uint256 total) {
        uint8 released = order.released;
        if (released & (uint8(1) << uint8(Milestone.Shipped)) == 0) total += order.shippedBps;
        if (released & (uint8(1) << uint8(Milestone.CustomsCleared)) == 0) total += order.clearedBps;
        if (released & _RECEIVED_BIT == 0) total += order.receivedBps;
    }

    function _partyOf(Order storage order, Milestone milestone) private view returns (address) {
        if (milestone == Milestone.Shipped) return order.seller;
        if (milestone == Milestone.Received) return order.receiver;
        return address(0);
    }

    /// @dev The milestone's fact, as the registry wrote it when it happened (see the contract's notice).
    function _reached(Order storage order, Milestone milestone) private view returns (bool) {
        if (milestone == Milestone.CustomsCleared) return _registry.clearedAt(order.shipment) != 0;
        TraceRegistry.PartyFacts memory facts = _registry.partyFactsOf(order.shipment, _partyOf(order, milestone));
        return milestone == Milestone.Shipped ? facts.handedOverAt != 0 : facts.receivedAt != 0;
    }

    /// @dev A report counts only by a party other than the buyer and its receiver; an excursion only
    /// if made before the receiver's first receipt (its ordinal at most the excursions on record then),
    /// or at any time while the receiver has received nothing.
    function _triggered(Order storage order, Penalty penalty) private view returns (bool) {
        if (order.state == OrderState.Unknown) return false;
        bytes32 shipment = order.shipment;
        address buyer = order.buyer;
        address receiver = order.receiver;
        if (penalty == Penalty.Recall) {
            TraceRegistry.Report[] memory recalls = _registry.recallReportsOf(shipment);
            for (uint256 i = 0; i < recalls.length; ++i) {
                address reporter = recalls[i].reporter;
                if (reporter != buyer && reporter != receiver) return true;
            }
            return false;
        }
        TraceRegistry.Report[] memory reports = _registry.excursionReportsOf(shipment);
        TraceRegistry.PartyFacts memory delivery;
        bool deliveryRead = false;
        for (uint256 i = 0; i < reports.length; ++i) {
            address reporter = reports[i].reporter;
            if (reporter == buyer || reporter == receiver) continue;
            if (!deliveryRead) {
                delivery = _registry.partyFactsOf(shipment, receiver);
                deliveryRead = true;
            }
            if (delivery.receivedAt == 0) return true;
            uint16 ordinal = reports[i].ordinal;
            if (ordinal <= delivery.excursionsBeforeReceipt && ordinal != _UNORDERED) return true;
        }
        return false;
    }
}
