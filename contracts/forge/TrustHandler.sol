// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IAgreementRegistry} from "../interfaces/IAgreementRegistry.sol";
import {IBatchAnchorRegistry} from "../interfaces/IBatchAnchorRegistry.sol";
import {IDepositEscrow} from "../interfaces/IDepositEscrow.sol";
import {IPartyRegistry} from "../interfaces/IPartyRegistry.sol";
import {ITracingCases} from "../interfaces/ITracingCases.sol";

/// @notice The test token's mint (contracts/test/TestToken.sol).
interface IMintable {
    function mint(address to, uint256 amount) external;
}

/// @notice Role administration of the production contracts (OpenZeppelin AccessControl).
interface IRoles {
    function grantRole(bytes32 role, address account) external;
}

/// @title TrustHandler
/// @notice Every role of docs/trust-model.md acting on the production contracts, honest and malicious: the
///         fuzzer calls these functions in random order with random arguments. Honest actions may be refused
///         (bad timing is part of the game); a malicious action that goes through is counted in
///         {attacksSucceeded}. Each action also checks the money rule: the supplier's deposit may go down only
///         by a withdrawal of the supplier (exactly the amount) or by the settlement of a case whose verdict
///         the case's lab signed (at most the template's penalty of the lab's class); anything else is counted
///         in {unexplainedDecreases}.
/// @dev Ghost state mirrors what the trust model says must have happened; the invariants of
///      TrustInvariantsTest compare it with the chain.
contract TrustHandler is CommonBase, StdUtils {
    struct Actor {
        address addr;
        uint256 key;
    }

    uint256 internal constant BATCH_POOL = 12;
    uint96 public constant PENALTY_CRITICAL = 50_000;
    uint96 public constant PENALTY_MAJOR = 20_000;
    uint96 public constant PENALTY_MINOR = 5_000;
    uint96 public constant LAB_FEE_CAP = 5_000;

    IAgreementRegistry public immutable agreements;
    IDepositEscrow public immutable escrow;
    ITracingCases public immutable cases;
    IPartyRegistry public immutable parties;
    IBatchAnchorRegistry public immutable anchors;
    IERC20 public immutable token;
    bytes32 public immutable agreementId;

    Actor public oem;
    Actor public supplier;
    Actor public lab;
    Actor public lab2;
    Actor public admin;
    Actor public registrar;
    Actor public arbiter;
    Actor public oracle;
    Actor public stranger;

    bytes32[] public batchIds;
    mapping(bytes32 => IBatchAnchorRegistry.BatchHeader) internal _headers;
    mapping(bytes32 => bool) public inspected;
    bytes32[] public caseIds;
    mapping(bytes32 => bool) internal _known;

    // ghost state: what the trust model allows to have happened
    /// @dev caseId => the verdict the case's lab signed (responsible party, class)
    mapping(bytes32 => uint8) public labResponsible;
    mapping(bytes32 => uint8) public labClass;
    mapping(bytes32 => bool) public labSigned;
    mapping(bytes32 => bool) public settledCase;
    uint256 public due; // penalties of settled, penalised cases (OEM's claimable + claimed + debt)
    uint256 public claimed; // what the OEM claimed
    uint256 public labFeesEarned; // fees of settled cases whose lab verdict stands
    uint256 public labFeesClaimed;
    uint256 public attacksSucceeded;
    uint256 public unexplainedDecreases;
    uint256 public penaltiesWithoutLabVerdict;
    uint256 public penaltiesAboveLabVerdict;
    uint256 public settled;
    uint256 public templates;
    uint256 public penalized;
    string public lastAttack;

    constructor(
        IAgreementRegistry agreements_,
        ITracingCases cases_,
        IPartyRegistry parties_,
        IBatchAnchorRegistry anchors_,
        IERC20 token_,
        bytes32 agreementId_,
        Actor[9] memory actors
    ) {
        agreements = agreements_;
        escrow = IDepositEscrow(address(agreements_));
        cases = cases_;
        parties = parties_;
        anchors = anchors_;
        token = token_;
        agreementId = agreementId_;
        (oem, supplier, lab, lab2, admin, registrar, arbiter, oracle, stranger) = (
            actors[0],
            actors[1],
            actors[2],
            actors[3],
            actors[4],
            actors[5],
            actors[6],
            actors[7],
            actors[8]
        );
        for (uint256 i = 0; i < 3; i++) _anchor(i); // the agreement's first deliveries
    }

    // ================================================================= plumbing

    bool internal _driving;

    /// @dev After each action, one case moves one step along its honest path ({driveCase}): the honest world
    ///      goes on while a role attacks, and random sequences reach verdicts, disputes and settlements.
    modifier thenTheCasesMoveOn() {
        _;
        if (!_driving) {
            _driving = true;
            uint256 h = uint256(keccak256(msg.data));
            _drive(h >> 128, h);
            _driving = false;
        }
    }

    function _deposited() internal view returns (uint256) {
        return escrow.balances(agreementId).deposited;
    }

    /// @dev `who` calls `target` with `data`; true if it went through.
    function _as(Actor memory who, address target, bytes memory data) internal returns (bool ok) {
        uint256 before = _deposited();
        vm.prank(who.addr);
        (ok, ) = target.call(data);
        if (_deposited() < before) unexplainedDecreases++;
    }

    /// @dev A malicious call: it must be refused (and must not touch the deposit).
    function _attack(Actor memory who, address target, bytes memory data, string memory what) internal {
        if (_as(who, target, data)) {
            attacksSucceeded++;
            lastAttack = what;
        }
    }

    function _sign(Actor memory who, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(who.key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _actor(uint256 seed) internal view returns (Actor memory) {
        uint256 i = seed % 9;
        if (i == 0) return oem;
        if (i == 1) return supplier;
        if (i == 2) return lab;
        if (i == 3) return lab2;
        if (i == 4) return admin;
        if (i == 5) return registrar;
        if (i == 6) return arbiter;
        if (i == 7) return oracle;
        return stranger;
    }

    function _case(uint256 pick) internal view returns (bytes32) {
        return caseIds.length == 0 ? bytes32(0) : caseIds[pick % caseIds.length];
    }

    function _batch(uint256 pick) internal view returns (bytes32) {
        return batchIds[pick % batchIds.length];
    }

    function penaltyOf(uint8 ncClass) public pure returns (uint256) {
        if (ncClass == 1) return PENALTY_CRITICAL;
        if (ncClass == 2) return PENALTY_MAJOR;
        if (ncClass == 3) return PENALTY_MINOR;
        return 0;
    }

    function batchCount() external view returns (uint256) {
        return batchIds.length;
    }

    function caseCount() external view returns (uint256) {
        return caseIds.length;
    }

    function header(bytes32 batchId) external view returns (IBatchAnchorRegistry.BatchHeader memory) {
        return _headers[batchId];
    }

    // ================================================================= supplier (honest)

    /// @notice The supplier anchors a new batch under the agreement (counts nothing by itself).
    function supplierAnchors(uint256 salt) external thenTheCasesMoveOn {
        _anchor(salt);
    }

    function _anchor(uint256 salt) internal {
        if (batchIds.length >= BATCH_POOL) return;
        IBatchAnchorRegistry.AnchorRequest memory req = _request(keccak256(abi.encode("forge/batch", batchIds.length, salt)));
        bytes memory data = abi.encodeCall(IBatchAnchorRegistry.anchor, (supplier.addr, agreementId, req));
        if (_as(supplier, address(anchors), data)) _remember(req, bytes32(0));
    }

    /// @notice The supplier anchors a correction of one of its batches (counted per quarter by the registry).
    function supplierCorrects(uint256 pick, uint256 salt) external thenTheCasesMoveOn {
        if (batchIds.length >= BATCH_POOL) return;
        bytes32 supersedes = _batch(pick);
        IBatchAnchorRegistry.AnchorRequest memory req = _request(keccak256(abi.encode("forge/fix", supersedes, salt)));
        uint32 quarter = agreements.currentQuarter(agreementId);
        uint32 before = agreements.corrections(agreementId, quarter);
        bytes memory data = abi.encodeCall(
            IBatchAnchorRegistry.anchorCorrection,
            (supplier.addr, agreementId, req, supersedes, _headers[supersedes])
        );
        if (!_as(supplier, address(anchors), data)) return;
        if (agreements.corrections(agreementId, quarter) != before + 1) {
            attacksSucceeded++;
            lastAttack = "a correction was anchored without being counted";
        }
        _remember(req, supersedes);
    }

    /// @dev A request for the batch id `key` names for the supplier: its address, then the low 96 bits of `key`
    ///      (the registry anchors only ids bound to their supplier).
    function _request(bytes32 key) internal view returns (IBatchAnchorRegistry.AnchorRequest memory) {
        bytes32 batchId = bytes32((uint256(uint160(supplier.addr)) << 96) | (uint256(key) & type(uint96).max));
        return
            IBatchAnchorRegistry.AnchorRequest({
                batchId: batchId,
                root: keccak256(abi.encode(batchId, "root")),
                reportHash: keccak256(abi.encode(batchId, "report")),
                recordCount: 125,
                verdict: 1
            });
    }

    /// @dev Keeps the header of a batch the supplier just anchored (checked against the registry's commitment).
    function _remember(IBatchAnchorRegistry.AnchorRequest memory req, bytes32 supersedes) internal {
        IBatchAnchorRegistry.BatchHeader memory h = IBatchAnchorRegistry.BatchHeader({
            root: req.root,
            reportHash: req.reportHash,
            agreementId: agreementId,
            supplier: supplier.addr,
            recordCount: req.recordCount,
            verdict: req.verdict,
            anchoredAt: uint64(block.timestamp),
            supersedes: supersedes
        });
        require(anchors.headerCommitment(h) == anchors.commitmentOf(req.batchId), "header rebuilt wrongly");
        _headers[req.batchId] = h;
        batchIds.push(req.batchId);
    }

    function supplierResponds(uint256 pick) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        _as(supplier, address(cases), abi.encodeCall(ITracingCases.respond, (id, keccak256("8D report"))));
    }

    function supplierDeposits(uint256 amount) external thenTheCasesMoveOn {
        amount = bound(amount, 1, 80_000);
        IMintable(address(token)).mint(supplier.addr, amount);
        vm.prank(supplier.addr);
        token.approve(address(agreements), amount);
        _as(supplier, address(agreements), abi.encodeCall(IDepositEscrow.deposit, (agreementId, amount)));
    }

    /// @notice The supplier withdraws; beyond its excess (the bound and required deposit) it must be refused.
    function supplierWithdraws(uint256 amount) external thenTheCasesMoveOn {
        amount = bound(amount, 1, 300_000);
        IDepositEscrow.Balances memory b = escrow.balances(agreementId);
        uint256 floor_ = b.required > b.bound ? b.required : b.bound;
        uint256 excess = b.deposited > floor_ ? b.deposited - floor_ : 0;
        uint256 before = b.deposited;
        uint256 tokensBefore = token.balanceOf(supplier.addr);
        vm.prank(supplier.addr);
        (bool ok, ) = address(agreements).call(abi.encodeCall(IDepositEscrow.withdraw, (agreementId, amount)));
        uint256 after_ = _deposited();
        if (ok) {
            // exactly the amount leaves, to the supplier, and never below what stays bound or required
            if (before - after_ != amount || token.balanceOf(supplier.addr) - tokensBefore != amount) {
                unexplainedDecreases++;
            }
            if (amount > excess) {
                attacksSucceeded++;
                lastAttack = "supplier withdrew beyond its excess";
            }
        } else if (after_ != before) {
            unexplainedDecreases++;
        }
    }

    /// @notice Rare: the supplier terminates (it must still not escape an open case: the bound stays).
    function supplierTerminates(uint256 dice) external thenTheCasesMoveOn {
        if (dice % 40 != 0 || caseIds.length < 2) return;
        _as(supplier, address(agreements), abi.encodeCall(IAgreementRegistry.terminate, (agreementId)));
    }

    // ================================================================= OEM (honest)

    function oemRecordsInspection(uint256 pick, bool accepted) external thenTheCasesMoveOn {
        bytes32 batchId = _batch(pick);
        bytes memory data = abi.encodeCall(
            IAgreementRegistry.recordInspection,
            (agreementId, batchId, _headers[batchId], accepted)
        );
        bool ok = _as(oem, address(agreements), data);
        if (ok && inspected[batchId]) {
            attacksSucceeded++;
            lastAttack = "OEM counted a batch twice";
        }
        if (ok) inspected[batchId] = true;
    }

    function oemClaims() external thenTheCasesMoveOn {
        uint256 amount = escrow.balances(agreementId).claimable;
        if (_as(oem, address(agreements), abi.encodeCall(IDepositEscrow.claim, (agreementId)))) claimed += amount;
    }

    function oemFundsLabFees(uint256 amount) external thenTheCasesMoveOn {
        amount = bound(amount, 1, 20_000);
        IMintable(address(token)).mint(oem.addr, amount);
        vm.prank(oem.addr);
        token.approve(address(cases), amount);
        _as(oem, address(cases), abi.encodeCall(ITracingCases.fundLabFees, (oem.addr, amount)));
    }

    function oemWithdrawsLabFees(uint256 amount) external thenTheCasesMoveOn {
        amount = bound(amount, 1, 30_000);
        _as(oem, address(cases), abi.encodeCall(ITracingCases.withdrawLabFees, (amount)));
    }

    /// @notice The OEM suspends; only a flagged and still underfunded agreement may be suspended.
    function oemSuspends() external thenTheCasesMoveOn {
        IAgreementRegistry.Agreement memory a = agreements.agreement(agreementId);
        IDepositEscrow.Balances memory b = escrow.balances(agreementId);
        bool funded = b.deposited >= b.required;
        bool ok = _as(oem, address(agreements), abi.encodeCall(IAgreementRegistry.suspend, (agreementId)));
        if (ok && (funded || !a.lateTopUp)) {
            attacksSucceeded++;
            lastAttack = "OEM suspended a funded or unflagged agreement";
        }
    }

    function oemResumes() external thenTheCasesMoveOn {
        _as(oem, address(agreements), abi.encodeCall(IAgreementRegistry.resume, (agreementId)));
    }

    // ================================================================= oracle / OEM: cases

    function openCase(uint256 pick, uint96 fee, bool byOem) external thenTheCasesMoveOn {
        fee = uint96(bound(fee, 0, LAB_FEE_CAP));
        bytes32 batchId = _batch(pick);
        ITracingCases.OpenRequest memory req = ITracingCases.OpenRequest({
            agreementId: agreementId,
            batchId: batchId,
            analysisHash: keccak256("root-cause analysis"),
            evidenceHash: keccak256("evidence"),
            lab: address(0),
            labFee: fee
        });
        bytes32 id = cases.nextCaseId(batchId);
        bytes memory data = abi.encodeCall(ITracingCases.openCase, (req, _headers[batchId]));
        if (_as(byOem ? oem : oracle, address(cases), data) && !_known[id]) {
            _known[id] = true;
            caseIds.push(id);
            if (cases.caseOf(id).lab != lab.addr) {
                attacksSucceeded++;
                lastAttack = "a case opened with a lab the agreement does not name";
            }
        }
    }

    // ================================================================= lab (honest) and anyone

    function advanceToLab(uint256 pick, uint256 who) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        _as(_actor(who), address(cases), abi.encodeCall(ITracingCases.advanceToLab, (id)));
    }

    function _verdict(bytes32 id, uint8 responsible, uint8 ncClass) internal view returns (ITracingCases.Verdict memory) {
        ITracingCases.CaseView memory c = cases.caseOf(id);
        return
            ITracingCases.Verdict({
                caseId: id,
                batchId: c.batchId,
                rootCauseCode: keccak256("RC-017"),
                responsibleParty: responsible,
                ncClass: ncClass,
                analysisHash: keccak256("lab analysis"),
                deadline: uint64(block.timestamp + 1 days),
                nonce: c.round
            });
    }

    function _labFields(uint256 code) internal pure returns (uint8 responsible, uint8 ncClass) {
        ncClass = uint8(code % 4);
        responsible = ncClass == 0 ? uint8(code % 3 == 0 ? 0 : 2) : 1;
    }

    function _recordLabVerdict(bytes32 id, uint8 responsible, uint8 ncClass) internal {
        labSigned[id] = true;
        labResponsible[id] = responsible;
        labClass[id] = ncClass;
    }

    /// @notice The case's lab signs a verdict; a relayer (the stranger) submits it.
    function labSignsVerdict(uint256 pick, uint256 code) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        (uint8 responsible, uint8 ncClass) = _labFields(code);
        ITracingCases.Verdict memory v = _verdict(id, responsible, ncClass);
        Actor memory signer = cases.caseOf(id).lab == lab2.addr ? lab2 : lab;
        bytes memory sig = _sign(signer, cases.verdictDigest(v));
        if (_as(stranger, address(cases), abi.encodeCall(ITracingCases.submitVerdict, (v, sig)))) {
            _recordLabVerdict(id, responsible, ncClass);
        }
    }

    /// @notice The three-signature path: the lab's verdict with the OEM's and the supplier's acceptances.
    function finalizeWithThreeSignatures(uint256 pick, uint256 code) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        (uint8 responsible, uint8 ncClass) = _labFields(code);
        ITracingCases.Verdict memory v = _verdict(id, responsible, ncClass);
        Actor memory signer = cases.caseOf(id).lab == lab2.addr ? lab2 : lab;
        bytes32 vh = cases.verdictDigest(v);
        uint64 dl = uint64(block.timestamp + 1 days);
        bytes32 ad = cases.acceptanceDigest(ITracingCases.Acceptance(id, vh, true, dl, v.nonce));
        bytes memory data = abi.encodeCall(
            ITracingCases.submitVerdictWithAcceptances,
            (v, _sign(signer, vh), dl, _sign(oem, ad), dl, _sign(supplier, ad))
        );
        if (_as(oracle, address(cases), data)) _recordLabVerdict(id, responsible, ncClass);
    }

    function partyAccepts(uint256 pick, bool byOem, bool signed) external thenTheCasesMoveOn {
        _answer(pick, byOem, signed, true);
    }

    /// @notice A party's signed dispute (an Acceptance with accept = false), relayed by anyone.
    function partyDisputesBySignature(uint256 pick, bool byOem) external thenTheCasesMoveOn {
        _answer(pick, byOem, true, false);
    }

    function _answer(uint256 pick, bool byOem, bool signed, bool accept) internal {
        bytes32 id = _case(pick);
        if (id == 0) return;
        ITracingCases.CaseView memory c = cases.caseOf(id);
        Actor memory party = byOem ? oem : supplier;
        if (!signed) {
            _as(party, address(cases), abi.encodeCall(ITracingCases.accept, (id, c.verdictHash)));
            return;
        }
        ITracingCases.Acceptance memory a = ITracingCases.Acceptance(
            id,
            c.verdictHash,
            accept,
            uint64(block.timestamp + 1 days),
            c.round
        );
        bytes memory sig = _sign(party, cases.acceptanceDigest(a));
        _as(stranger, address(cases), abi.encodeCall(ITracingCases.submitAcceptance, (a, party.addr, sig)));
    }

    function partyDisputes(uint256 pick, bool byOem) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        _as(byOem ? oem : supplier, address(cases), abi.encodeCall(ITracingCases.dispute, (id, keccak256("no"))));
    }

    function markLabDeadlineMissed(uint256 pick, uint256 who) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        _as(_actor(who), address(cases), abi.encodeCall(ITracingCases.markLabDeadlineMissed, (id)));
    }

    /// @notice OEM or supplier approves the second lab for a case waiting for its lab (needs both).
    function partyApprovesOtherLab(uint256 pick, bool byOem) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        _as(byOem ? oem : supplier, address(cases), abi.encodeCall(ITracingCases.approveLab, (id, lab2.addr)));
    }

    function labApprovesReopen(uint256 pick) external thenTheCasesMoveOn {
        bytes32 batchId = _batch(pick);
        _as(lab, address(cases), abi.encodeCall(ITracingCases.approveReopen, (batchId, keccak256("new evidence"))));
    }

    function labsClaimFees(bool second) external thenTheCasesMoveOn {
        Actor memory who = second ? lab2 : lab;
        uint256 amount = cases.labFeeClaimable(who.addr);
        if (_as(who, address(cases), abi.encodeCall(ITracingCases.claimLabFee, ()))) labFeesClaimed += amount;
    }

    function evaluate(uint32 quarter) external thenTheCasesMoveOn {
        quarter = uint32(bound(quarter, 0, 8));
        _as(stranger, address(agreements), abi.encodeCall(IAgreementRegistry.evaluate, (agreementId, quarter)));
    }

    function flagLateTopUp(uint256 who) external thenTheCasesMoveOn {
        _as(_actor(who), address(agreements), abi.encodeCall(IDepositEscrow.flagLateTopUp, (agreementId)));
    }

    function warp(uint256 choice) external thenTheCasesMoveOn {
        uint256[6] memory steps = [uint256(1 hours), 1 days, 6 days, 11 days, 15 days, 92 days];
        vm.warp(block.timestamp + steps[choice % 6]);
    }

    // ================================================================= arbiter (honest)

    function arbiterRules(uint256 pick, uint256 code) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        ITracingCases.CaseView memory c = cases.caseOf(id);
        // an honest ruling: uphold, lower the class, or find no supplier fault
        uint8 responsible;
        uint8 ncClass;
        uint256 kind = code % 3;
        if (kind == 0) (responsible, ncClass) = (c.responsibleParty, c.ncClass);
        else if (kind == 1 && c.responsibleParty == 1 && c.ncClass < 3) (responsible, ncClass) = (1, c.ncClass + 1);
        else (responsible, ncClass) = (2, 0);
        bytes memory data = abi.encodeCall(
            ITracingCases.arbitrate,
            (id, responsible, ncClass, keccak256("RC"), keccak256("ruling"))
        );
        _as(arbiter, address(cases), data);
    }

    // ================================================================= anyone settles

    function settle(uint256 pick, uint256 who) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        uint256 before = _deposited();
        uint256 debtBefore = escrow.balances(agreementId).debt;
        vm.prank(_actor(who).addr);
        (bool ok, ) = address(cases).call(abi.encodeCall(ITracingCases.settle, (id)));
        uint256 after_ = _deposited();
        if (!ok) {
            if (after_ != before) unexplainedDecreases++;
            return;
        }
        ITracingCases.CaseView memory c = cases.caseOf(id);
        settledCase[id] = true;
        settled++;
        bool isPenalty = c.responsibleParty == 1 && c.ncClass != 0;
        uint256 penalty = isPenalty ? penaltyOf(c.ncClass) : 0;
        if (isPenalty) {
            penalized++;
            due += penalty;
            if (!labSigned[id] || labResponsible[id] != 1) penaltiesWithoutLabVerdict++;
            else if (penalty > penaltyOf(labClass[id])) penaltiesAboveLabVerdict++;
        }
        // the deposit pays the penalty, the rest becomes debt: nothing else may leave
        uint256 debtAdded = escrow.balances(agreementId).debt - debtBefore;
        if (before - after_ + debtAdded != penalty) unexplainedDecreases++;
        bool verdictStands = labSigned[id] && c.responsibleParty == labResponsible[id] && c.ncClass == labClass[id];
        if (verdictStands) labFeesEarned += c.labFee;
    }

    // ================================================================= more honest housekeeping

    /// @notice OEM or supplier voids its unused agreement nonce (no effect on the active agreement).
    function partyCancelsNonce(bool byOem) external thenTheCasesMoveOn {
        _as(byOem ? oem : supplier, address(agreements), abi.encodeCall(IAgreementRegistry.cancelNonce, ()));
    }

    /// @notice The registrar renews the second lab's accreditation, approves or revokes the oracle as the
    ///         supplier's relayer, and (rarely) deactivates the second lab: effects on cases stay bounded.
    function registrarActs(uint256 dice) external thenTheCasesMoveOn {
        uint256 kind = dice % 4;
        bytes memory data;
        if (kind == 0) {
            data = abi.encodeCall(IPartyRegistry.setAccreditation, (lab2.addr, "D-PL-2", uint64(block.timestamp + 400 days)));
        } else if (kind == 1) {
            data = abi.encodeCall(IPartyRegistry.approveRelayer, (supplier.addr, oracle.addr));
        } else if (kind == 2) {
            data = abi.encodeCall(IPartyRegistry.revokeRelayer, (supplier.addr, oracle.addr));
        } else if (dice % 97 == 3) {
            data = abi.encodeCall(IPartyRegistry.deactivateParty, (lab2.addr));
        } else {
            return;
        }
        _as(registrar, address(parties), data);
    }

    /// @notice The OEM publishes a new version of its template (the active agreement keeps its version).
    function oemPublishesTemplate() external thenTheCasesMoveOn {
        IAgreementRegistry.Agreement memory a = agreements.agreement(agreementId);
        (IAgreementRegistry.TemplateTerms memory t, , ) = agreements.template(oem.addr, a.templateId, a.templateVersion);
        t.version = agreements.latestVersion(oem.addr, a.templateId) + 1;
        // a milder template must not change the running agreement's penalties (the invariants use version 1's)
        (t.penaltyCritical, t.penaltyMajor, t.penaltyMinor) = (10, 5, 1);
        if (_as(oem, address(agreements), abi.encodeCall(IAgreementRegistry.publishTemplate, (t)))) templates++;
    }

    /// @notice Someone other than an OEM publishes a template; the OEM activates an agreement with a
    ///         supplier signature it forged (its own key signs for the supplier).
    function attackTemplatesAndAgreements(uint256 who, uint256 salt) external thenTheCasesMoveOn {
        IAgreementRegistry.Agreement memory a = agreements.agreement(agreementId);
        (IAgreementRegistry.TemplateTerms memory t, , ) = agreements.template(oem.addr, a.templateId, a.templateVersion);
        t.templateId = keccak256(abi.encode("squat", salt));
        Actor memory publisher = _actor(who);
        if (publisher.addr != oem.addr) {
            bytes memory data = abi.encodeCall(IAgreementRegistry.publishTemplate, (t));
            _attack(publisher, address(agreements), data, "template published by a non-OEM");
        }
        IAgreementRegistry.AgreementTerms memory terms = IAgreementRegistry.AgreementTerms({
            agreementId: keccak256(abi.encode("forged agreement", salt)),
            templateId: a.templateId,
            templateVersion: a.templateVersion,
            oem: oem.addr,
            supplier: supplier.addr,
            lab: lab.addr,
            oemNonce: agreements.nonces(oem.addr),
            supplierNonce: agreements.nonces(supplier.addr),
            deadline: uint64(block.timestamp + 1 days)
        });
        bytes32 digest = agreements.agreementDigest(terms);
        Actor memory forger = publisher.addr == supplier.addr ? oem : publisher;
        bytes memory activation = abi.encodeCall(
            IAgreementRegistry.activate,
            (terms, _sign(oem, digest), _sign(forger, digest))
        );
        _attack(stranger, address(agreements), activation, "agreement activated with a forged supplier signature");
    }

    // ================================================================= a case driven along its honest path

    /// @notice Moves a random case one step further the way honest parties would (so that random sequences
    ///         reach verdicts, disputes, rulings and settlements, not only openings): open a case when none
    ///         is open, respond or let the deadline pass, the lab signs, accept / dispute / stay silent, the
    ///         arbiter rules or stays silent, settle.
    function driveCase(uint256 pick, uint256 code) external {
        _drive(pick, code);
    }

    function _drive(uint256 pick, uint256 code) internal {
        bytes32 id = _case(pick);
        ITracingCases.CaseState s = id == 0 ? ITracingCases.CaseState.Settled : cases.caseOf(id).state;
        if (s == ITracingCases.CaseState.Settled) {
            this.openCase(pick, uint96(code), code % 2 == 0);
        } else if (s == ITracingCases.CaseState.Opened) {
            if (code % 3 == 0) {
                vm.warp(cases.caseOf(id).deadline + 1);
                this.advanceToLab(pick, code);
            } else {
                this.supplierResponds(pick);
            }
        } else if (s == ITracingCases.CaseState.SupplierResponded || s == ITracingCases.CaseState.SupplierDefaulted) {
            if (code % 7 == 0) vm.warp(cases.caseOf(id).deadline + 11 days); // a silent lab
            if (code % 7 == 0) this.settle(pick, code);
            else if (code % 5 == 0) this.finalizeWithThreeSignatures(pick, code);
            else this.labSignsVerdict(pick, code);
        } else if (s == ITracingCases.CaseState.VerdictSubmitted) {
            if (code % 4 == 0) this.partyDisputes(pick, code % 8 == 0);
            else if (code % 4 == 1) vm.warp(cases.caseOf(id).deadline + 1);
            else this.partyAccepts(pick, code % 8 == 2, code % 3 == 0);
        } else if (s == ITracingCases.CaseState.Disputed) {
            if (code % 3 == 0) vm.warp(cases.caseOf(id).deadline + 1);
            else this.arbiterRules(pick, code);
        } else {
            this.settle(pick, code);
        }
    }

    // ================================================================= malicious parties and operators

    /// @notice Anyone but the case contract tries to move money out of the deposit directly.
    function attackCloseCase(uint256 who, uint8 code) external thenTheCasesMoveOn {
        code = uint8(bound(code, 1, 3));
        bytes32 id = caseIds.length == 0 ? keccak256("x") : _case(who);
        bytes memory data = abi.encodeCall(IAgreementRegistry.closeCase, (agreementId, id, code));
        _attack(_actor(who), address(agreements), data, "a role called closeCase");
        data = abi.encodeCall(IAgreementRegistry.openCaseFor, (agreementId, keccak256(abi.encode(who))));
        _attack(_actor(who), address(agreements), data, "a role called openCaseFor");
    }

    /// @notice Anyone but the supplier withdraws its deposit; the OEM claims more than it is owed.
    function attackWithdraw(uint256 who, uint256 amount) external thenTheCasesMoveOn {
        Actor memory a = _actor(who);
        if (a.addr == supplier.addr) a = stranger;
        amount = bound(amount, 1, 100_000);
        _attack(a, address(agreements), abi.encodeCall(IDepositEscrow.withdraw, (agreementId, amount)), "withdraw");
        if (a.addr != oem.addr) {
            _attack(a, address(agreements), abi.encodeCall(IDepositEscrow.claim, (agreementId)), "claim by non-OEM");
        }
    }

    /// @notice A verdict signed by anyone but the case's lab (OEM, supplier, the other lab, operators).
    function attackForgeVerdict(uint256 pick, uint256 who, uint256 code) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        Actor memory forger = _actor(who);
        if (forger.addr == cases.caseOf(id).lab) forger = oem;
        (uint8 responsible, uint8 ncClass) = _labFields(code | 1);
        ITracingCases.Verdict memory v = _verdict(id, responsible, ncClass);
        bytes memory sig = _sign(forger, cases.verdictDigest(v));
        _attack(stranger, address(cases), abi.encodeCall(ITracingCases.submitVerdict, (v, sig)), "forged verdict");
        // and acceptances signed by the wrong party in the three-signature path
        bytes32 vh = cases.verdictDigest(v);
        uint64 dl = uint64(block.timestamp + 1 days);
        bytes32 ad = cases.acceptanceDigest(ITracingCases.Acceptance(id, vh, true, dl, v.nonce));
        Actor memory caseLab = cases.caseOf(id).lab == lab2.addr ? lab2 : lab;
        bytes memory data = abi.encodeCall(
            ITracingCases.submitVerdictWithAcceptances,
            (v, _sign(caseLab, vh), dl, _sign(forger, ad), dl, _sign(forger, ad))
        );
        if (forger.addr != oem.addr && forger.addr != supplier.addr) {
            _attack(stranger, address(cases), data, "three-signature finalization without the parties");
        }
    }

    /// @notice The OEM or the oracle names another lab or a fee above the template's cap.
    function attackOpenCase(uint256 pick, uint96 fee, bool byOem) external thenTheCasesMoveOn {
        bytes32 batchId = _batch(pick);
        ITracingCases.OpenRequest memory req = ITracingCases.OpenRequest({
            agreementId: agreementId,
            batchId: batchId,
            analysisHash: keccak256("analysis"),
            evidenceHash: keccak256("evidence"),
            lab: lab2.addr,
            labFee: 0
        });
        Actor memory who = byOem ? oem : oracle;
        bytes memory data = abi.encodeCall(ITracingCases.openCase, (req, _headers[batchId]));
        _attack(who, address(cases), data, "case opened with a lab the agreement does not name");
        req.lab = address(0);
        req.labFee = uint96(bound(fee, uint256(LAB_FEE_CAP) + 1, type(uint96).max));
        data = abi.encodeCall(ITracingCases.openCase, (req, _headers[batchId]));
        _attack(who, address(cases), data, "lab fee above the template's cap");
        // the supplier, the lab, the registrar and the arbiter may not open cases at all
        req.labFee = 0;
        data = abi.encodeCall(ITracingCases.openCase, (req, _headers[batchId]));
        _attack(_actor(1 + (pick % 5)), address(cases), data, "case opened by a non-opener");
    }

    /// @notice The arbiter rules harsher than the lab; non-arbiters rule at all.
    function attackArbitrate(uint256 pick, uint256 who) external thenTheCasesMoveOn {
        bytes32 id = _case(pick);
        if (id == 0) return;
        ITracingCases.CaseView memory c = cases.caseOf(id);
        if (c.state == ITracingCases.CaseState.Disputed && !(c.responsibleParty == 1 && c.ncClass == 1)) {
            uint8 harsher = c.responsibleParty == 1 ? c.ncClass - 1 : 1;
            bytes memory data = abi.encodeCall(ITracingCases.arbitrate, (id, 1, harsher, bytes32("RC"), bytes32("r")));
            _attack(arbiter, address(cases), data, "arbiter ruled harsher than the lab");
        }
        Actor memory a = _actor(who);
        if (a.addr == arbiter.addr) a = admin; // the admin does not hold ARBITER_ROLE
        bytes memory d2 = abi.encodeCall(ITracingCases.arbitrate, (id, 2, 0, bytes32("RC"), bytes32("r")));
        _attack(a, address(cases), d2, "a non-arbiter ruled");
    }

    /// @notice The registrar (or anyone but the party) rotates a party's signer at once, or completes a
    ///         proposed change before its delay; the party cancels the proposal afterwards.
    function attackSigner(uint256 who, bool target) external thenTheCasesMoveOn {
        Actor memory victim = target ? supplier : lab;
        Actor memory a = _actor(who);
        if (a.addr == victim.addr) a = registrar;
        bytes memory data = abi.encodeCall(IPartyRegistry.setSigner, (victim.addr, a.addr));
        _attack(a, address(parties), data, "signer rotated by someone else");
        if (_as(registrar, address(parties), abi.encodeCall(IPartyRegistry.proposeSigner, (victim.addr, a.addr)))) {
            data = abi.encodeCall(IPartyRegistry.completeSignerChange, (victim.addr));
            _attack(a, address(parties), data, "signer change completed before its delay");
            _as(victim, address(parties), abi.encodeCall(IPartyRegistry.cancelSignerChange, (victim.addr)));
        }
    }

    /// @notice Operators try the admin-key attacks of the review: relink, unlink, self-grant, drain pools.
    function attackOperator(uint256 who, uint256 amount) external thenTheCasesMoveOn {
        Actor memory a = _actor(who);
        bytes memory data = abi.encodeCall(IAgreementRegistry.linkCases, (a.addr));
        _attack(a, address(agreements), data, "case contract relinked");
        data = abi.encodeWithSignature("linkAgreementRegistry(address)", address(0));
        _attack(a, address(anchors), data, "agreement enforcement switched off");
        if (a.addr != admin.addr) {
            data = abi.encodeCall(IRoles.grantRole, (keccak256("ARBITER_ROLE"), a.addr));
            _attack(a, address(cases), data, "role granted by a non-admin");
            data = abi.encodeWithSignature("beginDefaultAdminTransfer(address)", a.addr);
            _attack(a, address(cases), data, "admin hand-over started by a non-admin");
            _attack(a, address(parties), data, "admin hand-over started by a non-admin");
        }
        if (a.addr != oem.addr) {
            // another account's pool is not its own: withdrawLabFees takes from the caller's pool only
            uint256 pool = cases.labFeePool(oem.addr);
            vm.prank(a.addr);
            (bool ok, ) = address(cases).call(
                abi.encodeCall(ITracingCases.withdrawLabFees, (bound(amount, 1, 10_000)))
            );
            if (ok || cases.labFeePool(oem.addr) != pool) {
                attacksSucceeded++;
                lastAttack = "lab-fee pool drained by another account";
            }
        }
    }

    /// @notice The OEM and the supplier try to count or penalise without a case.
    function attackCounters(uint256 pick, uint256 who) external thenTheCasesMoveOn {
        bytes32 batchId = _batch(pick);
        Actor memory a = _actor(who);
        if (a.addr == oem.addr) a = supplier;
        bytes memory data = abi.encodeCall(
            IAgreementRegistry.recordInspection,
            (agreementId, batchId, _headers[batchId], true)
        );
        _attack(a, address(agreements), data, "inspection recorded by someone but the OEM");
        data = abi.encodeCall(IAgreementRegistry.recordDeadlineBreach, (agreementId, keccak256("x")));
        _attack(a, address(agreements), data, "deadline breach recorded outside the case contract");
        data = abi.encodeCall(IAgreementRegistry.recordCorrection, (agreementId, supplier.addr, batchId, batchId));
        _attack(a, address(agreements), data, "correction counted outside the anchor registry");
    }
}
