// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title ConsortiumTimelock
/// @notice OpenZeppelin's {TimelockController} as the holder of the consortium admin role: every role change
///         is scheduled first (event `CallScheduled`), and executes only after `minDelay`, so every party sees
///         it coming and can react (withdraw its excess deposit, stop signing) before it takes effect.
contract ConsortiumTimelock is TimelockController {
    /// @param minDelay Seconds between scheduling and execution.
    /// @param proposers Accounts that may schedule (the consortium's multisig).
    /// @param executors Accounts that may execute once due (zero address: anyone).
    /// @param admin Optional bootstrap admin of the timelock itself (zero: the timelock administers itself).
    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin
    ) TimelockController(minDelay, proposers, executors, admin) {}
}
