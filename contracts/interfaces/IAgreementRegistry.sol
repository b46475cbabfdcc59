// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IBatchAnchorRegistry} from "./IBatchAnchorRegistry.sol";
import {IPartyRegistry} from "./IPartyRegistry.sol";

/// @title IAgreementRegistry
/// @notice OEM contract templates, supplier agreements signed by both sides (EIP-712), per-quarter quality
///         counters and the quarterly evaluation that moves the required deposit ratio.
/// @dev Parties (OEM, supplier, lab) and their current signing keys come from the consortium
///      {IPartyRegistry}. Quarters are fixed periods of {QUARTER_SECONDS} (91 days) counted from the
///      agreement's activation: quarter q covers [activatedAt + q*P, activatedAt + (q+1)*P).
///
///      Evaluation formula version 1 (deterministic, integer arithmetic, see {scoreOf}):
///        score = max(0, 100 - floor(50 * rejected / batches) - 25 * ncCritical - 10 * ncMajor
///                      - 3 * ncMinor - 5 * deadlineBreaches)      (the rejection term is 0 without batches)
///        target = ratioBps of the highest tier whose minScore <= score
///        newRatio = clamp(target, minRatioBps, maxRatioBps), then clamped to oldRatio +- maxStepBps.
interface IAgreementRegistry {
    /// @notice Lifecycle of an agreement. `None` marks an unknown id.
    enum AgreementState {
        None,
        Active,
        Suspended,
        Terminated
    }

    /// @notice Class of a confirmed non-conformity.
    enum NcClass {
        Critical,
        Major,
        Minor
    }

    /// @notice Template field named by {InvalidTemplateField}.
    enum TemplateField {
        DocumentHash,
        DepositBase,
        MinRatioBps,
        MaxRatioBps,
        InitialRatioBps,
        MaxStepBps,
        TierCount,
        TemplateCount,
        SupplierResponseSeconds,
        LabVerdictSeconds,
        DisputeWindowSeconds,
        TopUpGraceSeconds
    }

    /// @notice One point of the score -> ratio curve: scores >= `minScore` map to `ratioBps`
    ///         (unless a later tier with a higher `minScore` applies).
    struct Tier {
        uint8 minScore;
        uint16 ratioBps;
    }

    /// @notice The numbers of a template the chain enforces (the full document is off chain, bound by
    ///         `documentHash`).
    /// @param templateId Template identity chosen by the OEM (e.g. keccak of a slug); versions share it.
    /// @param version Version number; a new version of an id must be greater than every earlier one.
    /// @param documentHash Hash of the full off-chain template JSON document (non-zero).
    /// @param depositBase Deposit base amount in settlement-token units; required = base * ratio / 10_000.
    /// @param initialRatioBps Ratio at activation (basis points), within [minRatioBps, maxRatioBps].
    /// @param minRatioBps Lowest ratio the evaluation may set (> 0).
    /// @param maxRatioBps Highest ratio the evaluation may set.
    /// @param maxStepBps Largest change of the ratio per evaluated quarter (> 0).
    /// @param tiers 1..8 tiers, strictly increasing minScore starting at 0, each ratio within [min, max].
    /// @param penaltyCritical Penalty per confirmed critical non-conforming batch (token units).
    /// @param penaltyMajor Penalty per confirmed major non-conforming batch.
    /// @param penaltyMinor Penalty per confirmed minor non-conforming batch.
    /// @param penaltyPerPpm Penalty per PPM above `ppmTarget`.
    /// @param ppmTarget Defect rate target in parts per million.
    /// @param supplierResponseSeconds Tracing: time the supplier has to respond to a case.
    /// @param labVerdictSeconds Tracing: time the lab has to issue its verdict.
    /// @param disputeWindowSeconds Tracing: time OEM and supplier have to dispute a verdict.
    /// @param topUpGraceSeconds Time the supplier has to (re)fund the required deposit.
    /// @param formulaVersion Evaluation formula; must equal {FORMULA_VERSION}.
    struct TemplateTerms {
        bytes32 templateId;
        uint32 version;
        bytes32 documentHash;
        uint128 depositBase;
        uint16 initialRatioBps;
        uint16 minRatioBps;
        uint16 maxRatioBps;
        uint16 maxStepBps;
        Tier[] tiers;
        uint96 penaltyCritical;
        uint96 penaltyMajor;
        uint96 penaltyMinor;
        uint96 penaltyPerPpm;
        uint32 ppmTarget;
        uint32 supplierResponseSeconds;
        uint32 labVerdictSeconds;
        uint32 disputeWindowSeconds;
        uint32 topUpGraceSeconds;
        uint16 formulaVersion;
        uint96 labFeeCap;
    }

