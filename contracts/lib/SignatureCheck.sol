// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title SignatureCheck
/// @notice The one signature check of the qcn contracts: an ECDSA signature by the party's registered
///         signer (65-byte r,s,v or 64-byte ERC-2098 r,vs), or an ERC-1271 signature when the signer is a
///         contract (a multisig or smart account). OpenZeppelin's {ECDSA} and {SignatureChecker} do the work.
library SignatureCheck {
    /// @notice `recovered` (zero when the signature does not parse) is not `party`'s registered signer.
    error WrongSigner(address party, address expectedSigner, address recovered);

    /// @dev Reverts {WrongSigner} unless `signature` over `digest` is by `signer` (registered for `party`).
    function check(address party, address signer, bytes32 digest, bytes calldata signature) internal view {
        (uint8 v, bytes32 r, bytes32 s) = ECDSA.parseCalldata(signature); // zeros for any other length
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, v, r, s);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return;
        if (signer.code.length != 0 && SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signature)) {
            return;
        }
        revert WrongSigner(party, signer, recovered);
    }
}
