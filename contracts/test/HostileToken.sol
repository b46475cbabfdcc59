// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Receives the transfer hook of {HostileToken}.
interface ITokenHook {
    /// @notice Called by the token on every transfer, after balances changed.
    function onTokenTransfer(address from, address to, uint256 value) external;
}

/// @title HostileToken
/// @notice TEST ONLY: an ERC-20 that calls a hook contract on every transfer (like ERC-777 hooks), so the
///         hook can try to re-enter the escrow in the middle of a deposit, withdrawal or claim.
contract HostileToken is ERC20 {
    address private _hook;

    /// @notice The transfer hook is now `hook` (zero: none).
    event HookSet(address hook);

    constructor() ERC20("qcn Hostile Token", "HOST") {}

    /// @notice Mints `amount` to `to` (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Sets the contract called on every transfer.
    function setHook(address hook) external {
        _hook = hook;
        emit HookSet(hook);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address hook = _hook;
        if (hook != address(0) && from != address(0)) ITokenHook(hook).onTokenTransfer(from, to, value);
    }
}

/// @title ReentrantParty
/// @notice TEST ONLY: a contract account registered as a party (supplier or OEM) that, when the hostile token
///         notifies it of a transfer, re-enters a programmed call on the escrow once and records the outcome.
contract ReentrantParty is ITokenHook {
    address private _target;
    bytes private _reentry;
    bool private _armed;
    uint256 private _attempts;
    bool private _lastOk;
    bytes private _lastReturn;

    /// @notice A re-entry was attempted: `ok` tells whether it succeeded, `returned` its return/revert data.
    event ReentryAttempted(bool ok, bytes returned);

    /// @notice Calls `target` with `data` as this party; bubbles a revert.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    /// @notice Arms the hook: on the next token transfer, call `target` with `data` once.
    function arm(address target, bytes calldata data) external {
        _target = target;
        _reentry = data;
        _armed = true;
    }

    /// @inheritdoc ITokenHook
    function onTokenTransfer(address, address, uint256) external {
        if (!_armed) return;
        _armed = false;
        _attempts += 1;
        (bool ok, bytes memory ret) = _target.call(_reentry);
        _lastOk = ok;
        _lastReturn = ret;
        emit ReentryAttempted(ok, ret);
    }

    /// @notice Number of re-entries attempted, whether the last succeeded, and its return/revert data.
    function lastReentry() external view returns (uint256 attempts, bool ok, bytes memory returned) {
        return (_attempts, _lastOk, _lastReturn);
    }
}
