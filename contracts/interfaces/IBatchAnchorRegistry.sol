// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IBatchAnchorRegistry
/// @notice Write-once anchors of supplier batches. Each batch id binds a {BatchHeader} through ONE stored
///         word, its commitment; the events carry the header fields so an indexer can rebuild it.
/// @dev commitment = keccak256(abi.encode(root, reportHash, agreementId, supplier, recordCount, verdict,
///      anchoredAt, supersedes)), i.e. keccak256(abi.encode(header)). Leaves of `root` follow OpenZeppelin's
///      StandardMerkleTree with leaf types ["bytes32","bytes32"] = (salt, digest), double hashed.
///      Anchoring requires `supplier` to be an active SUPPLIER party (error `NotSupplier(address)` of
///      {IPartyRegistry}) and the caller to be the supplier or a relayer it approved. {anchor} and
///      {anchorMany} take originals only; a correction goes through {anchorCorrection}, which links it to
///      its predecessor (nothing is overwritten). A batch id is bound to its supplier: its top 160 bits are
///      the supplier's address (the low 96 bits are the supplier's own, e.g. a hash of its lot key), so no
///      party can take, in advance or by front-running, an id another supplier will anchor.
interface IBatchAnchorRegistry {
    /// @notice The header a batch commitment binds. Layout fixed: the off-chain proof format relies on it.
    /// @param root Merkle root over the batch's salted record digests.
    /// @param reportHash Hash of the lab report file (zero if the batch has none).
    /// @param agreementId Agreement the batch is delivered under (zero while agreements are not enforced).
    /// @param supplier The supplier party the batch belongs to.
    /// @param recordCount Number of leaves under `root` (never zero).
    /// @param verdict 0 = none, 1 = accepted, 2 = rejected.
    /// @param anchoredAt Contract time (block timestamp) when the batch was anchored; set by the contract.
    /// @param supersedes Batch id this batch corrects, zero for an original.
    struct BatchHeader {
        bytes32 root;
        bytes32 reportHash;
        bytes32 agreementId;
        address supplier;
        uint32 recordCount;
        uint8 verdict;
        uint64 anchoredAt;
        bytes32 supersedes;
    }

    /// @notice What the caller supplies per batch. The supplier and agreement are per call (one
    ///         transaction anchors batches of one supplier under one agreement); the contract adds
    ///         anchoredAt and supersedes.
    struct AnchorRequest {
        bytes32 batchId;
        bytes32 root;
        bytes32 reportHash;
        uint32 recordCount;
        uint8 verdict;
    }

    /// @notice `batchId` is already anchored with commitment `existingCommitment` (nothing is overwritten).
    error AlreadyAnchored(bytes32 batchId, bytes32 existingCommitment);
    /// @notice `caller` is neither `supplier` nor a relayer approved for it.
    error NotAuthorisedFor(address supplier, address caller);
    /// @notice The zero batch id is reserved (it means "supersedes nothing").
    error ZeroBatchId();
    /// @notice `batchId` does not start with `supplier`'s address (bits 96-255): it is not that supplier's id.
    error ForeignBatchId(bytes32 batchId, address supplier);
    /// @notice The Merkle root of `batchId` is zero.
    error EmptyRoot(bytes32 batchId);
    /// @notice The record count of `batchId` is zero.
    error ZeroRecordCount(bytes32 batchId);
    /// @notice `verdict` of `batchId` is not 0 (none), 1 (accepted) or 2 (rejected).
    error InvalidVerdict(bytes32 batchId, uint8 verdict);
    /// @notice {anchorMany} was called without any request.
    error EmptyRequest();
    /// @notice The contract clock `time` does not fit the 56 bits the events carry.
    error ClockOutOfRange(uint64 time);
    /// @notice The packed request word of {anchorSimplePacked} has bits set above its verdict (bits 200-255).
    error MalformedPackedRequest(uint256 packed);
    /// @notice The correction `batchId` names `supersedes`, which is not anchored.
    error UnknownPredecessor(bytes32 batchId, bytes32 supersedes);
    /// @notice The predecessor header given for `supersedes` hashes to `givenCommitment`, not to the stored
    ///         `storedCommitment`.
    error PredecessorMismatch(bytes32 supersedes, bytes32 storedCommitment, bytes32 givenCommitment);
    /// @notice `supersedes` belongs to `predecessorSupplier`, not to the correcting `supplier`.
    error ForeignPredecessor(bytes32 supersedes, address predecessorSupplier, address supplier);
    /// @notice A correction stays under its predecessor's agreement (`predecessorAgreement`), not `agreementId`.
    error PredecessorAgreementMismatch(bytes32 supersedes, bytes32 predecessorAgreement, bytes32 agreementId);