    /// @notice The terms both parties sign (EIP-712 primary type `Agreement`, same field order):
    ///         `Agreement(bytes32 agreementId,bytes32 templateId,uint32 templateVersion,address oem,
    ///         address supplier,address lab,uint256 oemNonce,uint256 supplierNonce,uint64 deadline)`.
    /// @param agreementId Identity of the agreement (non-zero, unused); batches are anchored under it.
    /// @param lab Lab assigned for later tracing cases, or zero.
    /// @param oemNonce Must equal `nonces(oem)`; consumed on activation.
    /// @param supplierNonce Must equal `nonces(supplier)`; consumed on activation.
    /// @param deadline Last second (inclusive) the signatures may be used.
    struct AgreementTerms {
        bytes32 agreementId;
        bytes32 templateId;
        uint32 templateVersion;
        address oem;
        address supplier;
        address lab;
        uint256 oemNonce;
        uint256 supplierNonce;
        uint64 deadline;
    }

    /// @notice An agreement as read back.
    struct Agreement {
        AgreementState state;
        bool lateTopUp;
        bytes32 templateId;
        uint32 templateVersion;
        address oem;
        address supplier;
        address lab;
        uint16 ratioBps;
        uint64 activatedAt;
        uint64 topUpDeadline;
        uint64 terminatedAt;
        uint32 nextQuarter;
        uint128 bound;
        uint128 debt;
    }

    /// @notice What the case contract needs of an agreement when it opens a case (one call, see {openCaseFor}).
    struct CaseTerms {
        address oem;
        address supplier;
        address lab;
        uint32 supplierResponseSeconds;
        uint32 labVerdictSeconds;
        uint32 disputeWindowSeconds;
        uint96 labFeeCap;
    }

    /// @notice The counters of one agreement-quarter (one storage word).
    struct QuarterCounters {
        uint32 batches;
        uint32 rejected;
        uint16 ncCritical;
        uint16 ncMajor;
        uint16 ncMinor;
        uint16 deadlineBreaches;
    }

