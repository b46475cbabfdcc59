// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IPartyRegistry
/// @notice Consortium party registry of qcn: OEMs, suppliers and ISO/IEC 17025 laboratories, each with a
///         rotatable signing key, plus the relayers a supplier allows to anchor batches on its behalf.
/// @dev A party is keyed by its account address. Only the registrar (the consortium admin) registers,
///      renews accreditations and deactivates; a party may rotate its own signer and approve relayers.
interface IPartyRegistry {
    /// @notice Kind of a party; `None` marks an unregistered account.
    enum PartyKind {
        None,
        Oem,
        Supplier,
        Lab
    }

    /// @notice A registered party as stored on chain.
    /// @param kind OEM=1, SUPPLIER=2, LAB=3.
    /// @param active False once the registrar deactivated the party (deactivation is final).
    /// @param accreditationExpiry Labs only: last second (unix time, inclusive) the accreditation is valid.
    /// @param signer Current signing key of the party (EIP-712 signatures are checked against it).
    /// @param name Short UTF-8 name right-padded with zeros, or a hash of a longer name.
    /// @param accreditationId Labs only: accreditation number (e.g. "D-PL-12345-01-00"), zero otherwise.
    struct Party {
        PartyKind kind;
        bool active;
        uint64 accreditationExpiry;
        address signer;
        bytes32 name;
        bytes32 accreditationId;
    }

    /// @notice `account` is the zero address where a real account is required.
    error InvalidAccount(address account);
    /// @notice `kind` is not OEM, SUPPLIER or LAB.
    error InvalidPartyKind(PartyKind kind);
    /// @notice `signer` cannot be the signing key of `account` (zero address).
    error InvalidSigner(address account, address signer);
    /// @notice `account` is already registered, as `kind`.
    error PartyAlreadyRegistered(address account, PartyKind kind);
    /// @notice `account` is not a registered party.
    error UnknownParty(address account);
    /// @notice `account` has been deactivated.
    error PartyInactive(address account);
    /// @notice `caller` is neither the party `account` itself nor a registrar.
    error NotPartyOrRegistrar(address account, address caller);
    /// @notice `account` is registered as `kind`, not as a LAB.
    error NotALab(address account, PartyKind kind);
    /// @notice Accreditation data do not fit the party kind: labs need a non-zero id and expiry, other
    ///         kinds must pass zeros.
    error InvalidAccreditation(address account, bytes32 accreditationId, uint64 accreditationExpiry);
    /// @notice A lab accreditation expiring at `accreditationExpiry` is already expired at `at`.
    error AccreditationExpired(address lab, uint64 accreditationExpiry, uint64 at);
    /// @notice `signer` already is the signing key of `account`.
    error SignerUnchanged(address account, address signer);
    /// @notice `account` is not an active SUPPLIER party.
    error NotSupplier(address account);
    /// @notice `relayer` is already approved for `supplier`.
    error RelayerAlreadyApproved(address supplier, address relayer);
    /// @notice `relayer` is not approved for `supplier`.
    error RelayerNotApproved(address supplier, address relayer);
    /// @notice No signer change is pending for `account`.
    error NoSignerChange(address account);
    /// @notice The signer change of `account` takes effect at `effectiveAt`, it is `at` now.
    error SignerChangeNotDue(address account, uint64 effectiveAt, uint64 at);

