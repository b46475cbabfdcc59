// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IPartyRegistry} from "./IPartyRegistry.sol";
import {IBatchAnchorRegistry} from "./IBatchAnchorRegistry.sol";

/// @title IConsortiumRegistry
/// @notice The qcn consortium registry: parties and batch anchors in one deployment, so anchoring checks the
///         supplier with an internal storage read instead of an external call (gas budget of an anchor).
interface IConsortiumRegistry is IPartyRegistry, IBatchAnchorRegistry {
    /// @notice Semantic version of the deployed code, e.g. "1.0.0".
    function version() external pure returns (string memory);
}
