// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAgreementRegistry} from "./interfaces/IAgreementRegistry.sol";
import {IBatchAnchorRegistry} from "./interfaces/IBatchAnchorRegistry.sol";
import {IDepositEscrow} from "./interfaces/IDepositEscrow.sol";
import {IPartyRegistry} from "./interfaces/IPartyRegistry.sol";
import {ITracingCases} from "./interfaces/ITracingCases.sol";
import {SignatureCheck} from "./lib/SignatureCheck.sol";

/// @title TracingCases
/// @notice qcn tracing cases on chain: three-party cases (OEM, supplier, lab), lab-signed verdicts and
///         settlement through the agreement registry (see {ITracingCases} and docs/trust-model.md).
/// @dev Who may call what:
///      - openCase: ORACLE_ROLE holders (the gateway) or the agreement's OEM; the lab is the agreement's,
///        the fee at most the template's cap.
///      - respond: the case's supplier; accept / dispute: its OEM or supplier (party accounts).
///      - submitVerdict(+WithAcceptances) / submitAcceptance / advanceToLab / markLabDeadlineMissed / settle:
///        anyone (signatures or deadlines carry the authority).
///      - approveLab: the case's OEM and supplier (the lab changes when both approved the same lab);
///        approveReopen: the lab of a penalised batch's case; arbitrate: ARBITER_ROLE, on disputed cases
///        only, before the arbitration deadline, never above the lab's verdict.
///      - fundLabFees: anyone; withdrawLabFees: the pool's OEM; claimLabFee: the lab.
///      The agreement registry is linked to this contract once at deployment (penalties, bound deposits).
///      Tokens move only in fundLabFees (in), withdrawLabFees / claimLabFee (out, to the caller), each
///      nonReentrant with every state change made before the token call; settle is nonReentrant too and
///      marks the case Settled before its one external call.
contract TracingCases is AccessControlDefaultAdminRules, EIP712, ReentrancyGuardTransient, ITracingCases {
    using SafeERC20 for IERC20;

    /// @notice Role of the gateway account that opens cases from anomaly verdicts.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    /// @notice Role of the consortium arbiter (rules on disputed cases).
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    /// @notice Delay of a hand-over of the admin role.
    uint48 public constant ADMIN_DELAY = 2 days;
    /// @notice Time the arbiter has to rule on a dispute; afterwards the lab's verdict stands.
    uint64 public constant ARBITRATION_SECONDS = 14 days;

    bytes32 private constant _VERDICT_TYPEHASH = keccak256(
        "Verdict(bytes32 caseId,bytes32 batchId,bytes32 rootCauseCode,uint8 responsibleParty,uint8 ncClass,"
        "bytes32 analysisHash,uint64 deadline,uint256 nonce)"
    );
    bytes32 private constant _ACCEPTANCE_TYPEHASH =
        keccak256("Acceptance(bytes32 caseId,bytes32 verdictHash,bool accept,uint64 deadline,uint256 nonce)");

    uint8 private constant _FLAG_OEM_ACCEPTED = 1;
    uint8 private constant _FLAG_SUPPLIER_ACCEPTED = 2;
    uint8 private constant _FLAG_LAB_MISSED = 4;
    uint8 private constant _FLAG_OVERTURNED = 8;
    /// @dev The case has a lab-signed verdict. The one-step finalization keeps its hash in the event only
    ///      (one storage write less: the 70k gas budget); the step-by-step path stores it for accept/dispute.
    uint8 private constant _FLAG_VERDICT = 16;
    uint8 private constant _BOTH_ACCEPTED = _FLAG_OEM_ACCEPTED | _FLAG_SUPPLIER_ACCEPTED;
    uint8 private constant _RESPONSIBLE_SUPPLIER = 1;
    uint8 private constant _MAX_RESPONSIBLE = 3;
    uint8 private constant _MAX_NC_CLASS = 3;

    /// @dev One case in 6 words: (lab, state, flags, responsible, class, round, seq, deadline),
    ///      (oem, lab verdict / dispute window seconds, openedAt), (supplier, lab fee), batch, agreement,
    ///      verdict hash. `seq` is the case's index among its batch's cases (caseId = keccak(batchId, seq)),
    ///      so a verdict's batch is checked without reading the batch word. Times are uint32 (until 2106).
    struct StoredCase {
        address lab;
        CaseState state;
        uint8 flags;
        uint8 responsible;
        uint8 ncClass;
        uint16 round;
        uint16 seq;
        uint32 deadline;
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

    /// @dev Per batch in one word: number of cases so far, whether the last is open, whether the batch was
    ///      penalised (one penalty per batch unless the lab signs off new evidence).
    struct BatchCases {
        uint16 count;
        bool open;
        bool penalized;
    }

    IPartyRegistry private immutable _parties;
    IBatchAnchorRegistry private immutable _anchors;
    IAgreementRegistry private immutable _agreements;
    IERC20 private immutable _token;

    mapping(bytes32 caseId => StoredCase) private _cases;
    mapping(bytes32 batchId => BatchCases) private _batchCases;
    mapping(address oem => uint256 amount) private _feePool;
    mapping(address lab => uint256 amount) private _labClaimable;
    mapping(address lab => uint32 count) private _labBreaches;
    mapping(bytes32 batchId => bytes32 evidenceHash) private _reopenEvidence;
    mapping(bytes32 caseId => mapping(address party => address lab)) private _labApproval;

    /// @param admin Consortium admin: DEFAULT_ADMIN_ROLE (grants ORACLE_ROLE and ARBITER_ROLE, to separate
    ///        keys), behind {ADMIN_DELAY}.
    /// @param parties The consortium party registry (kinds, signers, accreditation).
    /// @param anchors The batch anchor registry (commitments).
    /// @param agreements The agreement registry (agreements, templates, counters, penalties); its deployer
    ///        links it to this contract once.
    /// @param escrow The deposit escrow; its settlement token is the lab-fee token.
    constructor(
        address admin,
        IPartyRegistry parties,
        IBatchAnchorRegistry anchors,
        IAgreementRegistry agreements,
        IDepositEscrow escrow
    ) AccessControlDefaultAdminRules(ADMIN_DELAY, admin) EIP712("qcn TracingCases", "1") {
        if (admin == address(0)) revert IPartyRegistry.InvalidAccount(admin);
        if (address(parties) == address(0)) revert IPartyRegistry.InvalidAccount(address(parties));
        if (address(anchors) == address(0)) revert IPartyRegistry.InvalidAccount(address(anchors));
        if (address(agreements) == address(0)) revert IPartyRegistry.InvalidAccount(address(agreements));
        if (address(escrow) == address(0)) revert IPartyRegistry.InvalidAccount(address(escrow));
        _parties = parties;
        _anchors = anchors;
        _agreements = agreements;
        _token = IERC20(escrow.token());
    }

    /// @inheritdoc ITracingCases
    function version() external pure returns (string memory) {
        return "2.0.0";
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
        if (request.analysisHash == 0) revert MissingAnalysisHash(batchId);
        bytes32 stored = _anchors.commitmentOf(batchId);
        if (stored == 0) revert BatchNotAnchored(batchId);
        bytes32 given = keccak256(abi.encode(header));
        if (given != stored) revert BatchHeaderMismatch(batchId, stored, given);
        BatchCases memory b = _batchCases[batchId];
        if (b.open) revert CaseAlreadyOpen(batchId, keccak256(abi.encode(batchId, uint256(b.count - 1))));
        if (b.penalized) {
            // one penalty per batch, unless the lab signed off new evidence for it
            bytes32 approved = _reopenEvidence[batchId];
            if (approved == 0 || approved != request.evidenceHash) revert BatchAlreadyPenalized(batchId);
            delete _reopenEvidence[batchId];
        }
        uint256 seq = b.count;
        if (seq == type(uint16).max) revert TooManyCases(batchId);
        caseId = keccak256(abi.encode(batchId, seq));

        // one call: checks the agreement is open, binds the deposit, returns what the case needs
        IAgreementRegistry.CaseTerms memory t = _agreements.openCaseFor(agreementId, caseId);
        if (msg.sender != t.oem && !hasRole(ORACLE_ROLE, msg.sender)) revert NotOracleOrOem(agreementId, msg.sender);
        if (header.agreementId != agreementId || header.supplier != t.supplier) {
            revert BatchNotOfAgreement(batchId, agreementId, t.supplier, header.agreementId, header.supplier);
        }
        address lab = t.lab;
        if (request.lab != address(0) && request.lab != lab) revert LabNotOfAgreement(agreementId, lab, request.lab);
        uint64 now_ = _time();
        _requireAccreditedLab(lab, now_);

        uint96 fee = request.labFee;
        if (fee != 0) {
            if (fee > t.labFeeCap) revert LabFeeAboveCap(agreementId, fee, t.labFeeCap);
            uint256 available = _feePool[t.oem];
            if (available < fee) revert InsufficientLabFeePool(t.oem, available, fee);
            unchecked {
                _feePool[t.oem] = available - fee;
            }
        }

        uint64 supplierDeadline = now_ + t.supplierResponseSeconds;
        _batchCases[batchId] = BatchCases({count: uint16(seq + 1), open: true, penalized: b.penalized});

        StoredCase storage c = _cases[caseId];
        c.lab = lab;
        c.state = CaseState.Opened;
        c.seq = uint16(seq);
        c.deadline = uint32(supplierDeadline);
        c.oem = t.oem;
        c.labVerdictSeconds = t.labVerdictSeconds;
        c.disputeWindowSeconds = t.disputeWindowSeconds;
        c.openedAt = uint32(now_);
        c.supplier = t.supplier;
        c.labFee = fee;
        c.batchId = batchId;
        c.agreementId = agreementId;
        emit CaseOpened(
            caseId,
            agreementId,
            batchId,
            seq,
            t.supplier,
            lab,
            request.analysisHash,
            request.evidenceHash,
            fee,
            supplierDeadline,
            msg.sender
        );
    }

    /// @inheritdoc ITracingCases
    function approveReopen(bytes32 batchId, bytes32 evidenceHash) external {
        BatchCases memory b = _batchCases[batchId];
        if (!b.penalized) revert BatchNotPenalized(batchId);
        bytes32 lastCase = keccak256(abi.encode(batchId, uint256(b.count - 1)));
        if (msg.sender != _cases[lastCase].lab) revert NotCaseParty(lastCase, msg.sender);
        if (evidenceHash == 0) revert MissingEvidenceHash(lastCase);
        _reopenEvidence[batchId] = evidenceHash;
        emit ReopenApproved(batchId, msg.sender, evidenceHash);
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
        c.deadline = uint32(labDeadline);
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
        c.deadline = uint32(labDeadline);
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
        _storeVerdict(c, verdict, CaseState.VerdictSubmitted, _FLAG_VERDICT, uint32(disputeDeadline));
        c.verdictHash = verdictHash;
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
        SignatureCheck.check(
            oem,
            _partySigner(caseId, oem, IPartyRegistry.PartyKind.Oem),
            _acceptanceDigest(caseId, verdictHash, true, oemDeadline, verdict.nonce),
            oemSignature
        );
        SignatureCheck.check(
            supplier,
            _partySigner(caseId, supplier, IPartyRegistry.PartyKind.Supplier),
            _acceptanceDigest(caseId, verdictHash, true, supplierDeadline, verdict.nonce),
            supplierSignature
        );
        _storeVerdict(c, verdict, CaseState.Accepted, _BOTH_ACCEPTED | _FLAG_VERDICT, 0);
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
    function approveLab(bytes32 caseId, address newLab) external {
        StoredCase storage c = _existing(caseId);
        _requireLabStage(c, caseId);
        address other;
        if (msg.sender == c.oem) other = c.supplier;
        else if (msg.sender == c.supplier) other = c.oem;
        else revert NotCaseParty(caseId, msg.sender);
        uint64 now_ = _time();
        _requireAccreditedLab(newLab, now_);
        emit LabChangeApproved(caseId, msg.sender, newLab);
        if (_labApproval[caseId][other] != newLab) {
            _labApproval[caseId][msg.sender] = newLab;
            return;
        }
        // both parties approved the same lab: the change takes effect
        delete _labApproval[caseId][other];
        delete _labApproval[caseId][msg.sender];
        address previous = c.lab;
        uint16 round = c.round + 1;
        uint64 labDeadline = now_ + c.labVerdictSeconds;
        c.lab = newLab;
        c.round = round;
        c.flags &= ~_FLAG_LAB_MISSED;
        c.deadline = uint32(labDeadline);
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
        SignatureCheck.check(party, _partySigner(caseId, party, kind), _acceptanceDigestOf(acceptance), signature);
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
        _requireState(c, caseId, CaseState.Disputed);
        _requireBeforeDeadline(c, caseId, _time());
        _checkVerdictFields(caseId, responsibleParty, ncClass);
        if (rulingHash == 0) revert MissingRulingHash(caseId);
        uint8 labResponsible = c.responsible;
        uint8 labClass = c.ncClass;
        // the arbiter may uphold, lower or overturn the lab's verdict, never make it harsher: classes are
        // 1 critical > 2 major > 3 minor
        if (responsibleParty == _RESPONSIBLE_SUPPLIER && (labResponsible != _RESPONSIBLE_SUPPLIER || ncClass < labClass)) {
            revert ArbitrationExceedsVerdict(caseId, labResponsible, labClass);
        }
        bool upheld = responsibleParty == labResponsible && ncClass == labClass;
        c.state = CaseState.Arbitrated;
        c.responsible = responsibleParty;
        c.ncClass = ncClass;
        c.deadline = 0;
        if (!upheld) c.flags |= _FLAG_OVERTURNED;
        emit CaseArbitrated(caseId, responsibleParty, ncClass, rootCauseCode, rulingHash, upheld, msg.sender);
    }

    // =================================================================== settlement

    /// @inheritdoc ITracingCases
    function settle(bytes32 caseId) external nonReentrant {
        StoredCase storage c = _existing(caseId);
        CaseState s = c.state;
        uint64 now_ = _time();
        uint64 deadline = c.deadline;
        if (s == CaseState.VerdictSubmitted || s == CaseState.Disputed) {
            // undisputed past the window, or not ruled by the arbitration deadline: the lab's verdict stands
            if (now_ <= deadline) revert DeadlineNotPassed(caseId, deadline, now_);
        } else if (s == CaseState.SupplierResponded || s == CaseState.SupplierDefaulted) {
            // a silent lab: one more lab period for both parties to approve another lab, then closed unpenalised
            uint64 closesAt = deadline + c.labVerdictSeconds;
            if (now_ <= closesAt) revert DeadlineNotPassed(caseId, closesAt, now_);
        } else if (s != CaseState.Accepted && s != CaseState.Arbitrated) {
            revert InvalidState(caseId, s);
        }
        c.state = CaseState.Settled;
        c.deadline = 0;
        bytes32 batchId = c.batchId;
        BatchCases storage b = _batchCases[batchId];
        b.open = false;
        uint96 fee = c.labFee;
        address lab = c.lab;
        uint96 paid;
        // lab-fee outcome rule: paid when the lab's verdict stands, back to the OEM's pool otherwise
        uint8 flags = c.flags;
        bool verdictStands = flags & _FLAG_VERDICT != 0 && flags & _FLAG_OVERTURNED == 0;
        if (fee != 0) {
            if (verdictStands) {
                _labClaimable[lab] += fee;
                paid = fee;
            } else {
                _feePool[c.oem] += fee;
            }
        }
        uint8 responsible = c.responsible;
        uint8 ncClass = c.ncClass;
        bool penalized = responsible == _RESPONSIBLE_SUPPLIER && ncClass != 0;
        if (penalized) b.penalized = true;
        bytes32 agreementId = c.agreementId;
        emit CaseSettled(caseId, agreementId, responsible, ncClass, penalized, lab, paid, msg.sender);
        _agreements.closeCase(agreementId, caseId, penalized ? ncClass : 0);
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
            verdictHash: verdictHash,
            labFee: c.labFee
        });
    }

    /// @inheritdoc ITracingCases
    function openCaseOf(bytes32 batchId) external view returns (bytes32) {
        BatchCases memory b = _batchCases[batchId];
        return b.open ? keccak256(abi.encode(batchId, uint256(b.count - 1))) : bytes32(0);
    }

    /// @inheritdoc ITracingCases
    function nextCaseId(bytes32 batchId) external view returns (bytes32) {
        return keccak256(abi.encode(batchId, uint256(_batchCases[batchId].count)));
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

    /// @inheritdoc AccessControlDefaultAdminRules
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
        // the case id commits to its batch: keccak(batchId, seq); the batch word is read on the error path only
        if (keccak256(abi.encode(verdict.batchId, uint256(c.seq))) != caseId) {
            revert BatchMismatch(caseId, c.batchId, verdict.batchId);
        }
        now_ = _time();
        if (now_ > verdict.deadline) revert SignatureExpired(verdict.deadline, now_);
        uint16 round = c.round;
        if (verdict.nonce != round) revert InvalidNonce(caseId, round, verdict.nonce);
        _requireBeforeDeadline(c, caseId, now_);
        _checkVerdictFields(caseId, verdict.responsibleParty, verdict.ncClass);
        if (verdict.analysisHash == 0) revert MissingAnalysisHash(verdict.batchId);
        address lab = c.lab;
        address signer = _requireAccreditedLab(lab, now_);
        verdictHash = _verdictDigest(verdict);
        SignatureCheck.check(lab, signer, verdictHash, labSignature);
    }

    /// @dev Writes the verdict's state, flags, responsible party, class and deadline into the case's first
    ///      word in one store.
    function _storeVerdict(
        StoredCase storage c,
        Verdict calldata verdict,
        CaseState state,
        uint8 flags,
        uint32 deadline
    ) private {
        uint8 responsible = verdict.responsibleParty;
        uint8 ncClass = verdict.ncClass;
        // one store of the first word (StoredCase layout: lab 0-159, state 160-167, flags 168-175,
        // responsible 176-183, ncClass 184-191, round 192-207, seq 208-223, deadline 224-255), keeping
        // lab, round and seq
        assembly ("memory-safe") {
            let slot := c.slot
            let w := and(sload(slot), not(or(shl(160, 0xffffffff), shl(224, 0xffffffff))))
            w := or(w, or(or(shl(160, state), shl(168, flags)), or(or(shl(176, responsible), shl(184, ncClass)), shl(224, deadline))))
            sstore(slot, w)
        }
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
        uint64 arbitrationDeadline = _time() + ARBITRATION_SECONDS;
        c.state = CaseState.Disputed;
        c.deadline = uint32(arbitrationDeadline);
        emit VerdictDisputed(caseId, c.verdictHash, party, evidenceHash, arbitrationDeadline);
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