    /// @notice `account` was registered as `kind` with signing key `signer`.
    event PartyRegistered(
        address indexed account,
        PartyKind indexed kind,
        bytes32 name,
        address signer,
        bytes32 accreditationId,
        uint64 accreditationExpiry
    );
    /// @notice The signing key of `account` changed from `previousSigner` to `newSigner`, done by `rotatedBy`.
    event SignerRotated(
        address indexed account,
        address indexed previousSigner,
        address indexed newSigner,
        address rotatedBy
    );
    /// @notice The accreditation of `lab` was renewed or changed.
    /// @notice The registrar `by` proposed `newSigner` for `account`, effective from `effectiveAt` unless the
    ///         party cancels it.
    event SignerChangeProposed(address indexed account, address indexed newSigner, uint64 effectiveAt, address by);
    /// @notice The pending signer change of `account` to `newSigner` was cancelled by `by`.
    event SignerChangeCancelled(address indexed account, address indexed newSigner, address by);
    /// @notice The lab's accreditation changed.
    event AccreditationUpdated(address indexed lab, bytes32 accreditationId, uint64 accreditationExpiry);
    /// @notice `account` was deactivated by `deactivatedBy`.
    event PartyDeactivated(address indexed account, address indexed deactivatedBy);
    /// @notice `relayer` may now anchor for `supplier`; approved by `approvedBy` (the supplier or a registrar).
    event RelayerApproved(address indexed supplier, address indexed relayer, address indexed approvedBy);
    /// @notice `relayer` may no longer anchor for `supplier`; revoked by `revokedBy`.
    event RelayerRevoked(address indexed supplier, address indexed relayer, address indexed revokedBy);

    /// @notice Registers `account` as a party. Registrar only.
    /// @dev Labs need a non-zero `accreditationId` and an `accreditationExpiry` not yet passed; OEMs and
    ///      suppliers must pass zero for both. Emits {PartyRegistered}.
    function registerParty(
        address account,
        PartyKind kind,
        bytes32 name,
        address signer,
        bytes32 accreditationId,
        uint64 accreditationExpiry
    ) external;

    /// @notice The (active) party rotates its own signing key at once. Emits {SignerRotated}.
    function setSigner(address account, address newSigner) external;

    /// @notice Registrar: proposes `newSigner` for `account` (lost key); it takes effect through
    ///         {completeSignerChange} after SIGNER_CHANGE_DELAY. Emits {SignerChangeProposed}.
    function proposeSigner(address account, address newSigner) external;

    /// @notice The party (its account or current signer) or a registrar cancels a pending signer change.
    ///         Emits {SignerChangeCancelled}.
    function cancelSignerChange(address account) external;

    /// @notice Anyone, once due: applies the pending signer change of `account`. Emits {SignerRotated}.
    function completeSignerChange(address account) external;

    /// @notice The pending signer change of `account` (zero signer if none).
    function pendingSigner(address account) external view returns (address signer, uint64 effectiveAt);

    /// @notice Renews or changes the accreditation of the active lab `lab`. Registrar only.
    /// @dev Emits {AccreditationUpdated}.
    function setAccreditation(address lab, bytes32 accreditationId, uint64 accreditationExpiry) external;

    /// @notice Deactivates `account` for good. Registrar only. Emits {PartyDeactivated}.
    function deactivateParty(address account) external;

    /// @notice Allows `relayer` to anchor batches for the active supplier `supplier`.
    /// @dev Callable by a registrar or by the supplier itself. Emits {RelayerApproved}.
    function approveRelayer(address supplier, address relayer) external;

    /// @notice Withdraws the approval of `relayer` for `supplier`. Registrar or supplier. Emits {RelayerRevoked}.
    function revokeRelayer(address supplier, address relayer) external;

    /// @notice The party registered for `account` (all zero if none).
    function party(address account) external view returns (Party memory);

    /// @notice What a signature check needs of `account`'s party, from its first storage word only: kind,
    ///         active flag, accreditation expiry (labs) and current signer (all zero if not registered).
    /// @dev One storage read where {party} makes three (name and accreditation id are not returned):
    ///      contracts checking EIP-712 signatures of parties (TracingCases) call this. The name is chosen for
    ///      its low selector (0x0d81d063): the dispatcher reaches it after two comparisons.
    function signerFor(address account)
        external
        view
        returns (PartyKind kind, bool active, uint64 accreditationExpiry, address signer);

    /// @notice True if `account` is a registered, active party of kind `kind`.
    function isActive(address account, PartyKind kind) external view returns (bool);

    /// @notice True if `relayer` is approved to anchor for `supplier`.
    function isRelayerFor(address supplier, address relayer) external view returns (bool);

    /// @notice True if `lab` is an active LAB whose accreditation is valid at unix time `at` (expiry inclusive).
    function accreditationValid(address lab, uint64 at) external view returns (bool);
}
