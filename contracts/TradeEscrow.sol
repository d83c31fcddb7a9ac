// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {TraceRegistry} from "./TraceRegistry.sol";

/// @title TradeEscrow
/// @notice Holds a buyer's ERC-20 payment for a shipment and releases it to the seller by milestones
/// that the shipment's custody in {TraceRegistry} shows, refunds it after a missed deadline, applies
/// agreed penalties on a recorded temperature excursion or recall, and lets an arbiter split it in a
/// dispute.
///
/// An order pays `amount` of `token` in up to three milestones, each a share in basis points of the
/// amount, the shares summing to 10,000 (FOB-like 3000/0/7000, DAP-like 0/0/10000). A milestone
/// whose share is zero is not part of the order. The conditions, read from the registry's
/// `productOf(shipment)` when a milestone is released:
/// - Shipped: the shipment exists and its custodian is no longer the seller, or a receiver is proposed;
/// - CustomsCleared: customs' latest verdict on the shipment is "cleared";
/// - Received: the shipment's custodian is the order's receiving address.
/// Registry state is current state, not history: a cleared shipment can be rejected on a later
/// inspection, a received one sold on. Releasing is open to anyone so that the seller (or a keeper)
/// can release a milestone as soon as the registry shows it. Receipt is signed by the buyer's own
/// receiving address, so it is the buyer's acceptance of the goods: once Received is released, the
/// Shipped and CustomsCleared conditions count as met whatever the registry shows later, and no
/// order with a released Received milestone can be left holding funds no condition will ever free.
///
/// Deadline: once it has passed and Received was not released, the buyer may take back everything
/// unreleased, unless the registry shows the shipment at the receiving address (delivered goods are
/// paid for: anyone can release Received instead). Until the buyer does, milestones whose conditions
/// hold can still be released.
///
/// Penalties: an order may agree a share of the amount (basis points) to refund to the buyer on a
/// temperature excursion recorded for the shipment (`excursions > 0`) and another on a recall. Each is
/// applied at most once, by anyone, while the registry shows it; it refunds
/// `amount * penaltyBps / 10_000`, capped at what is still unreleased. Milestones already released
/// stay paid; every milestone not yet released shrinks in the same proportion, because a release pays
/// `unreleased * milestoneBps / unreleasedBps` (the last milestone pays all that is left, so rounding
/// leaves no dust). Example: 1,000 dUSD at 3000/0/7000 with a 2,000 bps excursion penalty: Shipped
/// pays 300, the excursion refunds 200, Received pays the remaining 500.
///
/// Accounting: for every funded order `paid + refunded + unreleased == amount`; the escrow's balance
/// of a token is the sum of `unreleased` over its open orders in that token. An order closes when
/// nothing is left in it: its last milestone is released, a penalty takes the rest, the buyer
/// reclaims, or the arbiter resolves a dispute.
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

    /// @notice Unknown: no such order. Created: waiting for the buyer's funds. Funded: paying out by
    /// milestones. Disputed: frozen until the arbiter resolves. Closed: nothing left in it.
    enum OrderState {
        Unknown,
        Created,
        Funded,
        Disputed,
        Closed
    }

    /// @notice What the buyer proposes in {createOrder}; the buyer is the sender.
    /// @param seller Is paid the milestones; also the registry participant that holds the shipment
    /// before it ships.
    /// @param shipment The subject id of the shipment in the registry (an SSCC's id).
    /// @param receiver The buyer's receiving address: its receipt of the shipment is delivery.
    /// @param milestoneBps Shares of `amount` paid on Shipped, CustomsCleared, Received; sum 10,000.
    /// @param deadline Delivery deadline (seconds since the epoch); after it the buyer may reclaim
    /// whatever is unreleased unless the shipment was delivered.
    /// @param arbiter Resolves disputes; zero for none (then no dispute can be opened).
    /// @param excursionPenaltyBps Refunded to the buyer once the shipment has a recorded excursion.
    /// @param recallPenaltyBps Refunded to the buyer once the shipment is recalled.
    struct OrderTerms {
        address seller;
        IERC20 token;
        uint256 amount;
        bytes32 shipment;
        address receiver;
        uint16[3] milestoneBps;
        uint64 deadline;
        address arbiter;
        uint16 excursionPenaltyBps;
        uint16 recallPenaltyBps;
    }

    /// @notice An order as {orderOf} reports it. `released` and `penaltiesApplied` are indexed by
    /// {Milestone} and {Penalty}; `paid` went to the seller, `refunded` to the buyer.
    struct OrderView {
        OrderState state;
        address buyer;
        OrderTerms terms;
        bool[3] released;
        bool[2] penaltiesApplied;
        uint256 paid;
        uint256 refunded;
        uint256 unreleased;
    }

    /// @dev Packed into seven slots; amounts fit in uint128 (checked at creation).
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
        address receiver;
        address arbiter;
        bytes32 shipment;
        uint128 amount;
        uint128 unreleased;
        uint128 paid;
        uint128 refunded;
    }

    uint8 private constant _RECEIVED_BIT = uint8(1) << uint8(Milestone.Received);

    TraceRegistry private immutable _registry;
    uint256 private _orderCount;
    mapping(uint256 orderId => Order) private _orders;

    /// @notice Emitted when the buyer creates an order.
    event OrderCreated(uint256 indexed orderId, address indexed buyer, address indexed seller, OrderTerms terms);
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
    /// @notice Emitted when the buyer or the seller freezes an order for its arbiter.
    event DisputeOpened(uint256 indexed orderId, address indexed openedBy);
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
    error TradeEscrowInvalidToken(address token);
    error TradeEscrowInvalidAmount(uint256 amount);
    error TradeEscrowInvalidShipment(bytes32 shipment);
    error TradeEscrowDeadlineNotInFuture(uint64 deadline, uint256 timestamp);
    error TradeEscrowMilestonesNotWhole(uint256 totalBps);
    error TradeEscrowPenaltyTooHigh(Penalty penalty, uint16 bps);
    error TradeEscrowUnknownOrder(uint256 orderId);
    error TradeEscrowUnexpectedState(uint256 orderId, OrderState state, OrderState expected);
    error TradeEscrowNotBuyer(uint256 orderId, address caller, address buyer);
    error TradeEscrowNotParty(uint256 orderId, address caller);
    error TradeEscrowNotArbiter(uint256 orderId, address caller, address arbiter);
    error TradeEscrowNoArbiter(uint256 orderId);
    error TradeEscrowDeadlinePassed(uint256 orderId, uint64 deadline);
    error TradeEscrowDeadlineNotPassed(uint256 orderId, uint64 deadline);
    error TradeEscrowAmountNotReceived(uint256 orderId, IERC20 token, uint256 expected, uint256 received);
    error TradeEscrowMilestoneNotInOrder(uint256 orderId, Milestone milestone);
    error TradeEscrowMilestoneAlreadyReleased(uint256 orderId, Milestone milestone);
    error TradeEscrowMilestoneNotReached(
        uint256 orderId,
        Milestone milestone,
        address custodian,
        address pendingReceiver,
        bool cleared
    );
    error TradeEscrowPenaltyNotInOrder(uint256 orderId, Penalty penalty);
    error TradeEscrowPenaltyAlreadyApplied(uint256 orderId, Penalty penalty);
    error TradeEscrowPenaltyNotTriggered(uint256 orderId, Penalty penalty, uint16 excursions, bool recalled);
    error TradeEscrowDelivered(uint256 orderId, address receiver);
    error TradeEscrowInvalidSplit(uint256 orderId, uint16 toSellerBps);

    /// @param registry_ The TraceRegistry whose custody records decide the milestones.
    constructor(TraceRegistry registry_) {
        _registry = registry_;
    }

    // ---------------------------------------------------------------- orders

    /// @notice Creates an order with the sender as buyer; fund it with {fund} or {fundWithPermit}.
    /// @dev Requirements: a seller other than zero and the sender; a receiver other than zero and the
    /// seller; an arbiter that is neither party (or zero); a token contract; an amount above zero
    /// that fits in uint128; a non-zero shipment id; a deadline in the future; milestone shares that
    /// sum to 10,000; penalties of at most 10,000 each. The shipment need not exist yet.
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
        order.receiver = terms.receiver;
        order.arbiter = terms.arbiter;
        order.shipment = terms.shipment;
        order.amount = uint128(terms.amount);
        emit OrderCreated(orderId, msg.sender, terms.seller, terms);
    }

    /// @notice Pulls exactly the order's amount from the buyer, who must have approved the escrow.
    /// @dev Requirements: the order is Created; the sender is its buyer; its deadline has not
    /// passed; the escrow's balance grows by exactly the amount (no fee-on-transfer tokens).
    /// Emits {OrderFunded}.
    function fund(uint256 orderId) external nonReentrant {
        _pullFunds(orderId, _fundable(orderId));
    }

    /// @notice Approves the escrow through the buyer's EIP-2612 permit for exactly the order's
    /// amount, then funds the order, in one transaction.
    /// @dev A permit that someone else already submitted (seen in the mempool) leaves the same
    /// allowance, so a failing `permit` call is ignored and the transfer decides. Requirements and
    /// event as {fund}.
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

    /// @notice Pays a milestone's share of what is unreleased to the seller, once. Anyone may call.
    /// @dev Requirements: the order is Funded (not disputed, not closed); the milestone is part of the
    /// order (non-zero share) and not yet released; the registry shows its condition (see the
    /// contract's notice). Pays `unreleased * share / unreleasedShares`, all that is left for the
    /// last milestone. Emits {MilestoneReleased}, and {OrderClosed} when nothing is left.
    function release(uint256 orderId, Milestone milestone) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Funded);
        uint256 bps = _milestoneBps(order, milestone);
        if (bps == 0) revert TradeEscrowMilestoneNotInOrder(orderId, milestone);
        uint8 bit = uint8(1) << uint8(milestone);
        if (order.released & bit != 0) revert TradeEscrowMilestoneAlreadyReleased(orderId, milestone);
        if (order.released & _RECEIVED_BIT == 0) {
            TraceRegistry.ProductView memory shipment = _registry.productOf(order.shipment);
            if (!_reached(order, milestone, shipment)) {
                revert TradeEscrowMilestoneNotReached(
                    orderId,
                    milestone,
                    shipment.custodian,
                    shipment.pendingReceiver,
                    shipment.cleared
                );
            }
        }

        uint256 unreleasedBps = _unreleasedBps(order);
        uint256 unreleased = order.unreleased;
        // The last milestone takes all that is left, so rounding never strands a remainder.
        uint256 payment = bps == unreleasedBps ? unreleased : (unreleased * bps) / unreleasedBps;
        order.released |= bit;
        order.unreleased = uint128(unreleased - payment);
        order.paid += uint128(payment);
        emit MilestoneReleased(orderId, milestone, order.seller, payment);
        _closeIfEmpty(orderId, order);
        _pay(order.token, order.seller, payment);
    }

    /// @notice Refunds an agreed penalty to the buyer, once, when the registry shows its trigger: an
    /// excursion recorded for the shipment, or its recall. Anyone may call.
    /// @dev Requirements: the order is Funded; the penalty is part of the order (non-zero share) and
    /// not yet applied; the registry shows the trigger. Refunds `amount * penaltyBps / 10_000`, capped
    /// at what is unreleased; the milestones not yet released shrink proportionally (see the
    /// contract's notice). Emits {PenaltyApplied}, and {OrderClosed} when nothing is left.
    function applyPenalty(uint256 orderId, Penalty penalty) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Funded);
        uint256 bps = penalty == Penalty.Excursion ? order.excursionPenaltyBps : order.recallPenaltyBps;
        if (bps == 0) revert TradeEscrowPenaltyNotInOrder(orderId, penalty);
        uint8 bit = uint8(1) << uint8(penalty);
        if (order.penalized & bit != 0) revert TradeEscrowPenaltyAlreadyApplied(orderId, penalty);
        TraceRegistry.ProductView memory shipment = _registry.productOf(order.shipment);
        if (!_triggered(penalty, shipment)) {
            revert TradeEscrowPenaltyNotTriggered(orderId, penalty, shipment.excursions, shipment.recalled);
        }

        uint256 unreleased = order.unreleased;
        uint256 refund = (uint256(order.amount) * bps) / BPS;
        if (refund > unreleased) refund = unreleased;
        order.penalized |= bit;
        order.unreleased = uint128(unreleased - refund);
        order.refunded += uint128(refund);
        emit PenaltyApplied(orderId, penalty, order.buyer, refund);
        _closeIfEmpty(orderId, order);
        _pay(order.token, order.buyer, refund);
    }

    /// @notice After a missed deadline, returns everything unreleased to the buyer and closes the order.
    /// @dev Requirements: the order is Funded; the sender is its buyer; the deadline has passed; the
    /// Received milestone was not released; the registry does not show the shipment at the receiving
    /// address (delivered goods are paid for: release Received instead, late or not).
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
        if (_registry.productOf(order.shipment).custodian == receiver) revert TradeEscrowDelivered(orderId, receiver);

        uint256 refund = order.unreleased;
        order.unreleased = 0;
        order.refunded += uint128(refund);
        order.state = OrderState.Closed;
        emit OrderReclaimed(orderId, buyer, refund);
        emit OrderClosed(orderId, order.paid, order.refunded);
        _pay(order.token, buyer, refund);
    }

    /// @notice Freezes the order (no release, penalty or reclaim) until its arbiter resolves it.
    /// @dev Requirements: the order is Funded and names an arbiter; the sender is its buyer or seller.
    /// Emits {DisputeOpened}.
    function openDispute(uint256 orderId) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Funded);
        if (order.arbiter == address(0)) revert TradeEscrowNoArbiter(orderId);
        if (msg.sender != order.buyer && msg.sender != order.seller) revert TradeEscrowNotParty(orderId, msg.sender);
        order.state = OrderState.Disputed;
        emit DisputeOpened(orderId, msg.sender);
    }

    /// @notice Splits what is unreleased: `toSellerBps` of it to the seller, the rest to the buyer,
    /// and closes the order.
    /// @dev Requirements: the order is Disputed; the sender is its arbiter; `toSellerBps` is at most
    /// 10,000. Emits {DisputeResolved} and {OrderClosed}.
    function resolve(uint256 orderId, uint16 toSellerBps) external nonReentrant {
        Order storage order = _orderIn(orderId, OrderState.Disputed);
        address arbiter = order.arbiter;
        if (msg.sender != arbiter) revert TradeEscrowNotArbiter(orderId, msg.sender, arbiter);
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

    /// @notice The registry this escrow reads custody from.
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
            excursionPenaltyBps: order.excursionPenaltyBps,
            recallPenaltyBps: order.recallPenaltyBps
        });
        for (uint8 i = 0; i < 3; ++i) view_.released[i] = order.released & (uint8(1) << i) != 0;
        for (uint8 i = 0; i < 2; ++i) view_.penaltiesApplied[i] = order.penalized & (uint8(1) << i) != 0;
        view_.paid = order.paid;
        view_.refunded = order.refunded;
        view_.unreleased = order.unreleased;
    }

    /// @notice What the order still holds: neither paid to the seller nor refunded to the buyer.
    function unreleasedOf(uint256 orderId) external view returns (uint256) {
        return _orders[orderId].unreleased;
    }

    /// @notice Whether the milestone's condition holds now (or counts as met after delivery). Says
    /// nothing about whether it is part of the order or already released.
    function milestoneReached(uint256 orderId, Milestone milestone) external view returns (bool) {
        Order storage order = _orders[orderId];
        if (order.released & _RECEIVED_BIT != 0) return true;
        return _reached(order, milestone, _registry.productOf(order.shipment));
    }

    /// @notice Whether the registry shows the penalty's trigger for the order's shipment now.
    function penaltyTriggered(uint256 orderId, Penalty penalty) external view returns (bool) {
        return _triggered(penalty, _registry.productOf(_orders[orderId].shipment));
    }

    // ---------------------------------------------------------------- internals

    function _checkTerms(OrderTerms calldata terms) private view {
        if (terms.seller == address(0) || terms.seller == msg.sender) revert TradeEscrowInvalidSeller(terms.seller);
        if (terms.receiver == address(0) || terms.receiver == terms.seller) {
            revert TradeEscrowInvalidReceiver(terms.receiver);
        }
        if (terms.arbiter == msg.sender || terms.arbiter == terms.seller) revert TradeEscrowInvalidArbiter(terms.arbiter);
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
        order = _orderIn(orderId, OrderState.Created);
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

    function _milestoneBps(Order storage order, Milestone milestone) private view returns (uint256) {
        if (milestone == Milestone.Shipped) return order.shippedBps;
        if (milestone == Milestone.CustomsCleared) return order.clearedBps;
        return order.receivedBps;
    }

    function _unreleasedBps(Order storage order) private view returns (uint256 total) {
        uint8 released = order.released;
        if (released & (uint8(1) << uint8(Milestone.Shipped)) == 0) total += order.shippedBps;
        if (released & (uint8(1) << uint8(Milestone.CustomsCleared)) == 0) total += order.clearedBps;
        if (released & _RECEIVED_BIT == 0) total += order.receivedBps;
    }

    function _reached(
        Order storage order,
        Milestone milestone,
        TraceRegistry.ProductView memory shipment
    ) private view returns (bool) {
        if (milestone == Milestone.Shipped) {
            return
                shipment.status != TraceRegistry.Status.Unknown &&
                (shipment.custodian != order.seller || shipment.pendingReceiver != address(0));
        }
        if (milestone == Milestone.CustomsCleared) return shipment.cleared;
        return shipment.custodian == order.receiver;
    }

    function _triggered(Penalty penalty, TraceRegistry.ProductView memory shipment) private pure returns (bool) {
        return penalty == Penalty.Excursion ? shipment.excursions > 0 : shipment.recalled;
    }
}
