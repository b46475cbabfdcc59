// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IBatchAnchorRegistry} from "./IBatchAnchorRegistry.sol";

/// @title ITracingCases
/// @notice Three-party tracing cases of qcn: an anomalous, anchored batch opens a case between the OEM, the
///         supplier and an ISO/IEC 17025 lab; the supplier responds, the lab signs a verdict (EIP-712), OEM and
///         supplier accept or dispute inside a window, the consortium arbiter rules on disputes, and the case
///         settles exactly once: a supplier-fault verdict moves the template's penalty from the supplier's
///         deposit to the OEM (through the agreement registry, linked to this contract once) and counts the non-conformity;
///         the lab's fee becomes claimable by the lab (pull).
/// @dev State machine (deadlines against the contract clock, one "current deadline" per state):
///        Opened --respond (supplier, <= deadline)--> SupplierResponded
///        Opened --advanceToLab (anyone, > deadline; supplier breach counted)--> SupplierDefaulted
///        SupplierResponded | SupplierDefaulted --submitVerdict (lab-signed, <= deadline)--> VerdictSubmitted
///        VerdictSubmitted --both accept--> Accepted;  --either disputes (<= deadline)--> Disputed
///        Disputed --arbitrate (ARBITER_ROLE)--> Arbitrated
///        SupplierResponded | SupplierDefaulted, lab deadline missed --arbitrate--> Arbitrated (no lab fee)
///        Accepted | Arbitrated | VerdictSubmitted after the dispute window (silence = acceptance)
///          --settle (anyone, once)--> Settled
///      A lab that misses its deadline gets a breach counted here ({markLabDeadlineMissed}; the agreement's
///      quarterly counters only hold SUPPLIER breaches) and may be replaced ({reassignLab}) by the arbiter or
///      the OEM; re-assignment bumps the case's signature round, so signatures of the old round are void.
///
///      Signatures: EIP-712, domain ("qcn TracingCases", "1", chainId, this contract). The nonce of a
///      {Verdict} and of an {Acceptance} is the case's current `round`: every signed message is bound to
///      (chain, contract, case, round), and the state machine lets each take effect once, so a replay fails
///      with {InvalidState} / {AlreadyAccepted} (same round) or {InvalidNonce} (older round). This costs no
///      per-signer nonce storage, which keeps a 3-signature finalization inside its gas budget.
///      `verdictHash` = the EIP-712 digest of the {Verdict} (what the lab signed).
///
///      Lab fees: the agreement registry's escrow has no third payee and its template carries no lab fee, so
///      the fee is chosen per case at opening and reserved from a pool the OEM prefunds here
///      ({fundLabFees}); settlement credits it to the lab (pull, {claimLabFee}) when the lab delivered a
///      verdict, else returns it to the OEM's pool.
interface ITracingCases {
    /// @notice Lifecycle of a case; `None` marks an unknown id.
    enum CaseState {
        None,
        Opened,
        SupplierResponded,
        SupplierDefaulted,
        VerdictSubmitted,
        Accepted,
        Disputed,
        Arbitrated,
        Settled
    }

    /// @notice What opens a case.
    /// @param agreementId Agreement the batch was delivered under.
    /// @param batchId The anchored batch.
    /// @param analysisHash Hash of the anomaly verdict / root-cause analysis that triggers the case (non-zero).
    /// @param evidenceHash Hash of further evidence (may be zero).
    /// @param lab Lab assigned to the case; zero = the agreement's lab.
    /// @param labFee Fee the lab earns by delivering a verdict, reserved from the OEM's fee pool (may be 0).
    struct OpenRequest {
        bytes32 agreementId;
        bytes32 batchId;
        bytes32 analysisHash;
        bytes32 evidenceHash;
        address lab;
        uint96 labFee;
    }

