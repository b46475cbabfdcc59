// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IPartyRegistry} from "./IPartyRegistry.sol";
import {IBatchAnchorRegistry} from "./IBatchAnchorRegistry.sol";

/// @title IConsortiumRegistry
/// @notice The qcn consortium registry: parties and batch anchors in one deployment, so anchoring checks the
///         supplier with an internal storage read instead of an external call (gas budget of an anchor).
interface IConsortiumRegistry is IPartyRegistry, IBatchAnchorRegistry {
    /// @notice The agreement registry is linked already (to `registry`); the link is permanent.
    error AgreementRegistryAlreadyLinked(address registry);

    /// @notice The admin linked the agreement registry that checks anchors under an agreement (permanent).
    event AgreementRegistryLinked(address indexed registry, address indexed linkedBy);

    /// @notice Semantic version of the deployed code, e.g. "1.1.0".
    function version() external pure returns (string memory);

    /// @notice Links the agreement registry (admin only, once, non-zero). From then on every anchor with a
    ///         non-zero agreement id is refused unless the agreement is active and the supplier's, and every
    ///         correction under an agreement is counted there. Before the link, agreement ids are recorded only.
    function linkAgreementRegistry(address registry) external;

    /// @notice The linked agreement registry (zero if none).
    function agreementRegistry() external view returns (address);
}