    // ----------------------------------------------------------------- errors
    /// @notice `account` is not an active party of `kind` in the consortium registry.
    error InactiveParty(address account, IPartyRegistry.PartyKind kind);
    /// @notice The lab `lab` has an accreditation expired at `expiry` (checked at `at`).
    error LabAccreditationExpired(address lab, uint64 expiry, uint64 at);
    /// @notice `templateId` version `version` is already published (templates are immutable).
    error TemplateExists(bytes32 templateId, uint32 version);
    /// @notice `version` is not greater than `latest`, the newest published version of `templateId`.
    error VersionNotIncreasing(bytes32 templateId, uint32 latest, uint32 version);
    /// @notice No template `templateId` version `version` is published.
    error UnknownTemplate(bytes32 templateId, uint32 version);
    /// @notice A template field is out of range: `field` names it, `value` is what was given.
    error InvalidTemplateField(bytes32 templateId, TemplateField field, uint256 value);
    /// @notice Tier `index` (`minScore`, `ratioBps`) breaks the curve rules.
    error InvalidTier(bytes32 templateId, uint256 index, uint8 minScore, uint16 ratioBps);
    /// @notice Evaluation formula `given` is not the one this contract runs (`supported`).
    error UnsupportedFormula(uint16 given, uint16 supported);
    /// @notice The signatures were valid until `deadline`, it is `at` now.
    error SignatureExpired(uint64 deadline, uint64 at);
    /// @notice `party` signed with nonce `given`, its current nonce is `expected`.
    error InvalidNonce(address party, uint256 expected, uint256 given);
    /// @notice The signature for `party` recovers to `recovered`, not to its current signer `expectedSigner`.
    error WrongSigner(address party, address expectedSigner, address recovered);
    /// @notice The agreement names `oem`, but the template was published by `templateOem`.
    error OemMismatch(bytes32 templateId, uint32 version, address templateOem, address oem);
    /// @notice The zero agreement id is reserved (it means "no agreement" on anchors).
    error ZeroAgreementId();
    /// @notice `agreementId` is already in use.
    error AgreementExists(bytes32 agreementId);
    /// @notice `agreementId` is unknown.
    error UnknownAgreement(bytes32 agreementId);
    /// @notice `agreementId` is in `state`, which does not allow the call.
    error AgreementNotActive(bytes32 agreementId, AgreementState state);
    /// @notice `agreementId` belongs to `expected`, not to `given`.
    error SupplierMismatch(bytes32 agreementId, address expected, address given);
    /// @notice `caller` may not do this on `agreementId`.
    error Unauthorized(bytes32 agreementId, address caller);
    /// @notice Only the linked case contract may call this (`caller` is not it).
    error NotCasesContract(address caller);
    /// @notice The case contract is linked already (to `cases`); the link is permanent.
    error CasesAlreadyLinked(address cases);
    /// @notice Only the deployer may link the case contract, once.
    error NotLinker(address caller);
    /// @notice `batchId` was inspected already (one inspection result per batch).
    error AlreadyInspected(bytes32 batchId);
    /// @notice `batchId` is not an anchored batch of `agreementId`'s supplier under `agreementId`.
    error NotABatchOfAgreement(bytes32 agreementId, bytes32 batchId);
    /// @notice Only the consortium registry may report anchors.
    error NotConsortiumRegistry(address caller);
    /// @notice `quarter` of `agreementId` ends at `endsAt`, it is `at` now.
    error QuarterNotEnded(bytes32 agreementId, uint32 quarter, uint64 endsAt, uint64 at);
    /// @notice `quarter` of `agreementId` was evaluated already.
    error AlreadyEvaluated(bytes32 agreementId, uint32 quarter);
    /// @notice Quarters are evaluated in order: `expected` is next, `quarter` was asked.
    error QuarterOutOfOrder(bytes32 agreementId, uint32 expected, uint32 quarter);
    /// @notice `agreementId` is not flagged for a late top-up (OEM suspension needs the flag).
    error NotFlagged(bytes32 agreementId);
    /// @notice The contract clock `at` is before the activation `activatedAt` (cannot happen on a real chain).
    error ClockBeforeActivation(bytes32 agreementId, uint64 activatedAt, uint64 at);

