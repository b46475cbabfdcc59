// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IDepositEscrow
/// @notice Supplier quality deposits held in one ERC-20 settlement token, per agreement.
/// @dev required(agreement) = depositBase * ratioBps / 10_000 (0 once a terminated agreement's wind-down
///      ended). Money only moves by pull: the supplier withdraws its excess, the OEM claims its claimable
///      balance (penalties). Invariant: token.balanceOf(this) >= sum over agreements of
///      (deposited + claimable), with equality for a standard ERC-20.
interface IDepositEscrow {
    /// @notice Balances of one agreement as read back.
    /// @param deposited Supplier's deposit held in escrow.
    /// @param claimable Penalties owed to the OEM, not yet claimed.
    /// @param required Deposit the agreement currently requires.
    /// @param bound Part of the required deposit held for open tracing cases (their maximum penalties).
    /// @param debt Penalties owed beyond the deposit (paid to the OEM first from the next deposits).
    struct Balances {
        uint128 deposited;
        uint128 claimable;
        uint256 required;
        uint128 bound;
        uint128 debt;
    }

    /// @notice `amount` is zero.
    error ZeroAmount(bytes32 agreementId);
    /// @notice `amount` exceeds the withdrawable excess `excess` (deposit above the required amount).
    error ExceedsExcess(bytes32 agreementId, uint256 amount, uint256 excess);
    /// @notice The OEM of `agreementId` has nothing to claim.
    error NothingToClaim(bytes32 agreementId);
    /// @notice The deposit would exceed the 2^128-1 the escrow accounts in.
    error DepositOverflow(bytes32 agreementId, uint256 deposited, uint256 amount);
    /// @notice The top-up of `agreementId` is not late: its deadline is `deadline` (0 = none), now `at`.
    error TopUpNotLate(bytes32 agreementId, uint64 deadline, uint64 at);
    /// @notice `agreementId` holds `deposited` >= `required`: nothing to flag.
    error NotUnderfunded(bytes32 agreementId, uint256 deposited, uint256 required);
    /// @notice `agreementId` is flagged already.
    error AlreadyFlagged(bytes32 agreementId);
    /// @notice PPM `ppm` is not above the template target `target`.

    /// @notice `from` deposited `amount` (as received) for `agreementId`; the deposit is now `deposited`.
    ///         `topUpCleared` is true if this funded the required amount and ended a pending top-up.
    event Deposited(
        bytes32 indexed agreementId,
        address indexed from,
        uint256 amount,
        uint256 deposited,
        uint256 required,
        bool topUpCleared
    );
    /// @notice The supplier withdrew `amount` of its excess to `to`; the deposit is now `deposited`.
    event Withdrawn(bytes32 indexed agreementId, address indexed to, uint256 amount, uint256 deposited);
    /// @notice The OEM claimed `amount` of penalties to `to`.
    event Claimed(bytes32 indexed agreementId, address indexed to, uint256 amount);
    /// @notice `amount` of a later deposit paid `agreementId`'s debt to the OEM's claimable balance.
    event DebtPaid(bytes32 indexed agreementId, uint256 amount, uint256 debt);
    /// @notice The funding state of `agreementId` changed: `topUpDeadline` (0 = none) and `lateTopUp` as
    ///         recomputed from `deposited` and `required` after a change of deposit, ratio or bound amount.
    event FundingUpdated(
        bytes32 indexed agreementId,
        uint256 deposited,
        uint256 required,
        uint64 topUpDeadline,
        bool lateTopUp
    );
    /// @notice `agreementId` missed its top-up `deadline` holding `deposited` < `required`; flagged by `by`.
    event LateTopUpFlagged(
        bytes32 indexed agreementId,
        uint64 deadline,
        uint256 deposited,
        uint256 required,
        address by
    );

    /// @notice Deposits `amount` tokens (pulled with transferFrom from the caller) for `agreementId`.
    /// @dev Anyone may fund an agreement; usually the supplier. Credits what the escrow actually received.
    ///      Funding the required amount ends a pending top-up and clears a late flag. Emits {Deposited}.
    function deposit(bytes32 agreementId, uint256 amount) external;

    /// @notice Supplier only: withdraws `amount` of the excess above the required deposit to the caller.
    /// @dev Emits {Withdrawn}.
    function withdraw(bytes32 agreementId, uint256 amount) external;

    /// @notice OEM only: transfers the whole claimable balance of `agreementId` to the caller.
    /// @dev Emits {Claimed}.
    function claim(bytes32 agreementId) external;

    /// @notice Anyone: flags `agreementId` when its top-up deadline passed and it is still under-funded.
    /// @dev Emits {LateTopUpFlagged}. The OEM may then suspend it.
    function flagLateTopUp(bytes32 agreementId) external;

    /// @notice Deposit, claimable and required amounts of `agreementId`.
    function balances(bytes32 agreementId) external view returns (Balances memory);

    /// @notice Deposit currently required for `agreementId`.
    function requiredDeposit(bytes32 agreementId) external view returns (uint256);

    /// @notice The ERC-20 settlement token.
    function token() external view returns (address);
}