    /// @notice The lab's verdict (EIP-712 primary type `Verdict`, same field order):
    ///         `Verdict(bytes32 caseId,bytes32 batchId,bytes32 rootCauseCode,uint8 responsibleParty,
    ///         uint8 ncClass,bytes32 analysisHash,uint64 deadline,uint256 nonce)`.
    /// @param responsibleParty 0 none / no fault, 1 supplier, 2 OEM, 3 other.
    /// @param ncClass 0 none, 1 critical, 2 major, 3 minor (a supplier-fault verdict needs a class).
    /// @param deadline Last second (inclusive) the signature may be used.
    /// @param nonce The case's current round.
    struct Verdict {
        bytes32 caseId;
        bytes32 batchId;
        bytes32 rootCauseCode;
        uint8 responsibleParty;
        uint8 ncClass;
        bytes32 analysisHash;
        uint64 deadline;
        uint256 nonce;
    }

    /// @notice A party's answer to a verdict (EIP-712 primary type `Acceptance`):
    ///         `Acceptance(bytes32 caseId,bytes32 verdictHash,bool accept,uint64 deadline,uint256 nonce)`.
    ///         `accept` false is a dispute.
    struct Acceptance {
        bytes32 caseId;
        bytes32 verdictHash;
        bool accept;
        uint64 deadline;
        uint256 nonce;
    }

    /// @notice A case as read back.
    /// @param deadline The deadline of the current state: supplier response (Opened), lab verdict
    ///        (SupplierResponded / SupplierDefaulted), end of the dispute window (VerdictSubmitted), end of
    ///        the arbitration window (Disputed); else 0.
    /// @param verdictHash The stored verdict of the step-by-step path; zero before a verdict and for a case
    ///        finalized in one step (its {VerdictFinalized} event carries the hash).
    struct CaseView {
        CaseState state;
        bytes32 agreementId;
        bytes32 batchId;
        address oem;
        address supplier;
        address lab;
        uint64 openedAt;
        uint64 deadline;
        uint16 round;
        bool oemAccepted;
        bool supplierAccepted;
        bool labDeadlineMissed;
        uint8 responsibleParty;
        uint8 ncClass;
        bytes32 verdictHash;
        uint96 labFee;
    }