    // ----------------------------------------------------------------- events
    /// @notice `oem` published `templateId` version `version` binding `documentHash`.
    event TemplatePublished(
        bytes32 indexed templateId,
        uint32 indexed version,
        address indexed oem,
        bytes32 documentHash,
        uint128 depositBase,
        uint16 initialRatioBps,
        uint16 formulaVersion
    );
    /// @notice `agreementId` was activated by `relayer` with both signatures; the supplier must fund
    ///         depositBase * `ratioBps` / 10_000 tokens by `topUpDeadline`.
    event AgreementActivated(
        bytes32 indexed agreementId,
        bytes32 indexed templateId,
        address indexed supplier,
        uint32 templateVersion,
        address oem,
        address lab,
        uint16 ratioBps,
        uint64 topUpDeadline,
        address relayer
    );
    /// @notice The OEM suspended `agreementId` (new batches are refused).
    event AgreementSuspended(bytes32 indexed agreementId, address indexed by);
    /// @notice The OEM resumed `agreementId`.
    event AgreementResumed(bytes32 indexed agreementId, address indexed by);
    /// @notice `by` terminated `agreementId`; the deposit stays bound until `windDownEnds`.
    event AgreementTerminated(bytes32 indexed agreementId, address indexed by, uint64 windDownEnds);
    /// @notice A confirmed non-conformity of `class` was counted in `quarter` and penalised: `due` was owed,
    ///         `paid` moved from the deposit to the OEM's claimable balance, `shortfall` = due - paid.
    event NonConformityRecorded(
        bytes32 indexed agreementId,
        bytes32 indexed caseId,
        uint32 quarter,
        NcClass class,
        uint256 due,
        uint256 paid,
        uint256 shortfall,
        address by
    );
    /// @notice The OEM recorded its incoming inspection of `batchId` (`accepted` or rejected) in `quarter`.
    event InspectionRecorded(
        bytes32 indexed agreementId,
        bytes32 indexed batchId,
        uint32 quarter,
        bool accepted,
        address by
    );
    /// @notice The supplier anchored correction `batchId` of `supersedes` under `agreementId` in `quarter`;
    ///         `count` corrections were anchored in that quarter so far.
    event CorrectionRecorded(
        bytes32 indexed agreementId,
        bytes32 indexed batchId,
        bytes32 indexed supersedes,
        uint32 quarter,
        uint32 count
    );
    /// @notice A case opened: `amount` (the template's critical penalty) of the deposit is bound until it
    ///         settles; `bound` is the total bound for open cases.
    event DepositBound(bytes32 indexed agreementId, bytes32 indexed caseId, uint256 amount, uint256 bound);
    /// @notice A case settled: `amount` was released; `bound` remains bound.
    event DepositReleased(bytes32 indexed agreementId, bytes32 indexed caseId, uint256 amount, uint256 bound);
    /// @notice A penalty exceeded the deposit: `amount` was added to the agreement's `debt`.
    event DebtRecorded(bytes32 indexed agreementId, bytes32 indexed caseId, uint256 amount, uint256 debt);
    /// @notice `party` cancelled its agreement nonce `nonce` (a signed, unused agreement becomes void).
    event NonceCancelled(address indexed party, uint256 nonce);
    /// @notice The deployer linked the case contract `cases` (permanent).
    event CasesLinked(address indexed cases, address indexed by);
    /// @notice A tracing deadline breach by the supplier was counted in `quarter`.
    event DeadlineBreachRecorded(bytes32 indexed agreementId, bytes32 indexed caseId, uint32 quarter, address by);
    /// @notice `quarter` of `agreementId` was evaluated: `score` moved the ratio from `oldRatioBps` to
    ///         `newRatioBps` under `formulaVersion`; `required` is the new required deposit and
    ///         `topUpDeadline` (0 = none) the time by which it must be funded.
    event Evaluated(
        bytes32 indexed agreementId,
        uint32 indexed quarter,
        uint8 score,
        uint16 oldRatioBps,
        uint16 newRatioBps,
        uint16 formulaVersion,
        uint256 required,
        uint64 topUpDeadline
    );

    // ----------------------------------------------------------------- templates
    /// @notice Publishes an immutable template; the caller must be an active OEM party.
    /// @dev Emits {TemplatePublished}.
    function publishTemplate(TemplateTerms calldata terms) external;

    /// @notice The terms, publisher and publication time of `oem`'s `templateId` version `version`
    ///         (template ids live in the namespace of their OEM).
    function template(
        address oem,
        bytes32 templateId,
        uint32 version
    ) external view returns (TemplateTerms memory terms, address publisher, uint64 publishedAt);

    /// @notice Newest published version of `oem`'s `templateId` (0 if none).
    function latestVersion(address oem, bytes32 templateId) external view returns (uint32);

    // ----------------------------------------------------------------- agreements
    /// @notice Activates an agreement signed by the OEM's and the supplier's current signers (EIP-712).
    ///         Anyone may submit it (a relayer). Consumes both nonces.
    /// @dev Emits {AgreementActivated}. The first quarter starts now.
    function activate(
        AgreementTerms calldata terms,
        bytes calldata oemSignature,
        bytes calldata supplierSignature
    ) external;

    /// @notice OEM only: suspends an active agreement flagged for a late top-up. Emits {AgreementSuspended}.
    function suspend(bytes32 agreementId) external;

    /// @notice OEM only: resumes a suspended agreement. Emits {AgreementResumed}.
    function resume(bytes32 agreementId) external;

    /// @notice OEM or supplier: terminates the agreement for good. New batches are refused; the deposit
    ///         stays bound for the template's supplier response + lab verdict + dispute windows, during which
    ///         the OEM can still open cases on the lots already anchored. Emits {AgreementTerminated}.
    function terminate(bytes32 agreementId) external;

