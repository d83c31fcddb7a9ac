// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title DemoStablecoin
/// @notice "Demo USD" (dUSD), a 6-decimal stand-in for a dollar stablecoin that buyers pay
/// {TradeEscrow} orders in on local chains (the in-process chain, anvil) and in the demo.
/// FOR LOCAL RUNS ONLY: anyone may mint up to {FAUCET_LIMIT} per call, so it is worth nothing.
/// Supports EIP-2612 permits, so an order can be funded in one transaction.
contract DemoStablecoin is ERC20, ERC20Permit {
    /// @notice The most {faucet} mints in one call: 1,000,000 dUSD.
    uint256 public constant FAUCET_LIMIT = 1_000_000 * 10 ** 6;

    error DemoStablecoinFaucetLimit(uint256 requested, uint256 limit);

    constructor() ERC20("Demo USD", "dUSD") ERC20Permit("Demo USD") {}

    /// @notice Mints `amount` (6 decimals) to `to`. Anyone may call; local runs only.
    /// @dev Requirements: `amount` is at most {FAUCET_LIMIT}. Emits {Transfer} from the zero address.
    function faucet(address to, uint256 amount) external {
        if (amount > FAUCET_LIMIT) revert DemoStablecoinFaucetLimit(amount, FAUCET_LIMIT);
        _mint(to, amount);
    }

    /// @notice Six, like USDC and USDT.
    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
