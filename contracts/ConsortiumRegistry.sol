// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IAgreementRegistry} from "./interfaces/IAgreementRegistry.sol";
import {IBatchAnchorRegistry} from "./interfaces/IBatchAnchorRegistry.sol";
import {IConsortiumRegistry} from "./interfaces/IConsortiumRegistry.sol";
import {IPartyRegistry} from "./interfaces/IPartyRegistry.sol";
import {PartyRegistry} from "./PartyRegistry.sol";

/// @title ConsortiumRegistry
/// @notice qcn's consortium registry: parties ({PartyRegistry}) and write-once batch anchors in one
///         deployment. One storage word per batch (the header commitment); events carry the header.
contract ConsortiumRegistry is PartyRegistry, IConsortiumRegistry {
    uint8 private constant _MAX_VERDICT = 2;

    mapping(bytes32 batchId => bytes32 commitment) private _commitments;
    address private _agreementRegistry;

    /// @param admin Consortium admin (DEFAULT_ADMIN_ROLE, behind {ADMIN_DELAY}).
    /// @param registrar Holder of REGISTRAR_ROLE.
    constructor(address admin, address registrar) PartyRegistry(admin, registrar) {}

    /// @inheritdoc IConsortiumRegistry
    function version() external pure returns (string memory) {
        return "2.1.0";
    }

    /// @inheritdoc IConsortiumRegistry
    function linkAgreementRegistry(address registry) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // once and for good: enforcement of agreements on anchors can never be switched off
        if (registry == address(0)) revert InvalidAccount(registry);
        address current = _agreementRegistry;
        if (current != address(0)) revert AgreementRegistryAlreadyLinked(current);
        _agreementRegistry = registry;
        emit AgreementRegistryLinked(registry, msg.sender);
    }

    /// @inheritdoc IConsortiumRegistry
    function agreementRegistry() external view returns (address) {
        return _agreementRegistry;
    }

    /// @inheritdoc IBatchAnchorRegistry
    function anchor(
        address supplier,
        bytes32 agreementId,
        AnchorRequest calldata request
    ) external returns (bytes32 commitment) {
        _checkAnchorer(supplier);
        uint256 offset;
        assembly ("memory-safe") {
            offset := request
        }
        if (agreementId != 0) _checkAgreement(agreementId, supplier);
        commitment = _anchorAll(supplier, agreementId, offset, 1);
    }

    /// @inheritdoc IBatchAnchorRegistry
    function anchorSimplePacked(
        bytes32 batchId,
        bytes32 root,
        bytes32 reportHash,
        uint256 packed
    ) external returns (bytes32 commitment) {
        address supplier = address(uint160(packed));
        if (supplier == address(0)) supplier = msg.sender;
        _checkAnchorer(supplier);
        uint64 anchoredAt = _clock();
        bytes32 topic0 = BatchAnchoredSimple.selector;
        uint256 failed;
        // The single-batch hot path (gas budget 50k, ~49.1k of it fixed: base, calldata, the new slot, the
        // supplier's slot, the event): checks, one keccak of the header in scratch memory past the free
        // pointer, one store, one event; no allocation, no ABI tuple.
        assembly ("memory-safe") {
            let recordCount := and(shr(160, packed), 0xffffffff)
            let verdict := shr(192, packed) // > 2 also when bits 200-255 are set
            failed := or(or(iszero(batchId), iszero(root)), or(iszero(recordCount), gt(verdict, 2)))
            failed := or(failed, iszero(eq(shr(96, batchId), supplier))) // the id is bound to its supplier
            if iszero(failed) {
                mstore(0x00, batchId)
                mstore(0x20, _commitments.slot)
                let slot := keccak256(0x00, 0x40)
                if sload(slot) {
                    failed := 1
                }
                if iszero(failed) {
                    // m: header (root, reportHash, agreementId = 0, supplier, recordCount, verdict, anchoredAt,
                    // supersedes = 0); once hashed, its agreementId word becomes the event's meta, so the event
                    // data (root, reportHash, meta) is [m, m + 0x60).
                    let m := mload(0x40)
                    mstore(m, root)
                    mstore(add(m, 0x20), reportHash)
                    mstore(add(m, 0x40), 0)
                    mstore(add(m, 0x60), supplier)
                    mstore(add(m, 0x80), recordCount)
                    mstore(add(m, 0xa0), verdict)
                    mstore(add(m, 0xc0), anchoredAt)
                    mstore(add(m, 0xe0), 0)
                    commitment := keccak256(m, 0x100)
                    sstore(slot, commitment)
                    mstore(add(m, 0x40), or(or(shl(160, recordCount), shl(192, verdict)), or(supplier, shl(200, anchoredAt))))
                    log2(m, 0x60, topic0, batchId)
                }
            }
        }
        if (failed != 0) {
            _checkPacked(batchId, root, packed, supplier);
            assert(false); // the re-check reverts for every condition the fast path refuses: never store nothing
        }
    }

    /// @inheritdoc IBatchAnchorRegistry
    function anchorMany(address supplier, bytes32 agreementId, AnchorRequest[] calldata requests) external {
        if (requests.length == 0) revert EmptyRequest();
        _checkAnchorer(supplier);
        uint256 offset;
        assembly ("memory-safe") {
            offset := requests.offset
        }
        if (agreementId != 0) _checkAgreement(agreementId, supplier);
        _anchorAll(supplier, agreementId, offset, requests.length);
    }

    /// @inheritdoc IBatchAnchorRegistry
    function anchorCorrection(
        address supplier,
        bytes32 agreementId,
        AnchorRequest calldata request,
        bytes32 supersedes,
        BatchHeader calldata predecessor
    ) external returns (bytes32 commitment) {
        _checkAnchorer(supplier);
        bytes32 stored = _commitments[supersedes];
        if (supersedes == 0 || stored == 0) revert UnknownPredecessor(request.batchId, supersedes);
        bytes32 given = _hashHeader(predecessor);
        if (given != stored) revert PredecessorMismatch(supersedes, stored, given);
        if (predecessor.supplier != supplier) revert ForeignPredecessor(supersedes, predecessor.supplier, supplier);
        if (predecessor.agreementId != agreementId) {
            revert PredecessorAgreementMismatch(supersedes, predecessor.agreementId, agreementId);
        }
        _checkRequest(request, supplier);
        if (agreementId != 0) {
            address registry = _agreementRegistry;
            if (registry != address(0)) {
                IAgreementRegistry(registry).recordCorrection(agreementId, supplier, request.batchId, supersedes);
            }
        }
        uint64 anchoredAt = _clock();
        BatchHeader memory header = BatchHeader({
            root: request.root,
            reportHash: request.reportHash,
            agreementId: agreementId,
            supplier: supplier,
            recordCount: request.recordCount,
            verdict: request.verdict,
            anchoredAt: anchoredAt,
            supersedes: supersedes
        });
        commitment = keccak256(abi.encode(header));
        _commitments[request.batchId] = commitment;
        emit BatchCorrected(
            request.batchId,
            supersedes,
            agreementId,
            request.root,
            request.reportHash,
            _packMeta(supplier, request.recordCount, request.verdict, anchoredAt)
        );
    }

    /// @inheritdoc IBatchAnchorRegistry
    function commitmentOf(bytes32 batchId) external view returns (bytes32) {
        return _commitments[batchId];
    }

    /// @inheritdoc IBatchAnchorRegistry
    function isAnchored(bytes32 batchId) external view returns (bool) {
        return _commitments[batchId] != 0;
    }

    /// @inheritdoc IBatchAnchorRegistry
    function headerCommitment(BatchHeader calldata header) external pure returns (bytes32) {
        return _hashHeader(header);
    }

    /// @inheritdoc IBatchAnchorRegistry
    function verify(
        bytes32 batchId,
        BatchHeader calldata header,
        bytes32 salt,
        bytes32 digest,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 stored = _commitments[batchId];
        if (stored == 0 || _hashHeader(header) != stored) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(salt, digest))));
        return MerkleProof.verifyCalldata(proof, header.root, leaf);
    }

    /// @inheritdoc AccessControlDefaultAdminRules
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(IPartyRegistry).interfaceId
            || interfaceId == type(IBatchAnchorRegistry).interfaceId
            || interfaceId == type(IConsortiumRegistry).interfaceId
            || super.supportsInterface(interfaceId);
    }

    /// @dev Anchoring under an agreement needs it Active and the supplier's (checked by the linked agreement
    ///      registry); plain anchors pay nothing for it. Batch counts of the quality score come from the OEM's
    ///      inspections, not from anchors (a supplier cannot pad its own score).
    function _checkAgreement(bytes32 agreementId, address supplier) private view {
        address registry = _agreementRegistry;
        if (registry != address(0)) IAgreementRegistry(registry).checkAnchor(agreementId, supplier);
    }

    /// @dev Reverts unless `supplier` is an active SUPPLIER and the caller is it or one of its relayers.
    function _checkAnchorer(address supplier) private view {
        if (!_isActiveSupplier(supplier)) revert NotSupplier(supplier);
        if (msg.sender != supplier && !_isRelayer(supplier, msg.sender)) {
            revert NotAuthorisedFor(supplier, msg.sender);
        }
    }

    /// @dev Anchors `n` original requests laid out in calldata at `offset` (ABI-encoded AnchorRequest,
    ///      5 words each) and returns the last commitment. This is the gas-critical path, so it is assembly:
    ///      per batch it reads the request, checks it, stores keccak256(abi.encode(header)) in the batch's
    ///      slot and emits {BatchAnchored}, all in scratch memory past the free pointer (nothing allocated
    ///      per batch). On the first bad request it stops and {_checkRequest} re-checks that request in
    ///      Solidity to revert with the precise error. Callers have checked the supplier, and the ABI
    ///      decoder has checked that the requests lie inside calldata.
    function _anchorAll(
        address supplier,
        bytes32 agreementId,
        uint256 offset,
        uint256 n
    ) private returns (bytes32 commitment) {
        uint64 anchoredAt = _clock();
        uint256 metaBase = (uint256(anchoredAt) << 200) | uint256(uint160(supplier));
        bytes32 topic0 = BatchAnchored.selector;
        uint256 failedAt;
        assembly ("memory-safe") {
            let m := mload(0x40)
            // header words that are the same for every batch of the call
            mstore(add(m, 0x40), agreementId)
            mstore(add(m, 0x60), supplier)
            mstore(add(m, 0xc0), anchoredAt)
            mstore(add(m, 0xe0), 0) // supersedes: originals only
            mstore(add(m, 0x100), agreementId) // first word of every event's data
            for {
                let p := offset
                let end := add(offset, mul(n, 0xa0))
            } lt(p, end) {
                p := add(p, 0xa0)
            } {
                let batchId := calldataload(p)
                let root := calldataload(add(p, 0x20))
                let recordCount := calldataload(add(p, 0x60))
                let verdict := calldataload(add(p, 0x80))
                // zero batch id or root, recordCount outside 1..2^32-1, verdict > 2, an id of another supplier
                if or(
                    or(or(iszero(batchId), iszero(root)), or(gt(sub(recordCount, 1), 0xfffffffe), gt(verdict, 2))),
                    iszero(eq(shr(96, batchId), supplier))
                ) {
                    failedAt := p
                    break
                }
                mstore(0x00, batchId)
                mstore(0x20, _commitments.slot)
                let slot := keccak256(0x00, 0x40)
                if sload(slot) {
                    failedAt := p
                    break
                }
                let reportHash := calldataload(add(p, 0x40))
                mstore(m, root)
                mstore(add(m, 0x20), reportHash)
                mstore(add(m, 0x80), recordCount)
                mstore(add(m, 0xa0), verdict)
                commitment := keccak256(m, 0x100)
                sstore(slot, commitment)
                // log data (agreementId, root, reportHash, meta) written right after the header words
                let d := add(m, 0x100)
                mstore(add(d, 0x20), root)
                mstore(add(d, 0x40), reportHash)
                mstore(add(d, 0x60), or(metaBase, or(shl(160, recordCount), shl(192, verdict))))
                log2(d, 0x80, topic0, batchId)
            }
        }
        if (failedAt != 0) {
            AnchorRequest calldata bad;
            assembly ("memory-safe") {
                bad := failedAt
            }
            _checkRequest(bad, supplier); // reverts for every condition the loop rejects
            assert(false); // unreachable: a loop refusal the re-check missed must not end as a successful no-op
        }
    }

    /// @dev Reverts with the precise error for a request of {anchorPacked} that the fast path refused.
    function _checkPacked(bytes32 batchId, bytes32 root, uint256 packed, address supplier) private view {
        if (batchId == 0) revert ZeroBatchId();
        _checkBound(batchId, supplier);
        if (root == 0) revert EmptyRoot(batchId);
        if (uint32(packed >> 160) == 0) revert ZeroRecordCount(batchId);
        if (packed >> 200 != 0) revert MalformedPackedRequest(packed);
        uint8 verdict = uint8(packed >> 192);
        if (verdict > _MAX_VERDICT) revert InvalidVerdict(batchId, verdict);
        bytes32 existing = _commitments[batchId];
        if (existing != 0) revert AlreadyAnchored(batchId, existing);
    }

    /// @dev Reverts with the precise error if `request` cannot be anchored as a new batch.
    function _checkRequest(AnchorRequest calldata request, address supplier) private view {
        bytes32 batchId = request.batchId;
        if (batchId == 0) revert ZeroBatchId();
        _checkBound(batchId, supplier);
        if (request.root == 0) revert EmptyRoot(batchId);
        if (request.recordCount == 0) revert ZeroRecordCount(batchId);
        if (request.verdict > _MAX_VERDICT) revert InvalidVerdict(batchId, request.verdict);
        bytes32 existing = _commitments[batchId];
        if (existing != 0) revert AlreadyAnchored(batchId, existing);
    }

    /// @dev Reverts unless `batchId` starts with `supplier`'s address (see {IBatchAnchorRegistry}).
    function _checkBound(bytes32 batchId, address supplier) private pure {
        if (address(uint160(uint256(batchId) >> 96)) != supplier) revert ForeignBatchId(batchId, supplier);
    }

    /// @dev The contract time, checked to fit the 56 bits of an event's meta word.
    function _clock() private view returns (uint64 t) {
        t = _time();
        if (t > type(uint56).max) revert ClockOutOfRange(t);
    }

    /// @dev The `meta` word of {BatchAnchored} / {BatchCorrected}.
    function _packMeta(
        address supplier,
        uint32 recordCount,
        uint8 verdict,
        uint64 anchoredAt
    ) private pure returns (uint256) {
        return uint256(uint160(supplier)) | (uint256(recordCount) << 160) | (uint256(verdict) << 192)
            | (uint256(anchoredAt) << 200);
    }

    /// @dev keccak256(abi.encode(header)) of a static struct = the commitment layout.
    function _hashHeader(BatchHeader calldata header) private pure returns (bytes32) {
        return keccak256(abi.encode(header));
    }
}
