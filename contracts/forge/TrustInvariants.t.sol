// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test, console2} from "forge-std/Test.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IAgreementRegistry} from "../interfaces/IAgreementRegistry.sol";
import {IBatchAnchorRegistry} from "../interfaces/IBatchAnchorRegistry.sol";
import {IDepositEscrow} from "../interfaces/IDepositEscrow.sol";
import {IPartyRegistry} from "../interfaces/IPartyRegistry.sol";
import {ITracingCases} from "../interfaces/ITracingCases.sol";
import {IMintable, IRoles, TrustHandler} from "./TrustHandler.sol";

/// @title TrustInvariantsTest
/// @notice Foundry invariant suite of docs/trust-model.md ("funds move only per the trust model") on the
///         production bytecode: the checked-in artifacts (contracts/artifacts/*.json, byte-identical to the
///         production build) are deployed as `qcn chain deploy` does (split operator keys, case contract linked
///         once), with one active agreement (OEM, supplier, lab), a funded deposit and lab-fee pool and
///         anchored batches. {TrustHandler} then lets every role act, honest and malicious, in random order.
/// @dev `make test` runs the bounded profile `ci`; `make bench` the default profile (runs x depth calls,
///      recorded in bench/results/contracts.json by scripts/bench_contracts.py through scripts/forge_invariants.py).
contract TrustInvariantsTest is Test {
    bytes32 internal constant AGREEMENT_ID = keccak256("forge/agreement/1");
    bytes32 internal constant TEMPLATE_ID = keccak256("forge/template");
    uint256 internal constant DEPOSIT = 100_000; // depositBase 1,000,000 x 10 %
    uint256 internal constant POOL = 10_000;

    TrustHandler internal handler;
    IAgreementRegistry internal agreements;
    IDepositEscrow internal escrow;
    ITracingCases internal cases;
    IPartyRegistry internal parties;
    IERC20 internal token;
    address internal oemAddr;
    address internal labAddr;
    address internal lab2Addr;

    function _actor(string memory name) internal returns (TrustHandler.Actor memory a) {
        (a.addr, a.key) = makeAddrAndKey(name);
    }

    function _template() internal pure returns (IAgreementRegistry.TemplateTerms memory t) {
        IAgreementRegistry.Tier[] memory tiers = new IAgreementRegistry.Tier[](5);
        tiers[0] = IAgreementRegistry.Tier(0, 3_000);
        tiers[1] = IAgreementRegistry.Tier(50, 2_000);
        tiers[2] = IAgreementRegistry.Tier(70, 1_500);
        tiers[3] = IAgreementRegistry.Tier(85, 1_000);
        tiers[4] = IAgreementRegistry.Tier(95, 500);
        t.templateId = TEMPLATE_ID;
        t.version = 1;
        t.documentHash = keccak256("forge/template/doc");
        t.depositBase = 1_000_000;
        t.initialRatioBps = 1_000;
        t.minRatioBps = 500;
        t.maxRatioBps = 3_000;
        t.maxStepBps = 500;
        t.tiers = tiers;
        t.penaltyCritical = 50_000;
        t.penaltyMajor = 20_000;
        t.penaltyMinor = 5_000;
        t.penaltyPerPpm = 1;
        t.ppmTarget = 100;
        t.supplierResponseSeconds = 5 days;
        t.labVerdictSeconds = 10 days;
        t.disputeWindowSeconds = 7 days;
        t.topUpGraceSeconds = 14 days;
        t.formulaVersion = 1;
        t.labFeeCap = 5_000;
    }

    function _sign(TrustHandler.Actor memory who, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(who.key, digest);
        return abi.encodePacked(r, s, v);
    }

    function setUp() public {
        vm.warp(1_800_000_000);
        TrustHandler.Actor[9] memory actors = [
            _actor("oem"),
            _actor("supplier"),
            _actor("lab"),
            _actor("lab2"),
            _actor("admin"),
            _actor("registrar"),
            _actor("arbiter"),
            _actor("oracle"),
            _actor("stranger")
        ];
        (TrustHandler.Actor memory oem, TrustHandler.Actor memory supplier) = (actors[0], actors[1]);
        (address admin, address registrar) = (actors[4].addr, actors[5].addr);
        (oemAddr, labAddr, lab2Addr) = (oem.addr, actors[2].addr, actors[3].addr);

        // the production contracts, deployed from their checked-in artifacts
        token = IERC20(deployCode("contracts/artifacts/TestToken.json"));
        vm.startPrank(admin);
        address registry = deployCode("contracts/artifacts/ConsortiumRegistry.json", abi.encode(admin, registrar));
        agreements = IAgreementRegistry(
            deployCode("contracts/artifacts/AgreementRegistry.json", abi.encode(admin, registry, token))
        );
        escrow = IDepositEscrow(address(agreements));
        cases = ITracingCases(
            deployCode(
                "contracts/artifacts/TracingCases.json",
                abi.encode(admin, registry, registry, agreements, agreements)
            )
        );
        agreements.linkCases(address(cases));
        (bool ok, ) = registry.call(abi.encodeWithSignature("linkAgreementRegistry(address)", address(agreements)));
        require(ok, "link agreement registry");
        IRoles(address(cases)).grantRole(keccak256("ORACLE_ROLE"), actors[7].addr);
        IRoles(address(cases)).grantRole(keccak256("ARBITER_ROLE"), actors[6].addr);
        vm.stopPrank();
        parties = IPartyRegistry(registry);

        vm.startPrank(registrar);
        parties.registerParty(oem.addr, IPartyRegistry.PartyKind.Oem, "OEM", oem.addr, 0, 0);
        parties.registerParty(supplier.addr, IPartyRegistry.PartyKind.Supplier, "Supplier", supplier.addr, 0, 0);
        uint64 expiry = uint64(block.timestamp + 3 * 365 days);
        parties.registerParty(actors[2].addr, IPartyRegistry.PartyKind.Lab, "Lab", actors[2].addr, "D-PL-1", expiry);
        parties.registerParty(actors[3].addr, IPartyRegistry.PartyKind.Lab, "Lab 2", actors[3].addr, "D-PL-2", expiry);
        vm.stopPrank();

        vm.prank(oem.addr);
        agreements.publishTemplate(_template());
        IAgreementRegistry.AgreementTerms memory terms = IAgreementRegistry.AgreementTerms({
            agreementId: AGREEMENT_ID,
            templateId: TEMPLATE_ID,
            templateVersion: 1,
            oem: oem.addr,
            supplier: supplier.addr,
            lab: actors[2].addr,
            oemNonce: 0,
            supplierNonce: 0,
            deadline: uint64(block.timestamp + 1 days)
        });
        bytes32 digest = agreements.agreementDigest(terms);
        agreements.activate(terms, _sign(oem, digest), _sign(supplier, digest));

        IMintable(address(token)).mint(supplier.addr, DEPOSIT);
        vm.startPrank(supplier.addr);
        token.approve(address(agreements), DEPOSIT);
        escrow.deposit(AGREEMENT_ID, DEPOSIT);
        vm.stopPrank();
        IMintable(address(token)).mint(oem.addr, POOL);
        vm.startPrank(oem.addr);
        token.approve(address(cases), POOL);
        cases.fundLabFees(oem.addr, POOL);
        vm.stopPrank();

        handler = new TrustHandler(
            agreements,
            cases,
            parties,
            IBatchAnchorRegistry(registry),
            token,
            AGREEMENT_ID,
            actors
        );
        targetContract(address(handler));
        excludeSender(address(0));
    }

    /// @notice The setup is what the suite claims: production bytecode, one funded agreement, 3 batches.
    function test_setupDeploysTheProductionContracts() public view {
        assertEq(_masked(address(agreements).code, "AgreementRegistry"), _masked(_runtime("AgreementRegistry"), ""));
        assertEq(_masked(address(cases).code, "TracingCases"), _masked(_runtime("TracingCases"), ""));
        assertEq(escrow.balances(AGREEMENT_ID).deposited, DEPOSIT);
        assertEq(cases.labFeePool(oemAddr), POOL);
        assertEq(uint8(agreements.agreement(AGREEMENT_ID).state), uint8(IAgreementRegistry.AgreementState.Active));
        assertTrue(IBatchAnchorRegistry(address(parties)).isAnchored(handler.batchIds(2)));
    }

    function _runtime(string memory name) internal view returns (bytes memory) {
        string memory json = vm.readFile(string.concat("contracts/artifacts/", name, ".json"));
        return vm.parseJsonBytes(json, ".deployedBytecode");
    }

    /// @dev `code` with the immutables the constructor filled in zeroed (ranges from `name`'s artifact; the
    ///      artifact's own runtime code has zeros there), so deployed and checked-in code compare equal.
    function _masked(bytes memory code, string memory name) internal view returns (bytes32) {
        if (bytes(name).length != 0) {
            string memory json = vm.readFile(string.concat("contracts/artifacts/", name, ".json"));
            for (uint256 i = 0; vm.keyExistsJson(json, string.concat(".immutableRanges[", vm.toString(i), "]")); i++) {
                uint256[] memory r = vm.parseJsonUintArray(json, string.concat(".immutableRanges[", vm.toString(i), "]"));
                for (uint256 j = r[0]; j < r[0] + r[1]; j++) code[j] = 0;
            }
        }
        return keccak256(code);
    }

    function _openFees() internal view returns (uint256 reserved, uint256 open) {
        uint256 n = handler.caseCount();
        for (uint256 i = 0; i < n; i++) {
            ITracingCases.CaseView memory c = cases.caseOf(handler.caseIds(i));
            if (c.state != ITracingCases.CaseState.Settled) {
                reserved += c.labFee;
                open++;
            }
        }
    }

    // ================================================================= invariants

    /// @notice Funds move only per the trust model: every check below after every call of every run (one
    ///         campaign: forge runs each invariant function as its own campaign).
    function invariant_fundsMoveOnlyPerTheTrustModel() public view {
        _checkEscrowHoldsDepositPlusClaimable();
        _checkCaseContractHoldsPoolFeesAndReserved();
        _checkBoundIsCriticalPenaltyPerOpenCase();
        _checkOemGetsOnlySettledPenalties();
        _checkDepositDecreasesOnlyPerTrustModel();
        _checkPenaltiesCarryTheLabsVerdict();
        _checkLabFeesOnlyForStandingVerdicts();
        _checkNoAttackSucceeds();
    }

    /// @notice Escrow solvency: the registry holds exactly the deposit plus the OEM's claimable penalties.
    function _checkEscrowHoldsDepositPlusClaimable() internal view {
        IDepositEscrow.Balances memory b = escrow.balances(AGREEMENT_ID);
        assertEq(token.balanceOf(address(agreements)), uint256(b.deposited) + b.claimable);
    }

    /// @notice The case contract holds exactly the OEM's pool, the labs' earned fees and the open cases' fees.
    function _checkCaseContractHoldsPoolFeesAndReserved() internal view {
        (uint256 reserved, ) = _openFees();
        uint256 earned = cases.labFeeClaimable(labAddr) + cases.labFeeClaimable(lab2Addr);
        assertEq(
            token.balanceOf(address(cases)),
            cases.labFeePool(oemAddr) + earned + reserved
        );
    }

    /// @notice While cases are open, the critical penalty of each stays bound (the supplier cannot escape).
    function _checkBoundIsCriticalPenaltyPerOpenCase() internal view {
        (, uint256 open) = _openFees();
        assertEq(escrow.balances(AGREEMENT_ID).bound, open * handler.PENALTY_CRITICAL());
    }

    /// @notice The OEM got (claimable + claimed + debt) exactly the penalties of settled, penalised cases.
    function _checkOemGetsOnlySettledPenalties() internal view {
        IDepositEscrow.Balances memory b = escrow.balances(AGREEMENT_ID);
        assertEq(uint256(b.claimable) + handler.claimed() + b.debt, handler.due());
    }

    /// @notice The deposit went down only by the supplier's withdrawals and settled lab-backed penalties.
    function _checkDepositDecreasesOnlyPerTrustModel() internal view {
        assertEq(handler.unexplainedDecreases(), 0);
    }

    /// @notice Every penalty carried a supplier-fault verdict signed by the case's lab and was never harsher.
    function _checkPenaltiesCarryTheLabsVerdict() internal view {
        assertEq(handler.penaltiesWithoutLabVerdict(), 0);
        assertEq(handler.penaltiesAboveLabVerdict(), 0);
    }

    /// @notice Labs earned fees only for settled cases whose verdict stands.
    function _checkLabFeesOnlyForStandingVerdicts() internal view {
        uint256 earned = cases.labFeeClaimable(labAddr) + cases.labFeeClaimable(lab2Addr);
        assertEq(earned + handler.labFeesClaimed(), handler.labFeesEarned());
    }

    function afterInvariant() public view {
        // what the run reached (shown with -vv): cases opened, settled, penalised; money due and claimed
        console2.log("cases %s settled %s penalised %s", handler.caseCount(), handler.settled(), handler.penalized());
        console2.log("due %s claimed %s lab fees earned %s", handler.due(), handler.claimed(), handler.labFeesEarned());
        console2.log("batches %s new template versions %s", handler.batchCount(), handler.templates());
    }

    /// @notice No malicious action of any role went through.
    function _checkNoAttackSucceeds() internal view {
        assertEq(handler.attacksSucceeded(), 0, handler.lastAttack());
    }
}
