// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice DEV/TEST ONLY settlement token: an 18-decimal ERC-20 anyone can mint. Deploy on dev chains only;
///         production configures a real settlement token address.
contract TestToken is ERC20 {
    constructor() ERC20("qcn Test Settlement Token", "QTS") {}

    /// @notice Mints `amount` to `to` (open to everyone: test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