    // ----------------------------------------------------------------- errors
    /// @notice `caseId` is unknown.
    error UnknownCase(bytes32 caseId);
    /// @notice `caseId` is in `state`, which does not allow the call.
    error InvalidState(bytes32 caseId, CaseState state);
    /// @notice `caller` may not do this on `caseId` (wrong role or not a party of the case).
    error NotCaseParty(bytes32 caseId, address caller);
    /// @notice `caller` is neither an ORACLE_ROLE holder nor the OEM of `agreementId`.
    error NotOracleOrOem(bytes32 agreementId, address caller);
    /// @notice `agreementId` is unknown or in agreement state `state` (cases need Active or Suspended).
    error AgreementNotOpen(bytes32 agreementId, uint8 state);
    /// @notice `batchId` is not anchored.
    error BatchNotAnchored(bytes32 batchId);
    /// @notice The header given for `batchId` hashes to `given`, the registry holds `stored`.
    error BatchHeaderMismatch(bytes32 batchId, bytes32 stored, bytes32 given);
    /// @notice `batchId` was anchored under `headerAgreementId` by `headerSupplier`, not under `agreementId`
    ///         by its supplier `supplier`.
    error BatchNotOfAgreement(
        bytes32 batchId,
        bytes32 agreementId,
        address supplier,
        bytes32 headerAgreementId,
        address headerSupplier
    );
    /// @notice `batchId` already has the open case `caseId`.
    error CaseAlreadyOpen(bytes32 batchId, bytes32 caseId);
    /// @notice `lab` is not an active LAB party (zero: no lab given and the agreement names none).
    error NotActiveLab(address lab);
    /// @notice The analysis hash of batch `batchId`'s case (opening) or verdict is zero.
    error MissingAnalysisHash(bytes32 batchId);
    /// @notice The evidence hash of the supplier's response to `caseId` is zero.
    error MissingEvidenceHash(bytes32 caseId);
    /// @notice The ruling hash of the arbitration of `caseId` is zero.
    error MissingRulingHash(bytes32 caseId);
    /// @notice The OEM `oem` has `available` in its lab-fee pool, `needed` is required.
    error InsufficientLabFeePool(address oem, uint256 available, uint256 needed);
    /// @notice The current deadline `deadline` of `caseId` has passed; it is `at` now.
    error DeadlinePassed(bytes32 caseId, uint64 deadline, uint64 at);
    /// @notice The current deadline `deadline` of `caseId` has not passed yet; it is `at` now.
    error DeadlineNotPassed(bytes32 caseId, uint64 deadline, uint64 at);
    /// @notice A signature valid until `deadline` was used at `at`.
    error SignatureExpired(uint64 deadline, uint64 at);
    /// @notice A message for `caseId` carries nonce `given`; the case's round is `expected`.
    error InvalidNonce(bytes32 caseId, uint256 expected, uint256 given);
    /// @notice The signature for `party` recovers to `recovered`, not to its current signer `expectedSigner`.
    error WrongSigner(address party, address expectedSigner, address recovered);
    /// @notice The verdict names `given` as batch, the case is about `expected`.
    error BatchMismatch(bytes32 caseId, bytes32 expected, bytes32 given);
    /// @notice The acceptance refers to verdict `given`, the case holds `expected`.
    error VerdictMismatch(bytes32 caseId, bytes32 expected, bytes32 given);
    /// @notice `responsibleParty` / `ncClass` are out of range, or a supplier fault names no class.
    error InvalidVerdictFields(bytes32 caseId, uint8 responsibleParty, uint8 ncClass);
    /// @notice The lab `lab`'s accreditation expired at `expiry`; it is `at` now.
    error LabAccreditationExpired(address lab, uint64 expiry, uint64 at);
    /// @notice `party` has already accepted the verdict of `caseId`.
    error AlreadyAccepted(bytes32 caseId, address party);
    /// @notice The lab deadline breach of `caseId` (round `round`) is already recorded.
    error LabBreachAlreadyRecorded(bytes32 caseId, uint16 round);
    /// @notice `caseId` can be re-assigned or arbitrated without verdict only after a missed lab deadline.
    error LabDeadlineNotMissed(bytes32 caseId);
    /// @notice The amount is zero.
    error ZeroAmount();
    /// @notice `account` has nothing to claim.
    error NothingToClaim(address account);
    /// @notice `amount` exceeds the `available` (unreserved) lab-fee pool of `oem`.
    error ExceedsPool(address oem, uint256 amount, uint256 available);
    /// @notice The case's lab is the agreement's `lab`; `given` was asked for.
    error LabNotOfAgreement(bytes32 agreementId, address lab, address given);
    /// @notice A lab fee of `fee` exceeds the template's cap `cap`.
    error LabFeeAboveCap(bytes32 agreementId, uint256 fee, uint256 cap);
    /// @notice `batchId` was penalised already; a new case needs new evidence signed off by the lab.
    error BatchAlreadyPenalized(bytes32 batchId);
    /// @notice `batchId` has had 65,535 cases: no more can open.
    error TooManyCases(bytes32 batchId);
    /// @notice `batchId` was never penalised (nothing to re-open).
    error BatchNotPenalized(bytes32 batchId);
    /// @notice The ruling would be harsher than the lab's verdict (`responsibleParty`, `ncClass`).
    error ArbitrationExceedsVerdict(bytes32 caseId, uint8 responsibleParty, uint8 ncClass);