    /// @notice An original batch was anchored. With `supersedes` = 0 this carries every header field.
    /// @dev Lean on purpose (gas budget of anchorMany: <= 27k per batch, 22.1k of it the storage word):
    ///      only `batchId` is a topic, and `meta` packs four header fields into one word:
    ///      bits 0-159 supplier, 160-191 recordCount, 192-199 verdict, 200-255 anchoredAt.
    ///      The Python client (chain.clients.decode_anchor_log) unpacks it.
    event BatchAnchored(bytes32 indexed batchId, bytes32 agreementId, bytes32 root, bytes32 reportHash, uint256 meta);
    /// @notice An original batch under no agreement was anchored through {anchorSimplePacked}: {BatchAnchored}
    ///         without its agreementId word (zero by definition), 256 gas less on the single-batch hot path.
    /// @dev Header: (root, reportHash, agreementId = 0, meta's supplier, recordCount, verdict, anchoredAt,
    ///      supersedes = 0); `meta` packed as in {BatchAnchored}.
    event BatchAnchoredSimple(bytes32 indexed batchId, bytes32 root, bytes32 reportHash, uint256 meta);
    /// @notice A correction `batchId` of the earlier batch `supersedes` was anchored (every header field;
    ///         `meta` packed as in {BatchAnchored}).
    event BatchCorrected(
        bytes32 indexed batchId,
        bytes32 indexed supersedes,
        bytes32 agreementId,
        bytes32 root,
        bytes32 reportHash,
        uint256 meta
    );

    /// @notice Anchors one original batch of `supplier` under `agreementId` (zero: none). Emits {BatchAnchored}.
    /// @return commitment The stored commitment of the batch header.
    function anchor(
        address supplier,
        bytes32 agreementId,
        AnchorRequest calldata request
    ) external returns (bytes32 commitment);

    /// @notice Anchors one original batch under no agreement: {anchor} in a lean calldata form for the common
    ///         single-batch case (4 words instead of 8, no ABI tuple to decode; a supplier anchoring for
    ///         itself leaves the supplier bits zero, so the word is almost all zero bytes).
    /// @dev `packed` = supplier | recordCount << 160 | verdict << 192 (the `meta` layout of {BatchAnchored}
    ///      without anchoredAt); supplier zero = the caller; bits 200-255 must be zero, else
    ///      {MalformedPackedRequest}. Same checks, errors and commitment as
    ///      `anchor(supplier, 0, AnchorRequest(batchId, root, reportHash, recordCount, verdict))`; emits
    ///      {BatchAnchoredSimple} (the same header without the zero agreementId word).
    ///      The name is chosen for its selector (0x016ae213, below every other one of the registry), so the
    ///      dispatcher finds it first (~290 gas less than in the middle of the list).
    /// @return commitment The stored commitment of the batch header.
    function anchorSimplePacked(
        bytes32 batchId,
        bytes32 root,
        bytes32 reportHash,
        uint256 packed
    ) external returns (bytes32 commitment);

    /// @notice Anchors several original batches of one `supplier` under one `agreementId` in one
    ///         transaction; all or nothing (one bad or duplicate request reverts the whole call).
    /// @dev Emits one {BatchAnchored} per request, in order.
    function anchorMany(address supplier, bytes32 agreementId, AnchorRequest[] calldata requests) external;

    /// @notice Anchors `request` as a correction of the batch `supersedes` of the same `supplier`.
    /// @dev Only the predecessor's commitment is stored, so the caller passes its header (as rebuilt from
    ///      its event) to prove which supplier it belongs to. The predecessor is not modified.
    ///      Emits {BatchCorrected}.
    function anchorCorrection(
        address supplier,
        bytes32 agreementId,
        AnchorRequest calldata request,
        bytes32 supersedes,
        BatchHeader calldata predecessor
    ) external returns (bytes32 commitment);

    /// @notice The commitment stored for `batchId`, zero if not anchored.
    function commitmentOf(bytes32 batchId) external view returns (bytes32);

    /// @notice True if `batchId` is anchored.
    function isAnchored(bytes32 batchId) external view returns (bool);

    /// @notice The commitment of `header`: keccak256(abi.encode(header)).
    function headerCommitment(BatchHeader calldata header) external pure returns (bytes32);

    /// @notice True if `header` is the anchored header of `batchId` and the leaf (`salt`, `digest`) is under
    ///         its root by `proof` (OpenZeppelin StandardMerkleTree, leaf types ["bytes32","bytes32"]).
    function verify(
        bytes32 batchId,
        BatchHeader calldata header,
        bytes32 salt,
        bytes32 digest,
        bytes32[] calldata proof
    ) external view returns (bool);
}
