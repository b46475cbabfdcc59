// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumRegistry} from "../ConsortiumRegistry.sol";

/// @title ConsortiumRegistryHarness
/// @notice TEST ONLY: {ConsortiumRegistry} with a settable clock. Never deploy outside tests.
contract ConsortiumRegistryHarness is ConsortiumRegistry {
    uint64 private _fixedTime;

    /// @notice Emitted when the test clock is set (0 = follow the block timestamp again).
    event TimeSet(uint64 time);

    constructor(address admin, address registrar) ConsortiumRegistry(admin, registrar) {}

    /// @notice Sets the contract clock to `time`; 0 returns to block time.
    function setTime(uint64 time) external {
        _fixedTime = time;
        emit TimeSet(time);
    }

    function _time() internal view override returns (uint64) {
        uint64 fixedTime = _fixedTime;
        return fixedTime == 0 ? uint64(block.timestamp) : fixedTime;
    }
}