    // ----------------------------------------------------------------- events
    /// @notice `caseId` (the `seq`-th case of `batchId`) was opened by `openedBy`; the supplier must respond
    ///         by `supplierDeadline`. `analysisHash` / `evidenceHash` are the opening evidence.
    event CaseOpened(
        bytes32 indexed caseId,
        bytes32 indexed agreementId,
        bytes32 indexed batchId,
        uint256 seq,
        address supplier,
        address lab,
        bytes32 analysisHash,
        bytes32 evidenceHash,
        uint96 labFee,
        uint64 supplierDeadline,
        address openedBy
    );
    /// @notice The supplier responded with `evidenceHash`; the lab has until `labDeadline`.
    event SupplierResponded(bytes32 indexed caseId, bytes32 evidenceHash, uint64 labDeadline);
    /// @notice The supplier let `supplierDeadline` pass (breach counted); the lab has until `labDeadline`.
    event SupplierDefaulted(bytes32 indexed caseId, uint64 supplierDeadline, uint64 labDeadline, address by);
    /// @notice `lab` signed verdict `verdictHash` (round `round`), relayed by `relayer`; OEM and supplier may
    ///         dispute until `disputeDeadline`.
    event VerdictSubmitted(
        bytes32 indexed caseId,
        bytes32 indexed verdictHash,
        address indexed lab,
        bytes32 rootCauseCode,
        uint8 responsibleParty,
        uint8 ncClass,
        bytes32 analysisHash,
        uint16 round,
        uint64 disputeDeadline,
        address relayer
    );
    /// @notice `caseId` was finalized in one step ({submitVerdictWithAcceptances}): the lab's verdict
    ///         `verdictHash` (round `round`) together with the OEM's and the supplier's signed acceptances; the
    ///         case is Accepted. Stands for {VerdictSubmitted} plus both {VerdictAccepted} of the step-by-step
    ///         path (one event instead of three keeps the finalization inside its 70k gas budget); the lab is
    ///         the case's, the relayer the transaction's sender.
    event VerdictFinalized(
        bytes32 indexed caseId,
        bytes32 indexed verdictHash,
        bytes32 rootCauseCode,
        uint8 responsibleParty,
        uint8 ncClass,
        bytes32 analysisHash,
        uint16 round
    );
    /// @notice `party` accepted `verdictHash`; `caseAccepted` is true once both OEM and supplier have.
    event VerdictAccepted(bytes32 indexed caseId, bytes32 indexed verdictHash, address indexed party, bool caseAccepted);
    /// @notice `party` disputed `verdictHash` with evidence `evidenceHash`.
    ///         The arbiter may rule until `arbitrationDeadline`; afterwards the lab's verdict stands.
    event VerdictDisputed(
        bytes32 indexed caseId,
        bytes32 indexed verdictHash,
        address indexed party,
        bytes32 evidenceHash,
        uint64 arbitrationDeadline
    );
    /// @notice `party` (OEM or supplier) approved `lab` as the case's new lab (the change needs both).
    event LabChangeApproved(bytes32 indexed caseId, address indexed party, address indexed lab);
    /// @notice The lab `lab` of a penalised batch signed off new evidence `evidenceHash`: one more case may open.
    event ReopenApproved(bytes32 indexed batchId, address indexed lab, bytes32 evidenceHash);
    /// @notice `lab` missed the verdict deadline `deadline` of `caseId`; it now has `breaches` breaches in total.
    event LabDeadlineMissed(bytes32 indexed caseId, address indexed lab, uint64 deadline, uint32 breaches);
    /// @notice `caseId` moved from `previousLab` to `newLab` (signature round `round`), verdict due `labDeadline`.
    event LabReassigned(
        bytes32 indexed caseId,
        address indexed previousLab,
        address indexed newLab,
        uint16 round,
        uint64 labDeadline,
        address by
    );
    /// @notice The arbiter `arbiter` ruled on `caseId`; `rulingHash` binds the written ruling.
    event CaseArbitrated(
        bytes32 indexed caseId,
        uint8 responsibleParty,
        uint8 ncClass,
        bytes32 rootCauseCode,
        bytes32 rulingHash,
        bool upheld,
        address arbiter
    );
    /// @notice `caseId` settled: `penalized` tells whether a non-conformity was recorded (the agreement
    ///         registry's NonConformityRecorded event in the same transaction carries the amounts);
    ///         `labFeePaid` was credited to `lab` (0 and refunded to the OEM's pool if no verdict).
    event CaseSettled(
        bytes32 indexed caseId,
        bytes32 indexed agreementId,
        uint8 responsibleParty,
        uint8 ncClass,
        bool penalized,
        address lab,
        uint96 labFeePaid,
        address by
    );
    /// @notice `from` added `amount` to the lab-fee pool of `oem`; `available` is its unreserved balance.
    event LabFeesFunded(address indexed oem, address indexed from, uint256 amount, uint256 available);
    /// @notice The OEM `oem` withdrew `amount` of its unreserved lab-fee pool; `available` remains.
    event LabFeesWithdrawn(address indexed oem, uint256 amount, uint256 available);
    /// @notice `lab` claimed `amount` of earned lab fees.
    event LabFeeClaimed(address indexed lab, uint256 amount);

