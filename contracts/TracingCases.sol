// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAgreementRegistry} from "./interfaces/IAgreementRegistry.sol";
import {IBatchAnchorRegistry} from "./interfaces/IBatchAnchorRegistry.sol";
import {IDepositEscrow} from "./interfaces/IDepositEscrow.sol";
import {IPartyRegistry} from "./interfaces/IPartyRegistry.sol";
import {ITracingCases} from "./interfaces/ITracingCases.sol";

/// @title TracingCases
/// @notice qcn Step 5 on chain: three-party tracing cases (OEM, supplier, lab), lab co-signed verdicts and
///         settlement through the agreement registry (see {ITracingCases}).
/// @dev Who may call what:
///      - openCase: ORACLE_ROLE holders (the gateway) or the agreement's OEM.
///      - respond: the case's supplier; accept / dispute: its OEM or supplier (party accounts).
///      - submitVerdict(+WithAcceptances) / submitAcceptance / advanceToLab / markLabDeadlineMissed / settle:
///        anyone (signatures or deadlines carry the authority).
///      - reassignLab: ARBITER_ROLE or the case's OEM; arbitrate: ARBITER_ROLE (the consortium admin).
///      - fundLabFees: anyone; withdrawLabFees: the pool's OEM; claimLabFee: the lab.
///      This contract must hold the agreement registry's SETTLER_ROLE (penalties, supplier deadline breaches).
///      Tokens move only in fundLabFees (in), withdrawLabFees / claimLabFee (out, to the caller), each
///      nonReentrant with every state change made before the token call; settle is nonReentrant too and
///      marks the case Settled before its one external call.
contract TracingCases is AccessControl, EIP712, ReentrancyGuardTransient, ITracingCases {
    using SafeERC20 for IERC20;

    /// @notice Role of the gateway account that opens cases from anomaly verdicts.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    /// @notice Role of the consortium arbiter (rules on disputes, re-assigns labs).
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");

    bytes32 private constant _VERDICT_TYPEHASH = keccak256(
        "Verdict(bytes32 caseId,bytes32 batchId,bytes32 rootCauseCode,uint8 responsibleParty,uint8 ncClass,"
        "bytes32 analysisHash,uint64 deadline,uint256 nonce)"
    );
    bytes32 private constant _ACCEPTANCE_TYPEHASH =
        keccak256("Acceptance(bytes32 caseId,bytes32 verdictHash,bool accept,uint64 deadline,uint256 nonce)");

    /// @dev Placeholder of `verdictHash` until a verdict exists: written at opening so that storing the
    ///      verdict is a non-zero -> non-zero write (2.9k instead of 20k gas on the finalization path).
    bytes32 private constant _NO_VERDICT = bytes32(uint256(1));
    uint8 private constant _FLAG_OEM_ACCEPTED = 1;
    uint8 private constant _FLAG_SUPPLIER_ACCEPTED = 2;
    uint8 private constant _FLAG_LAB_MISSED = 4;
    uint8 private constant _BOTH_ACCEPTED = _FLAG_OEM_ACCEPTED | _FLAG_SUPPLIER_ACCEPTED;
    uint8 private constant _RESPONSIBLE_SUPPLIER = 1;
    uint8 private constant _MAX_RESPONSIBLE = 3;
    uint8 private constant _MAX_NC_CLASS = 3;

    /// @dev One case in 6 words: (lab, state, flags, responsible, class, round, deadline),
    ///      (oem, lab verdict / dispute window seconds, openedAt), (supplier, lab fee), batch, agreement,
    ///      verdict hash. openedAt is uint32 (unix seconds until 2106).
    struct StoredCase {
        address lab;
        CaseState state;
        uint8 flags;
        uint8 responsible;
        uint8 ncClass;
        uint16 round;
        uint40 deadline;
        address oem;
        uint32 labVerdictSeconds;
        uint32 disputeWindowSeconds;
        uint32 openedAt;
        address supplier;
        uint96 labFee;
        bytes32 batchId;
        bytes32 agreementId;
        bytes32 verdictHash;
    }

    IPartyRegistry private immutable _parties;
    IBatchAnchorRegistry private immutable _anchors;
    IAgreementRegistry private immutable _agreements;
    IERC20 private immutable _token;

    mapping(bytes32 caseId => StoredCase) private _cases;
    mapping(bytes32 batchId => bytes32 caseId) private _openCase;
    mapping(bytes32 batchId => uint256 count) private _caseCount;
    mapping(address oem => uint256 amount) private _feePool;
    mapping(address lab => uint256 amount) private _labClaimable;
    mapping(address lab => uint32 count) private _labBreaches;

    /// @param admin Consortium admin: DEFAULT_ADMIN_ROLE (grants ORACLE_ROLE) and ARBITER_ROLE.
    /// @param parties The consortium party registry (kinds, signers, accreditation).
    /// @param anchors The batch anchor registry (commitments).
    /// @param agreements The agreement registry (agreements, templates, counters, penalties); must grant
    ///        this contract its SETTLER_ROLE.
    /// @param escrow The deposit escrow; its settlement token is the lab-fee token.
    constructor(
        address admin,
        IPartyRegistry parties,
        IBatchAnchorRegistry anchors,
        IAgreementRegistry agreements,
        IDepositEscrow escrow
    ) EIP712("qcn TracingCases", "1") {
        if (admin == address(0)) revert IPartyRegistry.InvalidAccount(admin);
        if (address(parties) == address(0)) revert IPartyRegistry.InvalidAccount(address(parties));
        if (address(anchors) == address(0)) revert IPartyRegistry.InvalidAccount(address(anchors));
        if (address(agreements) == address(0)) revert IPartyRegistry.InvalidAccount(address(agreements));
        if (address(escrow) == address(0)) revert IPartyRegistry.InvalidAccount(address(escrow));
        _parties = parties;
        _anchors = anchors;
        _agreements = agreements;
        _token = IERC20(escrow.token());
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ARBITER_ROLE, admin);
    }

    /// @inheritdoc ITracingCases
    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    /// @notice The EIP-712 domain separator of this contract.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // =================================================================== opening

    /// @inheritdoc ITracingCases
    function openCase(
        OpenRequest calldata request,
        IBatchAnchorRegistry.BatchHeader calldata header
    ) external returns (bytes32 caseId) {
        bytes32 agreementId = request.agreementId;
        bytes32 batchId = request.batchId;
        IAgreementRegistry.Agreement memory a = _agreements.agreement(agreementId);
        if (a.state != IAgreementRegistry.AgreementState.Active && a.state != IAgreementRegistry.AgreementState.Suspended) {
            revert AgreementNotOpen(agreementId, uint8(a.state));
        }
        if (msg.sender != a.oem && !hasRole(ORACLE_ROLE, msg.sender)) revert NotOracleOrOem(agreementId, msg.sender);
        if (request.analysisHash == 0) revert MissingAnalysisHash(batchId);

        bytes32 stored = _anchors.commitmentOf(batchId);
        if (stored == 0) revert BatchNotAnchored(batchId);
        bytes32 given = keccak256(abi.encode(header));
        if (given != stored) revert BatchHeaderMismatch(batchId, stored, given);
        if (header.agreementId != agreementId || header.supplier != a.supplier) {
            revert BatchNotOfAgreement(batchId, agreementId, a.supplier, header.agreementId, header.supplier);
        }
        bytes32 open = _openCase[batchId];
        if (open != 0) revert CaseAlreadyOpen(batchId, open);

        address lab = request.lab == address(0) ? a.lab : request.lab;
        if (!_parties.isActive(lab, IPartyRegistry.PartyKind.Lab)) revert NotActiveLab(lab);

        uint96 fee = request.labFee;
        if (fee != 0) {
            uint256 available = _feePool[a.oem];
            if (available < fee) revert InsufficientLabFeePool(a.oem, available, fee);
            unchecked {
                _feePool[a.oem] = available - fee;
            }
        }

        (IAgreementRegistry.TemplateTerms memory t, , ) = _agreements.template(a.templateId, a.templateVersion);
        uint64 now_ = _time();
        uint64 supplierDeadline = now_ + t.supplierResponseSeconds;
        uint256 seq = _caseCount[batchId];
        caseId = keccak256(abi.encode(batchId, seq));
        _caseCount[batchId] = seq + 1;
        _openCase[batchId] = caseId;

        StoredCase storage c = _cases[caseId];
        c.lab = lab;
        c.state = CaseState.Opened;
        c.deadline = uint40(supplierDeadline);
        c.oem = a.oem;
        c.labVerdictSeconds = t.labVerdictSeconds;
        c.disputeWindowSeconds = t.disputeWindowSeconds;
        c.openedAt = uint32(now_);
        c.supplier = a.supplier;
        c.labFee = fee;
        c.batchId = batchId;
        c.agreementId = agreementId;
        c.verdictHash = _NO_VERDICT;
        emit CaseOpened(
            caseId,
            agreementId,
            batchId,
            seq,
            a.supplier,
            lab,
            request.analysisHash,
            request.evidenceHash,
            fee,
            supplierDeadline,
            msg.sender
        );
    }

    // =================================================================== supplier stage

    /// @inheritdoc ITracingCases
    function respond(bytes32 caseId, bytes32 evidenceHash) external {
        StoredCase storage c = _existing(caseId);
        if (msg.sender != c.supplier) revert NotCaseParty(caseId, msg.sender);
        _requireState(c, caseId, CaseState.Opened);
        if (evidenceHash == 0) revert MissingEvidenceHash(caseId);
        uint64 now_ = _time();
        _requireBeforeDeadline(c, caseId, now_);
        uint64 labDeadline = now_ + c.labVerdictSeconds;
        c.state = CaseState.SupplierResponded;
        c.deadline = uint40(labDeadline);
        emit SupplierResponded(caseId, evidenceHash, labDeadline);
    }

    /// @inheritdoc ITracingCases
    function advanceToLab(bytes32 caseId) external {
        StoredCase storage c = _existing(caseId);
        _requireState(c, caseId, CaseState.Opened);
        uint64 now_ = _time();
        uint64 supplierDeadline = c.deadline;
        if (now_ <= supplierDeadline) revert DeadlineNotPassed(caseId, supplierDeadline, now_);
        uint64 labDeadline = now_ + c.labVerdictSeconds;
        c.state = CaseState.SupplierDefaulted;
        c.deadline = uint40(labDeadline);
        emit SupplierDefaulted(caseId, supplierDeadline, labDeadline, msg.sender);
        _agreements.recordDeadlineBreach(c.agreementId, caseId);
    }

    // =================================================================== lab stage

    /// @inheritdoc ITracingCases
    function submitVerdict(Verdict calldata verdict, bytes calldata labSignature) external returns (bytes32 verdictHash) {
        StoredCase storage c;
        uint64 now_;
        (verdictHash, c, now_) = _checkVerdict(verdict, labSignature);
        uint64 disputeDeadline = now_ + c.disputeWindowSeconds;
        _storeVerdict(c, verdict, verdictHash, CaseState.VerdictSubmitted, 0, uint40(disputeDeadline));
        _emitVerdict(c, verdict, verdictHash, disputeDeadline);
    }

    /// @inheritdoc ITracingCases
    function submitVerdictWithAcceptances(
        Verdict calldata verdict,
        bytes calldata labSignature,
        uint64 oemDeadline,
        bytes calldata oemSignature,
        uint64 supplierDeadline,
        bytes calldata supplierSignature
    ) external returns (bytes32 verdictHash) {
        // Gas budget 70k: the case is checked and written once (straight to Accepted), each party costs one
        // registry storage read ({IPartyRegistry-signerFor}).
        StoredCase storage c;
        uint64 now_;
        (verdictHash, c, now_) = _checkVerdict(verdict, labSignature);
        bytes32 caseId = verdict.caseId;
        if (now_ > oemDeadline) revert SignatureExpired(oemDeadline, now_);
        if (now_ > supplierDeadline) revert SignatureExpired(supplierDeadline, now_);
        address oem = c.oem;
        address supplier = c.supplier;
        _checkSignature(
            oem,
            _partySigner(caseId, oem, IPartyRegistry.PartyKind.Oem),
            _acceptanceDigest(caseId, verdictHash, true, oemDeadline, verdict.nonce),
            oemSignature
        );
        _checkSignature(
            supplier,
            _partySigner(caseId, supplier, IPartyRegistry.PartyKind.Supplier),
            _acceptanceDigest(caseId, verdictHash, true, supplierDeadline, verdict.nonce),
            supplierSignature
        );
        _storeVerdict(c, verdict, verdictHash, CaseState.Accepted, _BOTH_ACCEPTED, 0);
        emit VerdictFinalized(
            caseId,
            verdictHash,
            verdict.rootCauseCode,
            verdict.responsibleParty,
            verdict.ncClass,
            verdict.analysisHash,
            uint16(verdict.nonce) // == the case's round (checked)
        );
    }

    /// @inheritdoc ITracingCases
    function markLabDeadlineMissed(bytes32 caseId) external {
        StoredCase storage c = _existing(caseId);
        _requireLabStage(c, caseId);
        uint64 now_ = _time();
        uint64 deadline = c.deadline;
        if (now_ <= deadline) revert DeadlineNotPassed(caseId, deadline, now_);
        if (c.flags & _FLAG_LAB_MISSED != 0) revert LabBreachAlreadyRecorded(caseId, c.round);
        c.flags |= _FLAG_LAB_MISSED;
        address lab = c.lab;
        uint32 breaches = _labBreaches[lab] + 1;
        _labBreaches[lab] = breaches;
        emit LabDeadlineMissed(caseId, lab, deadline, breaches);
    }

    /// @inheritdoc ITracingCases
    function reassignLab(bytes32 caseId, address newLab) external {
        StoredCase storage c = _existing(caseId);
        if (msg.sender != c.oem && !hasRole(ARBITER_ROLE, msg.sender)) revert NotCaseParty(caseId, msg.sender);
        _requireLabStage(c, caseId);
        if (c.flags & _FLAG_LAB_MISSED == 0) revert LabDeadlineNotMissed(caseId);
        uint64 now_ = _time();
        _requireAccreditedLab(newLab, now_);
        address previous = c.lab;
        uint16 round = c.round + 1;
        uint64 labDeadline = now_ + c.labVerdictSeconds;
        c.lab = newLab;
        c.round = round;
        c.flags &= ~_FLAG_LAB_MISSED;
        c.deadline = uint40(labDeadline);
        emit LabReassigned(caseId, previous, newLab, round, labDeadline, msg.sender);
    }

    // =================================================================== acceptance / dispute

    /// @inheritdoc ITracingCases
    function accept(bytes32 caseId, bytes32 verdictHash) external {
        StoredCase storage c = _existing(caseId);
        _requireState(c, caseId, CaseState.VerdictSubmitted);
        uint8 flag = _partyFlag(c, caseId, msg.sender);
        bytes32 expected = c.verdictHash;
        if (verdictHash != expected) revert VerdictMismatch(caseId, expected, verdictHash);
        _requireBeforeDeadline(c, caseId, _time());
        _accept(c, caseId, verdictHash, msg.sender, flag);
    }

    /// @inheritdoc ITracingCases
    function dispute(bytes32 caseId, bytes32 evidenceHash) external {
        StoredCase storage c = _existing(caseId);
        _requireState(c, caseId, CaseState.VerdictSubmitted);
        _partyFlag(c, caseId, msg.sender);
        _requireBeforeDeadline(c, caseId, _time());
        _dispute(c, caseId, msg.sender, evidenceHash);
    }

    /// @inheritdoc ITracingCases
    function submitAcceptance(Acceptance calldata acceptance, address party, bytes calldata signature) external {
        bytes32 caseId = acceptance.caseId;
        StoredCase storage c = _existing(caseId);
        uint64 now_ = _time();
        if (now_ > acceptance.deadline) revert SignatureExpired(acceptance.deadline, now_);
        if (acceptance.nonce != c.round) revert InvalidNonce(caseId, c.round, acceptance.nonce);
        _requireState(c, caseId, CaseState.VerdictSubmitted);
        uint8 flag = _partyFlag(c, caseId, party);
        bytes32 expected = c.verdictHash;
        if (acceptance.verdictHash != expected) revert VerdictMismatch(caseId, expected, acceptance.verdictHash);
        _requireBeforeDeadline(c, caseId, now_);
        IPartyRegistry.PartyKind kind = flag == _FLAG_OEM_ACCEPTED
            ? IPartyRegistry.PartyKind.Oem
            : IPartyRegistry.PartyKind.Supplier;
        _checkSignature(party, _partySigner(caseId, party, kind), _acceptanceDigestOf(acceptance), signature);
        if (acceptance.accept) {
            _accept(c, caseId, expected, party, flag);
        } else {
            _dispute(c, caseId, party, 0);
        }
    }

    /// @inheritdoc ITracingCases
    function arbitrate(
        bytes32 caseId,
        uint8 responsibleParty,
        uint8 ncClass,
        bytes32 rootCauseCode,
        bytes32 rulingHash
    ) external onlyRole(ARBITER_ROLE) {
        StoredCase storage c = _existing(caseId);
        CaseState s = c.state;
        if (s != CaseState.Disputed) {
            if (s != CaseState.SupplierResponded && s != CaseState.SupplierDefaulted) revert InvalidState(caseId, s);
            if (c.flags & _FLAG_LAB_MISSED == 0) revert LabDeadlineNotMissed(caseId);
        }
        _checkVerdictFields(caseId, responsibleParty, ncClass);
        if (rulingHash == 0) revert MissingRulingHash(caseId);
        c.state = CaseState.Arbitrated;
        c.responsible = responsibleParty;
        c.ncClass = ncClass;
        c.deadline = 0;
        emit CaseArbitrated(caseId, responsibleParty, ncClass, rootCauseCode, rulingHash, msg.sender);
    }

    // =================================================================== settlement

    /// @inheritdoc ITracingCases
    function settle(bytes32 caseId) external nonReentrant {
        StoredCase storage c = _existing(caseId);
        CaseState s = c.state;
        if (s == CaseState.VerdictSubmitted) {
            uint64 now_ = _time();
            uint64 deadline = c.deadline;
            if (now_ <= deadline) revert DeadlineNotPassed(caseId, deadline, now_);
        } else if (s != CaseState.Accepted && s != CaseState.Arbitrated) {
            revert InvalidState(caseId, s);
        }
        c.state = CaseState.Settled;
        c.deadline = 0;
        delete _openCase[c.batchId];
        uint96 fee = c.labFee;
        address lab = c.lab;
        uint96 paid;
        if (fee != 0) {
            if (c.verdictHash != _NO_VERDICT) {
                _labClaimable[lab] += fee;
                paid = fee;
            } else {
                _feePool[c.oem] += fee;
            }
        }
        uint8 responsible = c.responsible;
        uint8 ncClass = c.ncClass;
        bool penalized = responsible == _RESPONSIBLE_SUPPLIER && ncClass != 0;
        bytes32 agreementId = c.agreementId;
        emit CaseSettled(caseId, agreementId, responsible, ncClass, penalized, lab, paid, msg.sender);
        if (penalized) {
            // ncClass 1/2/3 = critical/major/minor -> IAgreementRegistry.NcClass 0/1/2
            _agreements.recordNonConformity(agreementId, IAgreementRegistry.NcClass(ncClass - 1), caseId);
        }
    }

    // =================================================================== lab fees

    /// @inheritdoc ITracingCases
    function fundLabFees(address oem, uint256 amount) external nonReentrant {
        if (oem == address(0)) revert IPartyRegistry.InvalidAccount(oem);
        if (amount == 0) revert ZeroAmount();
        // Credit what arrived (a fee-on-transfer token credits less); nonReentrant keeps every other
        // state-changing entry point closed during the token call.
        uint256 before = _token.balanceOf(address(this));
        _token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = _token.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroAmount();
        uint256 available = _feePool[oem] + received;
        _feePool[oem] = available;
        emit LabFeesFunded(oem, msg.sender, received, available);
    }

    /// @inheritdoc ITracingCases
    function withdrawLabFees(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 available = _feePool[msg.sender];
        if (amount > available) revert ExceedsPool(msg.sender, amount, available);
        unchecked {
            available -= amount;
        }
        _feePool[msg.sender] = available;
        emit LabFeesWithdrawn(msg.sender, amount, available);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc ITracingCases
    function claimLabFee() external nonReentrant {
        uint256 amount = _labClaimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        _labClaimable[msg.sender] = 0;
        emit LabFeeClaimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // =================================================================== views

    /// @inheritdoc ITracingCases
    function caseOf(bytes32 caseId) external view returns (CaseView memory v) {
        StoredCase storage c = _cases[caseId];
        if (c.state == CaseState.None) return v;
        uint8 flags = c.flags;
        bytes32 verdictHash = c.verdictHash;
        v = CaseView({
            state: c.state,
            agreementId: c.agreementId,
            batchId: c.batchId,
            oem: c.oem,
            supplier: c.supplier,
            lab: c.lab,
            openedAt: c.openedAt,
            deadline: c.deadline,
            round: c.round,
            oemAccepted: flags & _FLAG_OEM_ACCEPTED != 0,
            supplierAccepted: flags & _FLAG_SUPPLIER_ACCEPTED != 0,
            labDeadlineMissed: flags & _FLAG_LAB_MISSED != 0,
            responsibleParty: c.responsible,
            ncClass: c.ncClass,
            verdictHash: verdictHash == _NO_VERDICT ? bytes32(0) : verdictHash,
            labFee: c.labFee
        });
    }

    /// @inheritdoc ITracingCases
    function openCaseOf(bytes32 batchId) external view returns (bytes32) {
        return _openCase[batchId];
    }

    /// @inheritdoc ITracingCases
    function nextCaseId(bytes32 batchId) external view returns (bytes32) {
        return keccak256(abi.encode(batchId, _caseCount[batchId]));
    }

    /// @inheritdoc ITracingCases
    function verdictDigest(Verdict calldata verdict) external view returns (bytes32) {
        return _verdictDigest(verdict);
    }

    /// @inheritdoc ITracingCases
    function acceptanceDigest(Acceptance calldata acceptance) external view returns (bytes32) {
        return _acceptanceDigestOf(acceptance);
    }

    /// @inheritdoc ITracingCases
    function labFeePool(address oem) external view returns (uint256) {
        return _feePool[oem];
    }

    /// @inheritdoc ITracingCases
    function labFeeClaimable(address lab) external view returns (uint256) {
        return _labClaimable[lab];
    }

    /// @inheritdoc ITracingCases
    function labBreaches(address lab) external view returns (uint32) {
        return _labBreaches[lab];
    }

    /// @inheritdoc ITracingCases
    function feeToken() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc AccessControl
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(ITracingCases).interfaceId || super.supportsInterface(interfaceId);
    }

    // =================================================================== internals

    /// @dev Current contract time; tests override it.
    function _time() internal view virtual returns (uint64) {
        return uint64(block.timestamp);
    }

    function _existing(bytes32 caseId) private view returns (StoredCase storage c) {
        c = _cases[caseId];
        if (c.state == CaseState.None) revert UnknownCase(caseId);
    }

    function _requireState(StoredCase storage c, bytes32 caseId, CaseState expected) private view {
        CaseState s = c.state;
        if (s != expected) revert InvalidState(caseId, s);
    }

    /// @dev The case waits for the lab (after the supplier responded or defaulted).
    function _requireLabStage(StoredCase storage c, bytes32 caseId) private view {
        CaseState s = c.state;
        if (s != CaseState.SupplierResponded && s != CaseState.SupplierDefaulted) revert InvalidState(caseId, s);
    }

    function _requireBeforeDeadline(StoredCase storage c, bytes32 caseId, uint64 now_) private view {
        uint64 deadline = c.deadline;
        if (now_ > deadline) revert DeadlinePassed(caseId, deadline, now_);
    }

    function _checkVerdictFields(bytes32 caseId, uint8 responsibleParty, uint8 ncClass) private pure {
        if (
            responsibleParty > _MAX_RESPONSIBLE || ncClass > _MAX_NC_CLASS
                || (responsibleParty == _RESPONSIBLE_SUPPLIER && ncClass == 0)
        ) revert InvalidVerdictFields(caseId, responsibleParty, ncClass);
    }

    /// @dev Reverts unless `lab` is an active LAB accredited at `now_`; returns its current signer.
    function _requireAccreditedLab(address lab, uint64 now_) private view returns (address signer) {
        (IPartyRegistry.PartyKind kind, bool active, uint64 expiry, address current) = _parties.signerFor(lab);
        if (kind != IPartyRegistry.PartyKind.Lab || !active) revert NotActiveLab(lab);
        if (now_ > expiry) revert LabAccreditationExpired(lab, expiry, now_);
        return current;
    }

    /// @dev Current signer of the active `party` of `kind`.
    function _partySigner(
        bytes32 caseId,
        address party,
        IPartyRegistry.PartyKind kind
    ) private view returns (address) {
        (IPartyRegistry.PartyKind k, bool active, , address signer) = _parties.signerFor(party);
        if (k != kind || !active) revert NotCaseParty(caseId, party);
        return signer;
    }

    /// @dev The acceptance flag of `party` in case `c` (OEM or supplier), else reverts.
    function _partyFlag(StoredCase storage c, bytes32 caseId, address party) private view returns (uint8 flag) {
        if (party == c.oem) flag = _FLAG_OEM_ACCEPTED;
        else if (party == c.supplier) flag = _FLAG_SUPPLIER_ACCEPTED;
        else revert NotCaseParty(caseId, party);
        if (c.flags & flag != 0) revert AlreadyAccepted(caseId, party);
    }

    /// @dev Checks `verdict` and the lab's signature against the case (nothing written); returns its hash.
    function _checkVerdict(
        Verdict calldata verdict,
        bytes calldata labSignature
    ) private view returns (bytes32 verdictHash, StoredCase storage c, uint64 now_) {
        bytes32 caseId = verdict.caseId;
        c = _existing(caseId);
        _requireLabStage(c, caseId);
        bytes32 batchId = c.batchId;
        if (verdict.batchId != batchId) revert BatchMismatch(caseId, batchId, verdict.batchId);
        now_ = _time();
        if (now_ > verdict.deadline) revert SignatureExpired(verdict.deadline, now_);
        uint16 round = c.round;
        if (verdict.nonce != round) revert InvalidNonce(caseId, round, verdict.nonce);
        _requireBeforeDeadline(c, caseId, now_);
        _checkVerdictFields(caseId, verdict.responsibleParty, verdict.ncClass);
        if (verdict.analysisHash == 0) revert MissingAnalysisHash(batchId);
        address lab = c.lab;
        address signer = _requireAccreditedLab(lab, now_);
        verdictHash = _verdictDigest(verdict);
        _checkSignature(lab, signer, verdictHash, labSignature);
    }

    /// @dev Writes the verdict into the case: its first word in one store, then the verdict hash.
    function _storeVerdict(
        StoredCase storage c,
        Verdict calldata verdict,
        bytes32 verdictHash,
        CaseState state,
        uint8 flags,
        uint40 deadline
    ) private {
        uint8 responsible = verdict.responsibleParty;
        uint8 ncClass = verdict.ncClass;
        // one store of the first word (StoredCase layout: lab 0-159, state 160-167, flags 168-175,
        // responsible 176-183, ncClass 184-191, round 192-207, deadline 208-247), keeping lab and round
        assembly ("memory-safe") {
            let slot := c.slot
            let w := and(sload(slot), not(or(shl(160, 0xffffffff), shl(208, 0xffffffffff))))
            w := or(w, or(or(shl(160, state), shl(168, flags)), or(or(shl(176, responsible), shl(184, ncClass)), shl(208, deadline))))
            sstore(slot, w)
        }
        c.verdictHash = verdictHash;
    }

    function _emitVerdict(StoredCase storage c, Verdict calldata verdict, bytes32 verdictHash, uint64 disputeDeadline) private {
        emit VerdictSubmitted(
            verdict.caseId,
            verdictHash,
            c.lab,
            verdict.rootCauseCode,
            verdict.responsibleParty,
            verdict.ncClass,
            verdict.analysisHash,
            c.round,
            disputeDeadline,
            msg.sender
        );
    }

    function _accept(StoredCase storage c, bytes32 caseId, bytes32 verdictHash, address party, uint8 flag) private {
        uint8 flags = c.flags | flag;
        c.flags = flags;
        bool both = flags & _BOTH_ACCEPTED == _BOTH_ACCEPTED;
        if (both) {
            c.state = CaseState.Accepted;
            c.deadline = 0;
        }
        emit VerdictAccepted(caseId, verdictHash, party, both);
    }

    function _dispute(StoredCase storage c, bytes32 caseId, address party, bytes32 evidenceHash) private {
        c.state = CaseState.Disputed;
        c.deadline = 0;
        emit VerdictDisputed(caseId, c.verdictHash, party, evidenceHash);
    }

    /// @dev Accepts an ECDSA signature by `signer` (65-byte r,s,v or 64-byte ERC-2098 r,vs), or an ERC-1271
    ///      signature if `signer` is a contract.
    function _checkSignature(address party, address signer, bytes32 digest, bytes calldata signature) private view {
        (uint8 v, bytes32 r, bytes32 s) = ECDSA.parseCalldata(signature); // zeros for any other length
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, v, r, s);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return;
        if (signer.code.length != 0 && SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signature)) {
            return;
        }
        revert WrongSigner(party, signer, recovered);
    }

    function _verdictDigest(Verdict calldata v) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _VERDICT_TYPEHASH,
                    v.caseId,
                    v.batchId,
                    v.rootCauseCode,
                    v.responsibleParty,
                    v.ncClass,
                    v.analysisHash,
                    v.deadline,
                    v.nonce
                )
            )
        );
    }

    function _acceptanceDigest(
        bytes32 caseId,
        bytes32 verdictHash,
        bool accepted,
        uint64 deadline,
        uint256 nonce
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(_ACCEPTANCE_TYPEHASH, caseId, verdictHash, accepted, deadline, nonce)));
    }

    function _acceptanceDigestOf(Acceptance calldata a) private view returns (bytes32) {
        return _acceptanceDigest(a.caseId, a.verdictHash, a.accept, a.deadline, a.nonce);
    }
}
