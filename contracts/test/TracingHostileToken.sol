// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Receives the transfer hook of {TracingHostileToken}.
interface ITracingTokenHook {
    /// @notice Called by the token on every transfer to the hook's account, after balances changed.
    function onTokenReceived(address from, uint256 value) external;
}

/// @title TracingHostileToken
/// @notice TEST ONLY: an ERC-20 that notifies a receiving contract on every transfer (like ERC-777 hooks), so
///         the receiver can try to re-enter the tracing contract in the middle of a fee claim or withdrawal.
contract TracingHostileToken is ERC20 {
    constructor() ERC20("qcn Tracing Hostile Token", "THOST") {}

    /// @notice Mints `amount` to `to` (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from != address(0) && to.code.length != 0) {
            // best effort like a real hook: a receiver without the hook must not block transfers
            try ITracingTokenHook(to).onTokenReceived(from, value) {} catch {}
        }
    }
}

/// @title TracingReentrantParty
/// @notice TEST ONLY: a contract account registered as a party (a lab or an OEM) that, when the hostile token
///         notifies it of an incoming transfer, re-enters a programmed call once and records the outcome.
contract TracingReentrantParty is ITracingTokenHook {
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

    /// @notice Arms the hook: on the next incoming token transfer, call `target` with `data` once.
    function arm(address target, bytes calldata data) external {
        _target = target;
        _reentry = data;
        _armed = true;
    }

    /// @inheritdoc ITracingTokenHook
    function onTokenReceived(address, uint256) external {
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