    // ----------------------------------------------------------------- cases
    /// @notice Opens a case on an anchored batch of the agreement's supplier. ORACLE_ROLE or the OEM.
    /// @dev The anchor registry stores only a commitment per batch, so the caller passes the anchored
    ///      `header` (rebuilt from the BatchAnchored event) and the contract checks
    ///      keccak256(abi.encode(header)) == commitmentOf(batchId): this proves supplier and agreement of the
    ///      batch without trusting the caller or adding storage to the registry. One open case per batch.
    ///      Emits {CaseOpened}.
    /// @return caseId keccak256(abi.encode(batchId, seq)), seq = number of earlier cases of the batch.
    function openCase(
        OpenRequest calldata request,
        IBatchAnchorRegistry.BatchHeader calldata header
    ) external returns (bytes32 caseId);

    /// @notice Supplier (the party account): responds with `evidenceHash` before its deadline.
    /// @dev Emits {SupplierResponded}.
    function respond(bytes32 caseId, bytes32 evidenceHash) external;

    /// @notice Anyone: after a silent supplier's deadline, counts a supplier deadline breach in the agreement's
    ///         quarter and hands the case to the lab. Emits {SupplierDefaulted}.
    function advanceToLab(bytes32 caseId) external;

    /// @notice Anyone (a relayer): submits the verdict signed by the assigned lab's current signer; the lab
    ///         must be accredited now. Emits {VerdictSubmitted}.
    /// @return verdictHash The EIP-712 digest of `verdict`.
    function submitVerdict(Verdict calldata verdict, bytes calldata labSignature) external returns (bytes32 verdictHash);

    /// @notice Anyone: the lab's verdict and the OEM's and supplier's signed acceptances (accept = true,
    ///         nonce = `verdict.nonce`, their own deadlines) in one call; the case ends Accepted.
    /// @dev Emits {VerdictFinalized} (one event for the verdict and both acceptances). Signatures may be
    ///      65-byte (r, s, v) or 64-byte ERC-2098 (r, vs) ones.
    function submitVerdictWithAcceptances(
        Verdict calldata verdict,
        bytes calldata labSignature,
        uint64 oemDeadline,
        bytes calldata oemSignature,
        uint64 supplierDeadline,
        bytes calldata supplierSignature
    ) external returns (bytes32 verdictHash);

    /// @notice OEM or supplier (party account): accepts verdict `verdictHash`. Emits {VerdictAccepted}.
    function accept(bytes32 caseId, bytes32 verdictHash) external;

    /// @notice OEM or supplier (party account): disputes the verdict inside the window. Emits {VerdictDisputed}.
    function dispute(bytes32 caseId, bytes32 evidenceHash) external;

