// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title NoBoolToken
/// @notice TEST ONLY. An ERC-20 whose `transfer`, `transferFrom` and `approve` return nothing, as
/// USDT's do on Ethereum mainnet; callers that expect a bool fail to decode it.
contract NoBoolToken {
    mapping(address account => uint256) private _balances;
    mapping(address owner => mapping(address spender => uint256)) private _allowances;
    uint256 private _totalSupply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error NoBoolTokenInsufficientBalance(address from, uint256 balance, uint256 needed);
    error NoBoolTokenInsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);

    /// @notice Mints freely (test only).
    function mint(address to, uint256 amount) external {
        _totalSupply += amount;
        _balances[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Returns nothing.
    function approve(address spender, uint256 amount) external {
        _allowances[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
    }

    /// @notice Returns nothing.
    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount);
    }

    /// @notice Returns nothing.
    function transferFrom(address from, address to, uint256 amount) external {
        uint256 allowed = _allowances[from][msg.sender];
        if (allowed < amount) revert NoBoolTokenInsufficientAllowance(from, msg.sender, allowed, amount);
        _allowances[from][msg.sender] = allowed - amount;
        _move(from, to, amount);
    }

    /// @notice As ERC-20.
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice As ERC-20.
    function allowance(address owner, address spender) external view returns (uint256) {
        return _allowances[owner][spender];
    }

    /// @notice As ERC-20.
    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    /// @notice Six, like USDT.
    function decimals() external pure returns (uint8) {
        return 6;
    }

    function _move(address from, address to, uint256 amount) private {
        uint256 balance = _balances[from];
        if (balance < amount) revert NoBoolTokenInsufficientBalance(from, balance, amount);
        _balances[from] = balance - amount;
        _balances[to] += amount;
        emit Transfer(from, to, amount);
    }
}