    /// @notice The agreement `agreementId` (state None if unknown).
    function agreement(bytes32 agreementId) external view returns (Agreement memory);

    /// @notice The caller voids its current agreement nonce (an agreement signed with it can no longer be
    ///         activated). Emits {NonceCancelled}.
    function cancelNonce() external;

    /// @notice Next nonce `party` must sign with.
    function nonces(address party) external view returns (uint256);

    /// @notice Number of template versions `oem` has published.
    function templatesPublished(address oem) external view returns (uint32);

    /// @notice EIP-712 digest of `terms` in this contract's domain (what both parties sign).
    function agreementDigest(AgreementTerms calldata terms) external view returns (bytes32);

    // ----------------------------------------------------------------- counters
    /// @notice Reverts unless `agreementId` is Active and belongs to `supplier` (anchoring under an agreement).
    function checkAnchor(bytes32 agreementId, address supplier) external view;

    /// @notice Consortium registry only: counts a correction anchored under `agreementId` (same checks as
    ///         {checkAnchor}). Emits {CorrectionRecorded}.
    function recordCorrection(bytes32 agreementId, address supplier, bytes32 batchId, bytes32 supersedes) external;

    /// @notice The agreement's OEM records its incoming inspection of the anchored batch `batchId` (`header`
    ///         is its anchored header): one result per batch, counted in the current quarter as a batch and,
    ///         if not `accepted`, a rejection. These counts drive the quality score. Emits {InspectionRecorded}.
    function recordInspection(
        bytes32 agreementId,
        bytes32 batchId,
        IBatchAnchorRegistry.BatchHeader calldata header,
        bool accepted
    ) external;

    /// @notice Corrections anchored under `agreementId` in `quarter`.
    function corrections(bytes32 agreementId, uint32 quarter) external view returns (uint32);

    /// @notice Case contract only: a case `caseId` opens on `agreementId` (Active, Suspended, or Terminated
    ///         within its wind-down, so that lots delivered before termination stay answerable); binds the
    ///         template's critical penalty of the deposit until {closeCase}. Emits {DepositBound}.
    function openCaseFor(bytes32 agreementId, bytes32 caseId) external returns (CaseTerms memory);

    /// @notice Case contract only: case `caseId` settled; releases its bound deposit and, for `ncCode`
    ///         1/2/3 (critical/major/minor; 0 = no penalty), counts the non-conformity and moves the
    ///         template's penalty from the deposit to the OEM's claimable balance, the shortfall to the
    ///         agreement's debt. Emits {DepositReleased}, {NonConformityRecorded}, {DebtRecorded}.
    function closeCase(bytes32 agreementId, bytes32 caseId, uint8 ncCode) external;

    /// @notice The deployer links the case contract once (it is the only caller of the case functions).
    function linkCases(address cases) external;

    /// @notice The linked case contract (zero until linked).
    function casesContract() external view returns (address);

    /// @notice Counts a supplier tracing deadline breach in the current quarter. Case contract only.
    /// @dev Emits {DeadlineBreachRecorded}.
    function recordDeadlineBreach(bytes32 agreementId, bytes32 caseId) external;

    /// @notice The counters of `quarter` of `agreementId`.
    function quarterCounters(bytes32 agreementId, uint32 quarter) external view returns (QuarterCounters memory);

    /// @notice The quarter `agreementId` is in now.
    function currentQuarter(bytes32 agreementId) external view returns (uint32);

    // ----------------------------------------------------------------- evaluation
    /// @notice Evaluates `quarter` of `agreementId` once, after it ended, in order. Anyone may call.
    /// @dev Emits {Evaluated}. A ratio increase that leaves the deposit short starts a top-up grace period.
    function evaluate(bytes32 agreementId, uint32 quarter) external;

    /// @notice The formula-1 score of `counters` (pure; see the interface notes).
    function scoreOf(QuarterCounters calldata counters) external pure returns (uint8);

    /// @notice Evaluation formula version this contract runs.
    function FORMULA_VERSION() external view returns (uint16);

    /// @notice Length of a quarter in seconds (91 days).
    function QUARTER_SECONDS() external view returns (uint64);
}