    /// @notice Anyone: submits `party`'s signed acceptance (or, with accept = false, dispute) of the verdict.
    /// @dev `party` is the OEM or supplier account; the signature must recover to its current signer.
    function submitAcceptance(Acceptance calldata acceptance, address party, bytes calldata signature) external;

    /// @notice Anyone: after the lab's deadline passed without verdict, counts a breach for the lab.
    /// @dev Emits {LabDeadlineMissed}.
    function markLabDeadlineMissed(bytes32 caseId) external;

    /// @notice The case's OEM or supplier approves `newLab` (accredited) while the case waits for its lab; when
    ///         both approved the same lab it becomes the case's lab with a fresh deadline and signature round.
    ///         Emits {LabChangeApproved}, then {LabReassigned}.
    function approveLab(bytes32 caseId, address newLab) external;

    /// @notice The lab of the last case of penalised `batchId` signs off new evidence `evidenceHash`: one more
    ///         case carrying that evidence hash may open on the batch. Emits {ReopenApproved}.
    function approveReopen(bytes32 batchId, bytes32 evidenceHash) external;

    /// @notice ARBITER_ROLE: rules on a disputed case before its arbitration deadline; the ruling may uphold,
    ///         lower or overturn the lab's verdict, never make it harsher ({ArbitrationExceedsVerdict}).
    /// @dev Emits {CaseArbitrated}.
    function arbitrate(
        bytes32 caseId,
        uint8 responsibleParty,
        uint8 ncClass,
        bytes32 rootCauseCode,
        bytes32 rulingHash
    ) external;

    /// @notice Anyone: settles an Accepted or Arbitrated case, a verdict whose dispute window closed in
    ///         silence, a disputed verdict past its arbitration deadline (the lab's verdict stands), or a case
    ///         whose lab stayed silent one lab period past its deadline (closed without penalty). Exactly once.
    ///         Emits {CaseSettled}; releases the bound deposit and applies the penalty in the agreement registry.
    function settle(bytes32 caseId) external;

    // ----------------------------------------------------------------- lab fees (pull)
    /// @notice Anyone: adds `amount` settlement tokens (transferFrom the caller) to the lab-fee pool of `oem`.
    /// @dev Emits {LabFeesFunded}.
    function fundLabFees(address oem, uint256 amount) external;

    /// @notice OEM: withdraws `amount` of its unreserved lab-fee pool. Emits {LabFeesWithdrawn}.
    function withdrawLabFees(uint256 amount) external;

    /// @notice Lab: transfers every fee it earned to the caller. Emits {LabFeeClaimed}.
    function claimLabFee() external;

    // ----------------------------------------------------------------- views
    /// @notice The case `caseId` (state None if unknown).
    function caseOf(bytes32 caseId) external view returns (CaseView memory);

    /// @notice The open (not settled) case of `batchId`, zero if none.
    function openCaseOf(bytes32 batchId) external view returns (bytes32);

    /// @notice The id the next case of `batchId` will get.
    function nextCaseId(bytes32 batchId) external view returns (bytes32);

    /// @notice EIP-712 digest of `verdict` (= its verdictHash).
    function verdictDigest(Verdict calldata verdict) external view returns (bytes32);

    /// @notice EIP-712 digest of `acceptance`.
    function acceptanceDigest(Acceptance calldata acceptance) external view returns (bytes32);

    /// @notice Unreserved lab-fee pool of `oem`.
    function labFeePool(address oem) external view returns (uint256);

    /// @notice Lab fees `lab` earned and has not claimed.
    function labFeeClaimable(address lab) external view returns (uint256);

    /// @notice Verdict deadlines `lab` missed.
    function labBreaches(address lab) external view returns (uint32);

    /// @notice The ERC-20 lab fees are paid in (the escrow's settlement token).
    function feeToken() external view returns (address);

    /// @notice Semantic version of the deployed code.
    function version() external pure returns (string memory);
}
