// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAgreementRegistry} from "./interfaces/IAgreementRegistry.sol";
import {IBatchAnchorRegistry} from "./interfaces/IBatchAnchorRegistry.sol";
import {IDepositEscrow} from "./interfaces/IDepositEscrow.sol";
import {IPartyRegistry} from "./interfaces/IPartyRegistry.sol";
import {SignatureCheck} from "./lib/SignatureCheck.sol";

/// @title AgreementRegistry
/// @notice qcn agreements on chain: OEM templates, EIP-712 agreements, quarterly counters and evaluation, and
///         the supplier deposit escrow ({IDepositEscrow}) in one deployment. See docs/trust-model.md.
/// @dev No operator key has any power here. Who may call what:
///      - publishTemplate: an active OEM party (ids live in its namespace).
///      - activate: anyone, with the OEM's and the supplier's signatures (their current registry signers).
///      - cancelNonce: any party, for itself.
///      - suspend (only while flagged late and still short) / resume: the agreement's OEM;
///        terminate: its OEM or supplier.
///      - recordInspection: the agreement's OEM (the batch and rejection counts of the quality score).
///      - recordCorrection: the consortium registry (inside anchorCorrection).
///      - openCaseFor / closeCase / recordDeadlineBreach: the case contract linked once at deployment; money
///        leaves a deposit only in closeCase, for a settled case (lab-signed verdict).
///      - evaluate / flagLateTopUp / deposit: anyone; withdraw: the supplier; claim: the OEM.
///      Money moves only in withdraw/claim (to the caller) and deposit (from the caller), each nonReentrant,
///      with every state change made before the token call.
contract AgreementRegistry is EIP712, ReentrancyGuardTransient, IAgreementRegistry, IDepositEscrow {
    using SafeERC20 for IERC20;

    /// @inheritdoc IAgreementRegistry
    uint16 public constant FORMULA_VERSION = 1;
    /// @inheritdoc IAgreementRegistry
    uint64 public constant QUARTER_SECONDS = 7_862_400; // 91 days
    /// @notice Shortest supplier-response, lab-verdict, dispute and top-up window a template may set.
    uint32 public constant MIN_WINDOW_SECONDS = 3600;

    /// @dev EIP-712 type hash of {AgreementTerms}.
    bytes32 private constant _AGREEMENT_TYPEHASH = keccak256(
        "Agreement(bytes32 agreementId,bytes32 templateId,uint32 templateVersion,address oem,address supplier,"
        "address lab,uint256 oemNonce,uint256 supplierNonce,uint64 deadline)"
    );
    uint256 private constant _BPS = 10_000;
    uint256 private constant _MAX_TIERS = 8;

    /// @dev One template in 8 words. Tiers packed 24 bits each: bits 0-7 minScore, 8-23 ratioBps.
    struct StoredTemplate {
        bytes32 templateId;
        bytes32 documentHash;
        // activation reads only this word
        address oem;
        uint16 initialRatioBps;
        uint32 topUpGraceSeconds;
        uint40 publishedAt;
        uint128 depositBase;
        uint16 minRatioBps;
        uint16 maxRatioBps;
        uint16 maxStepBps;
        uint32 version;
        uint16 formulaVersion;
        uint8 tierCount;
        uint192 tiers;
        uint32 ppmTarget;
        uint32 supplierResponseSeconds;
        uint96 penaltyCritical;
        uint96 penaltyMajor;
        uint32 labVerdictSeconds;
        uint32 disputeWindowSeconds;
        uint96 penaltyMinor;
        uint96 penaltyPerPpm;
        uint96 labFeeCap;
    }

    /// @dev Per-party state in one word. Publishing a template writes the OEM's word, so consuming its
    ///      agreement nonce later rewrites a non-zero slot (5k gas) instead of creating one (22.1k).
    struct PartyState {
        uint64 nonce;
        uint32 templatesPublished;
    }

    /// @dev One agreement in 4 words: (supplier, template, ratio, state, flag, activation),
    ///      (lab, top-up deadline, termination, next quarter), (deposit, claimable), (bound, debt).
    struct StoredAgreement {
        address supplier;
        uint24 templateIndex;
        uint16 ratioBps;
        AgreementState state;
        bool lateTopUp;
        uint40 activatedAt;
        address lab;
        uint40 topUpDeadline;
        uint40 terminatedAt;
        uint16 nextQuarter;
        uint128 deposited;
        uint128 claimable;
        uint128 bound;
        uint128 debt;
    }

    IPartyRegistry private immutable _parties;
    IERC20 private immutable _token;
    address private immutable _linker;
    address private _cases;

    StoredTemplate[] private _templates;
    mapping(address oem => mapping(bytes32 templateId => mapping(uint32 version => uint256 indexPlusOne)))
        private _templateIndex;
    mapping(address oem => mapping(bytes32 templateId => uint32 version)) private _latestVersion;
    mapping(bytes32 agreementId => StoredAgreement) private _agreements;
    mapping(bytes32 agreementId => mapping(uint32 quarter => QuarterCounters)) private _counters;
    mapping(bytes32 agreementId => mapping(uint32 quarter => uint32 count)) private _corrections;
    mapping(bytes32 batchId => bool) private _inspected;
    mapping(address party => PartyState) private _partyState;

    /// @param linker The deployer: may link the case contract once ({linkCases}); no other power.
    /// @param parties The consortium registry (parties, signers; it also anchors batches).
    /// @param settlementToken The ERC-20 the deposits are held in.
    constructor(
        address linker,
        IPartyRegistry parties,
        IERC20 settlementToken
    ) EIP712("qcn AgreementRegistry", "1") {
        if (linker == address(0)) revert IPartyRegistry.InvalidAccount(linker);
        if (address(parties) == address(0)) revert IPartyRegistry.InvalidAccount(address(parties));
        if (address(settlementToken) == address(0)) revert IPartyRegistry.InvalidAccount(address(settlementToken));
        _parties = parties;
        _token = settlementToken;
        _linker = linker;
    }

    /// @inheritdoc IAgreementRegistry
    function linkCases(address cases) external {
        if (msg.sender != _linker) revert NotLinker(msg.sender);
        if (cases == address(0)) revert IPartyRegistry.InvalidAccount(cases);
        address current = _cases;
        if (current != address(0)) revert CasesAlreadyLinked(current);
        _cases = cases;
        emit CasesLinked(cases, msg.sender);
    }

    /// @inheritdoc IAgreementRegistry
    function casesContract() external view returns (address) {
        return _cases;
    }

    /// @notice Semantic version of the deployed code.
    function version() external pure returns (string memory) {
        return "2.0.0";
    }

    /// @notice The consortium registry this contract reads parties from.
    function partyRegistry() external view returns (address) {
        return address(_parties);
    }

    // =================================================================== templates

    /// @inheritdoc IAgreementRegistry
    function publishTemplate(TemplateTerms calldata terms) external {
        IPartyRegistry.Party memory p = _parties.party(msg.sender);
        if (p.kind != IPartyRegistry.PartyKind.Oem || !p.active) {
            revert InactiveParty(msg.sender, IPartyRegistry.PartyKind.Oem);
        }
        bytes32 id = terms.templateId;
        if (_templateIndex[msg.sender][id][terms.version] != 0) revert TemplateExists(id, terms.version);
        uint32 latest = _latestVersion[msg.sender][id];
        if (terms.version <= latest) revert VersionNotIncreasing(id, latest, terms.version);
        uint192 packedTiers = _checkTemplate(terms);
        if (_templates.length >= type(uint24).max) revert InvalidTemplateField(id, TemplateField.TemplateCount, _templates.length);
        _templates.push(
            StoredTemplate({
                templateId: id,
                documentHash: terms.documentHash,
                oem: msg.sender,
                publishedAt: uint40(_time()),
                version: terms.version,
                formulaVersion: terms.formulaVersion,
                depositBase: terms.depositBase,
                initialRatioBps: terms.initialRatioBps,
                minRatioBps: terms.minRatioBps,
                maxRatioBps: terms.maxRatioBps,
                maxStepBps: terms.maxStepBps,
                topUpGraceSeconds: terms.topUpGraceSeconds,
                tierCount: uint8(terms.tiers.length),
                tiers: packedTiers,
                ppmTarget: terms.ppmTarget,
                supplierResponseSeconds: terms.supplierResponseSeconds,
                penaltyCritical: terms.penaltyCritical,
                penaltyMajor: terms.penaltyMajor,
                labVerdictSeconds: terms.labVerdictSeconds,
                disputeWindowSeconds: terms.disputeWindowSeconds,
                penaltyMinor: terms.penaltyMinor,
                penaltyPerPpm: terms.penaltyPerPpm,
                labFeeCap: terms.labFeeCap
            })
        );
        _templateIndex[msg.sender][id][terms.version] = _templates.length;
        _latestVersion[msg.sender][id] = terms.version;
        _partyState[msg.sender].templatesPublished += 1;
        emit TemplatePublished(
            id,
            terms.version,
            msg.sender,
            terms.documentHash,
            terms.depositBase,
            terms.initialRatioBps,
            terms.formulaVersion
        );
    }

    /// @inheritdoc IAgreementRegistry
    function template(
        address oem,
        bytes32 templateId,
        uint32 version_
    ) external view returns (TemplateTerms memory terms, address publisher, uint64 publishedAt) {
        uint256 indexPlusOne = _templateIndex[oem][templateId][version_];
        if (indexPlusOne == 0) revert UnknownTemplate(templateId, version_);
        StoredTemplate storage t = _templates[indexPlusOne - 1];
        Tier[] memory tiers = new Tier[](t.tierCount);
        for (uint256 i; i < tiers.length; ++i) {
            (tiers[i].minScore, tiers[i].ratioBps) = _tierAt(t.tiers, i);
        }
        terms = TemplateTerms({
            templateId: t.templateId,
            version: t.version,
            documentHash: t.documentHash,
            depositBase: t.depositBase,
            initialRatioBps: t.initialRatioBps,
            minRatioBps: t.minRatioBps,
            maxRatioBps: t.maxRatioBps,
            maxStepBps: t.maxStepBps,
            tiers: tiers,
            penaltyCritical: t.penaltyCritical,
            penaltyMajor: t.penaltyMajor,
            penaltyMinor: t.penaltyMinor,
            penaltyPerPpm: t.penaltyPerPpm,
            ppmTarget: t.ppmTarget,
            supplierResponseSeconds: t.supplierResponseSeconds,
            labVerdictSeconds: t.labVerdictSeconds,
            disputeWindowSeconds: t.disputeWindowSeconds,
            topUpGraceSeconds: t.topUpGraceSeconds,
            formulaVersion: t.formulaVersion,
            labFeeCap: t.labFeeCap
        });
        publisher = t.oem;
        publishedAt = t.publishedAt;
    }

    /// @inheritdoc IAgreementRegistry
    function latestVersion(address oem, bytes32 templateId) external view returns (uint32) {
        return _latestVersion[oem][templateId];
    }

    // =================================================================== agreements

    /// @inheritdoc IAgreementRegistry
    function activate(
        AgreementTerms calldata terms,
        bytes calldata oemSignature,
        bytes calldata supplierSignature
    ) external {
        uint64 now_ = _time();
        if (now_ > terms.deadline) revert SignatureExpired(terms.deadline, now_);
        uint256 indexPlusOne = _templateIndex[terms.oem][terms.templateId][terms.templateVersion];
        if (indexPlusOne == 0) revert UnknownTemplate(terms.templateId, terms.templateVersion);
        StoredTemplate storage t = _templates[indexPlusOne - 1];
        _useNonce(terms.oem, terms.oemNonce);
        _useNonce(terms.supplier, terms.supplierNonce);
        address oemSigner = _activeSigner(terms.oem, IPartyRegistry.PartyKind.Oem);
        address supplierSigner = _activeSigner(terms.supplier, IPartyRegistry.PartyKind.Supplier);
        if (terms.lab != address(0)) _checkLab(terms.lab, now_);
        bytes32 digest = _agreementDigest(terms);
        SignatureCheck.check(terms.oem, oemSigner, digest, oemSignature);
        SignatureCheck.check(terms.supplier, supplierSigner, digest, supplierSignature);

        bytes32 id = terms.agreementId;
        if (id == 0) revert ZeroAgreementId();
        StoredAgreement storage a = _agreements[id];
        if (a.state != AgreementState.None) revert AgreementExists(id);
        uint16 ratio = t.initialRatioBps;
        uint64 deadline = now_ + t.topUpGraceSeconds;
        a.supplier = terms.supplier;
        a.templateIndex = uint24(indexPlusOne - 1);
        a.ratioBps = ratio;
        a.state = AgreementState.Active;
        a.activatedAt = uint40(now_);
        a.lab = terms.lab;
        a.topUpDeadline = uint40(deadline);
        emit AgreementActivated(
            id,
            terms.templateId,
            terms.supplier,
            terms.templateVersion,
            terms.oem,
            terms.lab,
            ratio,
            deadline,
            msg.sender
        );
    }

    /// @inheritdoc IAgreementRegistry
    function suspend(bytes32 agreementId) external {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        if (msg.sender != t.oem) revert Unauthorized(agreementId, msg.sender);
        if (a.state != AgreementState.Active) revert AgreementNotActive(agreementId, a.state);
        // the flag is recomputed after every change of deposit, ratio or bound amount; the check of the
        // shortfall also covers a requirement that fell with time (end of a wind-down)
        if (!a.lateTopUp || a.deposited >= _required(a, t, _time())) revert NotFlagged(agreementId);
        a.state = AgreementState.Suspended;
        emit AgreementSuspended(agreementId, msg.sender);
    }

    /// @inheritdoc IAgreementRegistry
    function resume(bytes32 agreementId) external {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        if (msg.sender != t.oem) revert Unauthorized(agreementId, msg.sender);
        if (a.state != AgreementState.Suspended) revert AgreementNotActive(agreementId, a.state);
        a.state = AgreementState.Active;
        emit AgreementResumed(agreementId, msg.sender);
    }

    /// @inheritdoc IAgreementRegistry
    function terminate(bytes32 agreementId) external {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        if (msg.sender != t.oem && msg.sender != a.supplier) revert Unauthorized(agreementId, msg.sender);
        if (a.state == AgreementState.Terminated) revert AgreementNotActive(agreementId, a.state);
        uint64 now_ = _time();
        a.state = AgreementState.Terminated;
        a.terminatedAt = uint40(now_);
        emit AgreementTerminated(agreementId, msg.sender, now_ + _windDown(t));
    }

    /// @inheritdoc IAgreementRegistry
    function agreement(bytes32 agreementId) external view returns (Agreement memory view_) {
        StoredAgreement storage a = _agreements[agreementId];
        if (a.state == AgreementState.None) return view_;
        StoredTemplate storage t = _templates[a.templateIndex];
        view_ = Agreement({
            state: a.state,
            lateTopUp: a.lateTopUp,
            templateId: t.templateId,
            templateVersion: t.version,
            oem: t.oem,
            supplier: a.supplier,
            lab: a.lab,
            ratioBps: a.ratioBps,
            activatedAt: a.activatedAt,
            topUpDeadline: a.topUpDeadline,
            terminatedAt: a.terminatedAt,
            nextQuarter: a.nextQuarter,
            bound: a.bound,
            debt: a.debt
        });
    }

    /// @inheritdoc IAgreementRegistry
    function cancelNonce() external {
        PartyState storage ps = _partyState[msg.sender];
        uint64 cancelled = ps.nonce;
        unchecked {
            ps.nonce = cancelled + 1; // 2^64 nonces per party cannot be used up
        }
        emit NonceCancelled(msg.sender, cancelled);
    }

    /// @inheritdoc IAgreementRegistry
    function nonces(address party) external view returns (uint256) {
        return _partyState[party].nonce;
    }

    /// @inheritdoc IAgreementRegistry
    function templatesPublished(address oem) external view returns (uint32) {
        return _partyState[oem].templatesPublished;
    }

    /// @inheritdoc IAgreementRegistry
    function agreementDigest(AgreementTerms calldata terms) external view returns (bytes32) {
        return _agreementDigest(terms);
    }

    // =================================================================== counters

    /// @inheritdoc IAgreementRegistry
    function checkAnchor(bytes32 agreementId, address supplier) external view {
        _anchorable(agreementId, supplier);
    }

    /// @inheritdoc IAgreementRegistry
    function recordCorrection(bytes32 agreementId, address supplier, bytes32 batchId, bytes32 supersedes) external {
        if (msg.sender != address(_parties)) revert NotConsortiumRegistry(msg.sender);
        StoredAgreement storage a = _anchorable(agreementId, supplier);
        uint32 quarter = _quarterOf(agreementId, a.activatedAt);
        uint32 count = _corrections[agreementId][quarter] + 1;
        _corrections[agreementId][quarter] = count;
        emit CorrectionRecorded(agreementId, batchId, supersedes, quarter, count);
    }

    /// @inheritdoc IAgreementRegistry
    function recordInspection(
        bytes32 agreementId,
        bytes32 batchId,
        IBatchAnchorRegistry.BatchHeader calldata header,
        bool accepted
    ) external {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        if (msg.sender != t.oem) revert Unauthorized(agreementId, msg.sender);
        if (a.state == AgreementState.Terminated) revert AgreementNotActive(agreementId, a.state);
        if (_inspected[batchId]) revert AlreadyInspected(batchId);
        bytes32 stored = IBatchAnchorRegistry(address(_parties)).commitmentOf(batchId);
        if (
            stored == 0 || stored != keccak256(abi.encode(header)) || header.agreementId != agreementId
                || header.supplier != a.supplier
        ) revert NotABatchOfAgreement(agreementId, batchId);
        _inspected[batchId] = true;
        uint32 quarter = _quarterOf(agreementId, a.activatedAt);
        QuarterCounters storage c = _counters[agreementId][quarter];
        // checked: a counter overflow must revert, never wrap
        c.batches += 1;
        if (!accepted) c.rejected += 1;
        emit InspectionRecorded(agreementId, batchId, quarter, accepted, msg.sender);
    }

    /// @inheritdoc IAgreementRegistry
    function corrections(bytes32 agreementId, uint32 quarter) external view returns (uint32) {
        return _corrections[agreementId][quarter];
    }

    /// @inheritdoc IAgreementRegistry
    function openCaseFor(bytes32 agreementId, bytes32 caseId) external returns (CaseTerms memory terms) {
        _onlyCases();
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        AgreementState state = a.state;
        // a terminated agreement still answers for the lots it delivered: every batch anchored under it was
        // anchored while it was Active, so cases open until the wind-down ends (the supplier cannot escape a
        // case by terminating first); the bound penalty then outlives the wind-down like any open case's
        bool windingDown = state == AgreementState.Terminated && _time() < uint64(a.terminatedAt) + _windDown(t);
        if (state != AgreementState.Active && state != AgreementState.Suspended && !windingDown) {
            revert AgreementNotActive(agreementId, state);
        }
        uint96 maxPenalty = t.penaltyCritical;
        if (maxPenalty != 0) {
            uint128 bound = a.bound + maxPenalty;
            a.bound = bound;
            emit DepositBound(agreementId, caseId, maxPenalty, bound);
            _refreshFunding(agreementId, a, t, _time());
        }
        terms = CaseTerms({
            oem: t.oem,
            supplier: a.supplier,
            lab: a.lab,
            supplierResponseSeconds: t.supplierResponseSeconds,
            labVerdictSeconds: t.labVerdictSeconds,
            disputeWindowSeconds: t.disputeWindowSeconds,
            labFeeCap: t.labFeeCap
        });
    }

    /// @inheritdoc IAgreementRegistry
    function closeCase(bytes32 agreementId, bytes32 caseId, uint8 ncCode) external {
        _onlyCases();
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        uint128 bound = a.bound;
        uint128 release = t.penaltyCritical;
        if (release > bound) release = bound; // cannot happen: every open case bound this amount
        if (release != 0) {
            bound -= release;
            a.bound = bound;
            emit DepositReleased(agreementId, caseId, release, bound);
        }
        if (ncCode != 0) {
            uint32 quarter = _quarterOf(agreementId, a.activatedAt);
            QuarterCounters storage c = _counters[agreementId][quarter];
            uint256 due;
            NcClass class;
            if (ncCode == 1) {
                c.ncCritical += 1;
                due = t.penaltyCritical;
                class = NcClass.Critical;
            } else if (ncCode == 2) {
                c.ncMajor += 1;
                due = t.penaltyMajor;
                class = NcClass.Major;
            } else {
                c.ncMinor += 1;
                due = t.penaltyMinor;
                class = NcClass.Minor;
            }
            uint256 deposited = a.deposited;
            uint256 paid = due < deposited ? due : deposited;
            if (paid != 0) {
                a.deposited = uint128(deposited - paid);
                // claimable + paid <= total ever deposited for this agreement <= 2^128 - 1 per {deposit}
                a.claimable += uint128(paid);
            }
            uint256 shortfall = due - paid;
            emit NonConformityRecorded(agreementId, caseId, quarter, class, due, paid, shortfall, msg.sender);
            if (shortfall != 0) {
                uint128 debt = a.debt + uint128(shortfall); // shortfall <= 2^96
                a.debt = debt;
                emit DebtRecorded(agreementId, caseId, shortfall, debt);
            }
        }
        _refreshFunding(agreementId, a, t, _time());
    }

    /// @inheritdoc IAgreementRegistry
    function recordDeadlineBreach(bytes32 agreementId, bytes32 caseId) external {
        _onlyCases();
        (StoredAgreement storage a, ) = _existing(agreementId);
        uint32 quarter = _quarterOf(agreementId, a.activatedAt);
        _counters[agreementId][quarter].deadlineBreaches += 1;
        emit DeadlineBreachRecorded(agreementId, caseId, quarter, msg.sender);
    }

    /// @inheritdoc IAgreementRegistry
    function quarterCounters(bytes32 agreementId, uint32 quarter) external view returns (QuarterCounters memory) {
        return _counters[agreementId][quarter];
    }

    /// @inheritdoc IAgreementRegistry
    function currentQuarter(bytes32 agreementId) external view returns (uint32) {
        (StoredAgreement storage a, ) = _existing(agreementId);
        return _quarterOf(agreementId, a.activatedAt);
    }

    // =================================================================== evaluation

    /// @inheritdoc IAgreementRegistry
    function evaluate(bytes32 agreementId, uint32 quarter) external {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        uint32 expected = a.nextQuarter;
        if (quarter < expected) revert AlreadyEvaluated(agreementId, quarter);
        if (quarter > expected) revert QuarterOutOfOrder(agreementId, expected, quarter);
        uint64 endsAt = uint64(a.activatedAt) + (uint64(quarter) + 1) * QUARTER_SECONDS;
        uint64 now_ = _time();
        if (now_ < endsAt) revert QuarterNotEnded(agreementId, quarter, endsAt, now_);

        QuarterCounters memory counters = _counters[agreementId][quarter];
        uint8 score = _score(counters);
        uint16 oldRatio = a.ratioBps;
        // an empty quarter (no inspection, non-conformity or breach) is no evidence either way: ratio unchanged
        bool empty = counters.batches == 0 && counters.ncCritical == 0 && counters.ncMajor == 0
            && counters.ncMinor == 0 && counters.deadlineBreaches == 0;
        uint16 newRatio = empty ? oldRatio : _nextRatio(t, oldRatio, score);
        a.ratioBps = newRatio;
        a.nextQuarter = uint16(quarter + 1);
        (uint256 required, uint64 deadline) = _refreshFunding(agreementId, a, t, now_);
        emit Evaluated(agreementId, quarter, score, oldRatio, newRatio, FORMULA_VERSION, required, deadline);
    }

    /// @inheritdoc IAgreementRegistry
    function scoreOf(QuarterCounters calldata counters) external pure returns (uint8) {
        return _score(counters);
    }

    // =================================================================== escrow

    /// @inheritdoc IDepositEscrow
    function deposit(bytes32 agreementId, uint256 amount) external nonReentrant {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        uint128 debt = a.debt;
        // a terminated agreement takes deposits only to pay its debt
        if (a.state == AgreementState.Terminated && debt == 0) revert AgreementNotActive(agreementId, a.state);
        if (amount == 0) revert ZeroAmount(agreementId);
        // Credit what arrived (fee-on-transfer tokens credit less); the token call is the interaction,
        // the state update follows it because the received amount is only known afterwards. nonReentrant
        // keeps every other state-changing entry point closed meanwhile.
        uint256 before = _token.balanceOf(address(this));
        _token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = _token.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroAmount(agreementId);
        uint256 credited = received;
        if (debt != 0) {
            // debt first: it is owed to the OEM already
            uint128 pay = received < debt ? uint128(received) : debt;
            debt -= pay;
            a.debt = debt;
            a.claimable += pay;
            credited -= pay;
            emit DebtPaid(agreementId, pay, debt);
        }
        uint256 deposited = uint256(a.deposited) + credited;
        if (deposited > type(uint128).max) revert DepositOverflow(agreementId, a.deposited, credited);
        a.deposited = uint128(deposited);
        bool wasPending = a.topUpDeadline != 0 || a.lateTopUp;
        (uint256 required, uint64 deadline) = _refreshFunding(agreementId, a, t, _time());
        emit Deposited(agreementId, msg.sender, received, deposited, required, wasPending && deadline == 0);
    }

    /// @inheritdoc IDepositEscrow
    function withdraw(bytes32 agreementId, uint256 amount) external nonReentrant {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        if (msg.sender != a.supplier) revert Unauthorized(agreementId, msg.sender);
        if (amount == 0) revert ZeroAmount(agreementId);
        uint256 deposited = a.deposited;
        uint256 required = _required(a, t, _time());
        uint256 excess = deposited > required ? deposited - required : 0;
        if (amount > excess) revert ExceedsExcess(agreementId, amount, excess);
        uint256 remaining = deposited - amount;
        a.deposited = uint128(remaining);
        emit Withdrawn(agreementId, msg.sender, amount, remaining);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IDepositEscrow
    function claim(bytes32 agreementId) external nonReentrant {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        if (msg.sender != t.oem) revert Unauthorized(agreementId, msg.sender);
        uint256 amount = a.claimable;
        if (amount == 0) revert NothingToClaim(agreementId);
        a.claimable = 0;
        emit Claimed(agreementId, msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IDepositEscrow
    function flagLateTopUp(bytes32 agreementId) external {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        if (a.lateTopUp) revert AlreadyFlagged(agreementId);
        uint64 now_ = _time();
        uint64 deadline = a.topUpDeadline;
        if (deadline == 0 || now_ <= deadline) revert TopUpNotLate(agreementId, deadline, now_);
        uint256 required = _required(a, t, now_);
        if (a.deposited >= required) revert NotUnderfunded(agreementId, a.deposited, required);
        a.lateTopUp = true;
        emit LateTopUpFlagged(agreementId, deadline, a.deposited, required, msg.sender);
    }

    /// @inheritdoc IDepositEscrow
    function balances(bytes32 agreementId) external view returns (Balances memory) {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        return Balances({
            deposited: a.deposited,
            claimable: a.claimable,
            required: _required(a, t, _time()),
            bound: a.bound,
            debt: a.debt
        });
    }

    /// @inheritdoc IDepositEscrow
    function requiredDeposit(bytes32 agreementId) external view returns (uint256) {
        (StoredAgreement storage a, StoredTemplate storage t) = _existing(agreementId);
        return _required(a, t, _time());
    }

    /// @inheritdoc IDepositEscrow
    function token() external view returns (address) {
        return address(_token);
    }

    /// @notice ERC-165.
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IAgreementRegistry).interfaceId || interfaceId == type(IDepositEscrow).interfaceId
            || interfaceId == 0x01ffc9a7; // IERC165
    }

    // =================================================================== internals

    /// @dev Current contract time; tests override it.
    function _time() internal view virtual returns (uint64) {
        return uint64(block.timestamp);
    }

    /// @dev The agreement and its template; reverts {UnknownAgreement}.
    function _existing(
        bytes32 agreementId
    ) private view returns (StoredAgreement storage a, StoredTemplate storage t) {
        a = _agreements[agreementId];
        if (a.state == AgreementState.None) revert UnknownAgreement(agreementId);
        t = _templates[a.templateIndex];
    }

    /// @dev Quarter index of now for an agreement activated at `activatedAt`.
    function _quarterOf(bytes32 agreementId, uint40 activatedAt) private view returns (uint32) {
        uint64 now_ = _time();
        if (now_ < activatedAt) revert ClockBeforeActivation(agreementId, activatedAt, now_);
        return uint32((now_ - activatedAt) / QUARTER_SECONDS);
    }

    /// @dev Required deposit: the larger of base * ratio / 10_000 (0 once a termination's wind-down has
    ///      ended) and the amount bound for open cases.
    function _required(
        StoredAgreement storage a,
        StoredTemplate storage t,
        uint64 now_
    ) private view returns (uint256 required) {
        if (a.state != AgreementState.Terminated || now_ < uint64(a.terminatedAt) + _windDown(t)) {
            required = (uint256(t.depositBase) * a.ratioBps) / _BPS;
        }
        uint256 bound = a.bound;
        if (bound > required) required = bound;
    }

    function _onlyCases() private view {
        if (msg.sender != _cases) revert NotCasesContract(msg.sender);
    }

    /// @dev The Active agreement `agreementId` of `supplier`, else reverts.
    function _anchorable(bytes32 agreementId, address supplier) private view returns (StoredAgreement storage a) {
        a = _agreements[agreementId];
        AgreementState state = a.state;
        if (state == AgreementState.None) revert UnknownAgreement(agreementId);
        if (state != AgreementState.Active) revert AgreementNotActive(agreementId, state);
        if (a.supplier != supplier) revert SupplierMismatch(agreementId, a.supplier, supplier);
    }

    /// @dev How long a terminated agreement's deposit stays bound: the tracing windows of a case opened
    ///      just before termination.
    function _windDown(StoredTemplate storage t) private view returns (uint64) {
        return uint64(t.supplierResponseSeconds) + t.labVerdictSeconds + t.disputeWindowSeconds;
    }

    /// @dev Recomputes the funding state from the deposit and the requirement now: a funded agreement has
    ///      no top-up deadline and no late flag; a short one has a deadline, started now if none was
    ///      running. Called after every change of deposit, ratio or bound amount, so a deadline or flag
    ///      never outlives the shortfall it was set for. Returns the requirement and the deadline in force.
    function _refreshFunding(
        bytes32 agreementId,
        StoredAgreement storage a,
        StoredTemplate storage t,
        uint64 now_
    ) private returns (uint256 required, uint64 deadline) {
        required = _required(a, t, now_);
        uint256 deposited = a.deposited;
        deadline = a.topUpDeadline;
        if (deposited >= required) {
            if (deadline != 0 || a.lateTopUp) {
                deadline = 0;
                a.topUpDeadline = 0;
                a.lateTopUp = false;
                emit FundingUpdated(agreementId, deposited, required, 0, false);
            }
        } else if (deadline == 0) {
            deadline = now_ + t.topUpGraceSeconds;
            a.topUpDeadline = uint40(deadline);
            emit FundingUpdated(agreementId, deposited, required, deadline, a.lateTopUp);
        }
    }

    /// @dev Formula-1 score (see {IAgreementRegistry}).
    function _score(QuarterCounters memory c) private pure returns (uint8) {
        uint256 deduction = uint256(c.ncCritical) * 25 + uint256(c.ncMajor) * 10 + uint256(c.ncMinor) * 3
            + uint256(c.deadlineBreaches) * 5;
        if (c.batches != 0) {
            uint256 rejected = c.rejected > c.batches ? c.batches : c.rejected;
            deduction += (50 * rejected) / c.batches;
        }
        return deduction >= 100 ? 0 : uint8(100 - deduction);
    }

    /// @dev Ratio after a quarter with `score`: tier target, clamped to [min, max] and to old +- step.
    function _nextRatio(StoredTemplate storage t, uint16 oldRatio, uint8 score) private view returns (uint16) {
        uint192 tiers = t.tiers;
        uint256 target;
        for (uint256 i; i < t.tierCount; ++i) {
            (uint8 minScore, uint16 ratio) = _tierAt(tiers, i);
            if (score < minScore) break;
            target = ratio;
        }
        uint256 lo = t.minRatioBps;
        uint256 hi = t.maxRatioBps;
        if (target < lo) target = lo;
        if (target > hi) target = hi;
        uint256 step = t.maxStepBps;
        if (target > uint256(oldRatio) + step) target = uint256(oldRatio) + step;
        if (uint256(target) + step < oldRatio) target = oldRatio - step;
        return uint16(target);
    }

    function _tierAt(uint192 tiers, uint256 i) private pure returns (uint8 minScore, uint16 ratioBps) {
        uint256 word = uint256(tiers) >> (24 * i);
        minScore = uint8(word);
        ratioBps = uint16(word >> 8);
    }

    /// @dev Validates a template and returns its packed tiers.
    function _checkTemplate(TemplateTerms calldata terms) private pure returns (uint192 packed) {
        bytes32 id = terms.templateId;
        if (terms.documentHash == 0) revert InvalidTemplateField(id, TemplateField.DocumentHash, 0);
        if (terms.depositBase == 0) revert InvalidTemplateField(id, TemplateField.DepositBase, 0);
        if (terms.formulaVersion != FORMULA_VERSION) revert UnsupportedFormula(terms.formulaVersion, FORMULA_VERSION);
        uint16 lo = terms.minRatioBps;
        uint16 hi = terms.maxRatioBps;
        if (lo == 0) revert InvalidTemplateField(id, TemplateField.MinRatioBps, lo);
        if (hi < lo) revert InvalidTemplateField(id, TemplateField.MaxRatioBps, hi);
        if (terms.initialRatioBps < lo || terms.initialRatioBps > hi) {
            revert InvalidTemplateField(id, TemplateField.InitialRatioBps, terms.initialRatioBps);
        }
        if (terms.maxStepBps == 0) revert InvalidTemplateField(id, TemplateField.MaxStepBps, 0);
        if (terms.supplierResponseSeconds < MIN_WINDOW_SECONDS) {
            revert InvalidTemplateField(id, TemplateField.SupplierResponseSeconds, terms.supplierResponseSeconds);
        }
        if (terms.labVerdictSeconds < MIN_WINDOW_SECONDS) {
            revert InvalidTemplateField(id, TemplateField.LabVerdictSeconds, terms.labVerdictSeconds);
        }
        if (terms.disputeWindowSeconds < MIN_WINDOW_SECONDS) {
            revert InvalidTemplateField(id, TemplateField.DisputeWindowSeconds, terms.disputeWindowSeconds);
        }
        if (terms.topUpGraceSeconds < MIN_WINDOW_SECONDS) {
            revert InvalidTemplateField(id, TemplateField.TopUpGraceSeconds, terms.topUpGraceSeconds);
        }
        uint256 n = terms.tiers.length;
        if (n == 0 || n > _MAX_TIERS) revert InvalidTemplateField(id, TemplateField.TierCount, n);
        for (uint256 i; i < n; ++i) {
            Tier calldata tier = terms.tiers[i];
            bool firstNotZero = i == 0 && tier.minScore != 0;
            bool notIncreasing = i != 0 && tier.minScore <= terms.tiers[i - 1].minScore;
            if (firstNotZero || notIncreasing || tier.minScore > 100 || tier.ratioBps < lo || tier.ratioBps > hi) {
                revert InvalidTier(id, i, tier.minScore, tier.ratioBps);
            }
            packed |= uint192((uint256(tier.ratioBps) << 8 | tier.minScore) << (24 * i));
        }
    }

    /// @dev Consumes `party`'s nonce if it equals `given`.
    function _useNonce(address party, uint256 given) private {
        PartyState storage ps = _partyState[party];
        uint64 expected = ps.nonce;
        if (given != expected) revert InvalidNonce(party, expected, given);
        unchecked {
            ps.nonce = expected + 1; // 2^64 agreements per party cannot be signed
        }
    }

    /// @dev Current signer of the active `account` of `kind`.
    function _activeSigner(address account, IPartyRegistry.PartyKind kind) private view returns (address) {
        IPartyRegistry.Party memory p = _parties.party(account);
        if (p.kind != kind || !p.active) revert InactiveParty(account, kind);
        return p.signer;
    }

    /// @dev Reverts unless `lab` is an active LAB with an accreditation valid at `now_`.
    function _checkLab(address lab, uint64 now_) private view {
        if (_parties.accreditationValid(lab, now_)) return;
        IPartyRegistry.Party memory p = _parties.party(lab);
        if (p.kind != IPartyRegistry.PartyKind.Lab || !p.active) revert InactiveParty(lab, IPartyRegistry.PartyKind.Lab);
        if (now_ > p.accreditationExpiry) revert LabAccreditationExpired(lab, p.accreditationExpiry, now_);
    }

    function _agreementDigest(AgreementTerms calldata terms) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _AGREEMENT_TYPEHASH,
                    terms.agreementId,
                    terms.templateId,
                    terms.templateVersion,
                    terms.oem,
                    terms.supplier,
                    terms.lab,
                    terms.oemNonce,
                    terms.supplierNonce,
                    terms.deadline
                )
            )
        );
    }
}
