// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TracingCases} from "../TracingCases.sol";
import {IAgreementRegistry} from "../interfaces/IAgreementRegistry.sol";
import {IBatchAnchorRegistry} from "../interfaces/IBatchAnchorRegistry.sol";
import {IDepositEscrow} from "../interfaces/IDepositEscrow.sol";
import {IPartyRegistry} from "../interfaces/IPartyRegistry.sol";

/// @title TracingCasesHarness
/// @notice TEST ONLY: {TracingCases} with a settable clock. Never deploy outside tests.
contract TracingCasesHarness is TracingCases {
    uint64 private _fixedTime;

    /// @notice Emitted when the test clock is set (0 = follow the block timestamp again).
    event TimeSet(uint64 time);

    constructor(
        address admin,
        IPartyRegistry parties,
        IBatchAnchorRegistry anchors,
        IAgreementRegistry agreements,
        IDepositEscrow escrow
    ) TracingCases(admin, parties, anchors, agreements, escrow) {}

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
