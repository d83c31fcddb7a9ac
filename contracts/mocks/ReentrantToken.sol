// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken
/// @notice TEST ONLY. An ERC-20 that, once armed, calls back into a target (the escrow) while a
/// transfer to or from the target is under way, the way a malicious token or an ERC-777 hook would.
/// The attempt happens once per arming; its outcome is kept for the test to read, and in bubbling
/// mode a failed attempt reverts the transfer with the target's revert data.
contract ReentrantToken is ERC20 {
    address private _target;
    bytes private _payload;
    bool private _bubble;
    bool private _attempted;
    bool private _succeeded;
    bytes private _returnData;

    constructor() ERC20("Reentrant Token", "RENT") {}

    /// @notice Mints freely (test only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice On the next transfer to or from `target`, call it with `payload`. With `bubble`, a
    /// failed call reverts the transfer with the same data; otherwise the transfer goes on.
    function arm(address target, bytes calldata payload, bool bubble) external {
        _target = target;
        _payload = payload;
        _bubble = bubble;
        _attempted = false;
        _succeeded = false;
        delete _returnData;
    }

    /// @notice Whether the armed call was made, whether it succeeded, and what it returned.
    function reentry() external view returns (bool attempted, bool succeeded, bytes memory returnData) {
        return (_attempted, _succeeded, _returnData);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address target = _target;
        if (target == address(0) || (from != target && to != target)) return;
        _target = address(0); // once per arming
        (bool success, bytes memory returnData) = target.call(_payload);
        _attempted = true;
        _succeeded = success;
        _returnData = returnData;
        if (!success && _bubble) {
            assembly ("memory-safe") {
                revert(add(returnData, 0x20), mload(returnData))
            }
        }
    }
}
