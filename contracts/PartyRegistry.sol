// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IPartyRegistry} from "./interfaces/IPartyRegistry.sol";

/// @title PartyRegistry
/// @notice Party registry part of the consortium registry (see {IPartyRegistry}).
/// @dev Abstract: deployed as part of {ConsortiumRegistry}. `_time()` is the single clock, overridable in
///      test harnesses. The admin role follows OpenZeppelin's {AccessControlDefaultAdminRules}: one holder,
///      handed over only after {ADMIN_DELAY}, every step an event. A party's signer changes by the party
///      itself at once, or by the registrar after {SIGNER_CHANGE_DELAY} unless the party objects.
abstract contract PartyRegistry is AccessControlDefaultAdminRules, IPartyRegistry {
    /// @notice Role allowed to register, renew and deactivate parties and propose signer recoveries.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Delay of a hand-over of the admin role.
    uint48 public constant ADMIN_DELAY = 2 days;
    /// @notice Delay before a registrar's signer change takes effect; the party may cancel it meanwhile.
    uint64 public constant SIGNER_CHANGE_DELAY = 7 days;

    struct PendingSigner {
        address signer;
        uint64 effectiveAt;
    }

    mapping(address account => Party) private _parties;
    mapping(address supplier => mapping(address relayer => bool)) private _relayers;
    mapping(address account => PendingSigner) private _pendingSigner;

    /// @param admin Consortium admin (a multisig or timelock in production): DEFAULT_ADMIN_ROLE only.
    /// @param registrar Gets REGISTRAR_ROLE (a separate key).
    constructor(address admin, address registrar) AccessControlDefaultAdminRules(ADMIN_DELAY, admin) {
        if (registrar == address(0)) revert InvalidAccount(registrar);
        _grantRole(REGISTRAR_ROLE, registrar);
    }

    /// @inheritdoc IPartyRegistry
    function registerParty(
        address account,
        PartyKind kind,
        bytes32 name,
        address signer,
        bytes32 accreditationId,
        uint64 accreditationExpiry
    ) external onlyRole(REGISTRAR_ROLE) {
        if (account == address(0)) revert InvalidAccount(account);
        if (kind == PartyKind.None) revert InvalidPartyKind(kind);
        if (signer == address(0)) revert InvalidSigner(account, signer);
        PartyKind existing = _parties[account].kind;
        if (existing != PartyKind.None) revert PartyAlreadyRegistered(account, existing);
        if (kind == PartyKind.Lab) {
            _checkAccreditation(account, accreditationId, accreditationExpiry);
        } else if (accreditationId != 0 || accreditationExpiry != 0) {
            revert InvalidAccreditation(account, accreditationId, accreditationExpiry);
        }
        _parties[account] = Party({
            kind: kind,
            active: true,
            accreditationExpiry: accreditationExpiry,
            signer: signer,
            name: name,
            accreditationId: accreditationId
        });
        emit PartyRegistered(account, kind, name, signer, accreditationId, accreditationExpiry);
    }

    /// @inheritdoc IPartyRegistry
    function setSigner(address account, address newSigner) external {
        Party storage p = _existingParty(account);
        if (msg.sender != account) revert NotPartyOrRegistrar(account, msg.sender);
        if (!p.active) revert PartyInactive(account);
        _rotate(p, account, newSigner);
        delete _pendingSigner[account];
    }

    /// @inheritdoc IPartyRegistry
    function proposeSigner(address account, address newSigner) external onlyRole(REGISTRAR_ROLE) {
        Party storage p = _existingParty(account);
        if (newSigner == address(0)) revert InvalidSigner(account, newSigner);
        if (p.signer == newSigner) revert SignerUnchanged(account, newSigner);
        uint64 effectiveAt = _time() + SIGNER_CHANGE_DELAY;
        _pendingSigner[account] = PendingSigner({signer: newSigner, effectiveAt: effectiveAt});
        emit SignerChangeProposed(account, newSigner, effectiveAt, msg.sender);
    }

    /// @inheritdoc IPartyRegistry
    function cancelSignerChange(address account) external {
        Party storage p = _existingParty(account);
        if (msg.sender != account && msg.sender != p.signer && !hasRole(REGISTRAR_ROLE, msg.sender)) {
            revert NotPartyOrRegistrar(account, msg.sender);
        }
        address pending = _pendingSigner[account].signer;
        if (pending == address(0)) revert NoSignerChange(account);
        delete _pendingSigner[account];
        emit SignerChangeCancelled(account, pending, msg.sender);
    }

    /// @inheritdoc IPartyRegistry
    function completeSignerChange(address account) external {
        Party storage p = _existingParty(account);
        PendingSigner memory pending = _pendingSigner[account];
        if (pending.signer == address(0)) revert NoSignerChange(account);
        uint64 now_ = _time();
        if (now_ < pending.effectiveAt) revert SignerChangeNotDue(account, pending.effectiveAt, now_);
        delete _pendingSigner[account];
        _rotate(p, account, pending.signer);
    }

    /// @inheritdoc IPartyRegistry
    function pendingSigner(address account) external view returns (address signer, uint64 effectiveAt) {
        PendingSigner memory pending = _pendingSigner[account];
        return (pending.signer, pending.effectiveAt);
    }

    /// @inheritdoc IPartyRegistry
    function setAccreditation(
        address lab,
        bytes32 accreditationId,
        uint64 accreditationExpiry
    ) external onlyRole(REGISTRAR_ROLE) {
        Party storage p = _existingParty(lab);
        if (p.kind != PartyKind.Lab) revert NotALab(lab, p.kind);
        if (!p.active) revert PartyInactive(lab);
        _checkAccreditation(lab, accreditationId, accreditationExpiry);
        p.accreditationId = accreditationId;
        p.accreditationExpiry = accreditationExpiry;
        emit AccreditationUpdated(lab, accreditationId, accreditationExpiry);
    }

    /// @inheritdoc IPartyRegistry
    function deactivateParty(address account) external onlyRole(REGISTRAR_ROLE) {
        Party storage p = _existingParty(account);
        if (!p.active) revert PartyInactive(account);
        p.active = false;
        emit PartyDeactivated(account, msg.sender);
    }

    /// @inheritdoc IPartyRegistry
    function approveRelayer(address supplier, address relayer) external {
        _checkSupplierOrRegistrar(supplier);
        Party storage p = _parties[supplier];
        if (p.kind != PartyKind.Supplier || !p.active) revert NotSupplier(supplier);
        if (relayer == address(0)) revert InvalidAccount(relayer);
        if (_relayers[supplier][relayer]) revert RelayerAlreadyApproved(supplier, relayer);
        _relayers[supplier][relayer] = true;
        emit RelayerApproved(supplier, relayer, msg.sender);
    }

    /// @inheritdoc IPartyRegistry
    function revokeRelayer(address supplier, address relayer) external {
        _checkSupplierOrRegistrar(supplier);
        if (!_relayers[supplier][relayer]) revert RelayerNotApproved(supplier, relayer);
        _relayers[supplier][relayer] = false;
        emit RelayerRevoked(supplier, relayer, msg.sender);
    }

    /// @inheritdoc IPartyRegistry
    function party(address account) external view returns (Party memory) {
        return _parties[account];
    }

    /// @inheritdoc IPartyRegistry
    function signerFor(address account)
        external
        view
        returns (PartyKind kind, bool active, uint64 accreditationExpiry, address signer)
    {
        Party storage p = _parties[account];
        return (p.kind, p.active, p.accreditationExpiry, p.signer);
    }

    /// @inheritdoc IPartyRegistry
    function isActive(address account, PartyKind kind) external view returns (bool) {
        Party storage p = _parties[account];
        return kind != PartyKind.None && p.kind == kind && p.active;
    }

    /// @inheritdoc IPartyRegistry
    function isRelayerFor(address supplier, address relayer) external view returns (bool) {
        return _relayers[supplier][relayer];
    }

    /// @inheritdoc IPartyRegistry
    function accreditationValid(address lab, uint64 at) external view returns (bool) {
        Party storage p = _parties[lab];
        return p.kind == PartyKind.Lab && p.active && at <= p.accreditationExpiry;
    }

    /// @dev True if `supplier` is an active SUPPLIER party: one storage read, one comparison (on the anchoring
    ///      hot path). The low 16 bits of a party's first word are `kind` (byte 0) and `active` (byte 1).
    function _isActiveSupplier(address supplier) internal view returns (bool ok) {
        assembly ("memory-safe") {
            mstore(0x00, and(supplier, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x20, _parties.slot)
            ok := eq(and(sload(keccak256(0x00, 0x40)), 0xffff), 0x0102) // kind Supplier (2), active
        }
    }

    /// @dev True if `relayer` is approved for `supplier`.
    function _isRelayer(address supplier, address relayer) internal view returns (bool) {
        return _relayers[supplier][relayer];
    }

    /// @dev Current contract time; tests override it.
    function _time() internal view virtual returns (uint64) {
        return uint64(block.timestamp);
    }

    function _rotate(Party storage p, address account, address newSigner) private {
        if (newSigner == address(0)) revert InvalidSigner(account, newSigner);
        address previous = p.signer;
        if (previous == newSigner) revert SignerUnchanged(account, newSigner);
        p.signer = newSigner;
        emit SignerRotated(account, previous, newSigner, msg.sender);
    }

    function _existingParty(address account) private view returns (Party storage p) {
        p = _parties[account];
        if (p.kind == PartyKind.None) revert UnknownParty(account);
    }

    function _checkSupplierOrRegistrar(address supplier) private view {
        if (msg.sender != supplier && !hasRole(REGISTRAR_ROLE, msg.sender)) {
            revert NotPartyOrRegistrar(supplier, msg.sender);
        }
    }

    function _checkAccreditation(address lab, bytes32 accreditationId, uint64 accreditationExpiry) private view {
        if (accreditationId == 0 || accreditationExpiry == 0) {
            revert InvalidAccreditation(lab, accreditationId, accreditationExpiry);
        }
        uint64 now_ = _time();
        if (accreditationExpiry < now_) revert AccreditationExpired(lab, accreditationExpiry, now_);
    }
}
