// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";
import {IRandomnessSource} from "./IRandomnessSource.sol";
import {IJobMarketTypes} from "./IJobMarketTypes.sol";
import {Terms} from "../libraries/JobParams.sol";

/// @title Meshwork job market: the lifecycle core
/// @notice Consumers escrow payment for GPU jobs; staked providers claim them (first come, or through a
/// signed offer), lock collateral, commit to a result and reveal it after the challenge window. Every
/// payout is credited to an internal balance and withdrawn by its owner (pull payments).
/// @dev A job's immutable parameters are not stored: its id is `keccak256(abi.encode(job))` and later
/// steps take the `Job` as calldata and check it against the id. Only one word per job lives in storage
/// (see `JobSlot`). Every state has a deadline and `enforceDeadline` lets anyone move a job past an
/// expired one, so nothing can be stuck.
interface IJobMarketCore is IJobMarketTypes {
    /* BALANCES */

    /// @notice Credits `amount` of `token` to `account`'s internal balance, pulled from the caller.
    function deposit(IERC20 token, address account, uint256 amount) external;

    /// @notice Sends `amount` of the caller's internal balance of `token` to `to`. Always available,
    /// also for tokens no longer allowlisted. Also sweeps the caller's fees due to the treasury.
    function withdraw(IERC20 token, uint256 amount, address to) external;

    /// @notice Several withdrawals to `to` in one transaction.
    function withdrawBatch(Withdrawal[] calldata withdrawals, address to) external;

    /// @notice Moves the fees `providers` owe on settled jobs to the audit pool (`auditPoolShareBps` of
    /// them) and the treasury accrual (the rest). Anyone may call.
    function sweepFees(IERC20 token, address[] calldata providers) external;

    /* JOBS */

    /// @notice Creates an open-market job and escrows `request.price`, from the caller's internal
    /// balance first and the rest by `transferFrom`.
    /// @param specURI Where the canonical spec (SHA-256 = specHash) can be fetched; emitted only.
    /// @return jobId keccak256(abi.encode(job)).
    function createJob(JobRequest calldata request, string calldata specURI) external returns (bytes32 jobId);

    /// @notice Creates a job from a provider's signed offer and assigns it in one call: escrows the price
    /// and locks the provider's collateral (its internal balance first, then `transferFrom`).
    /// @dev The offer is the EIP-712 signature of `Offer(bytes32 jobId,uint40 expiry)` by
    /// `request.targetProvider` (ERC-1271 for contract providers). The job id commits to the consumer,
    /// the whole request (its nonce included) and the terms, and a job can be created once: an offer
    /// cannot be replayed, on this or any other chain or market (the domain has both).
    function createJobWithOffer(
        JobRequest calldata request,
        string calldata specURI,
        uint40 expiry,
        bytes calldata signature
    ) external returns (bytes32 jobId);

    /// @notice The consumer withdraws an unclaimed job; the escrow goes back to its internal balance.
    function cancel(Job calldata job) external;

    /// @notice Claims an open job (or one whose claimant missed its commit deadline, which is timed out
    /// first) and locks collateral S = P * collateralBps / 10000.
    function claim(Job calldata job) external;

    /// @notice The claimant commits `keccak256(abi.encode(jobId, provider, resultRoot, salt))` with itself
    /// as `provider`. The job's word keeps the commitment bound to the claimant (see `JobRecord`), so it
    /// opens only with the claimant as `provider`.
    function commit(bytes32 jobId, bytes32 commitment) external;

    /// @notice After the challenge window, reveals the result and settles: P - fee + S to the provider's
    /// balance, the fee owed to the treasury. Anyone holding the reveal may call it. A job not drawn yet
    /// is drawn first; if it is drawn for audit this reverts with `JobMarketAuditRequired` and the caller
    /// must `draw` instead (never send the reveal of an audited job before the auditor has committed).
    /// @param provider The job's provider (its claimant): a commitment naming any other address does not
    /// open (`JobMarketCommitmentMismatch`), so probation cannot be skipped through another address.
    function settle(Job calldata job, address provider, bytes32 resultRoot, bytes32 salt, string calldata outputURI)
        external;

    /// @notice Moves a job past an expired deadline: unclaimed after `claimBy` -> refund; not committed
    /// within the compute window -> timeout (reopen or refund); not revealed in time -> missed reveal, or,
    /// for a job never drawn whose governed randomness source still answers Pending (or fails) or was
    /// replaced since the commit, a void (`JobVoided`: P back to the consumer, S to the provider, no
    /// slash); with the built-in source in the very block after the commit block, nothing yet
    /// (`JobMarketRandomnessNotReady`); an audit phase past its deadline -> the audit module's outcome
    /// for that phase (docs/protocol.md, the deadline table).
    function enforceDeadline(Job calldata job) external;

    /// @notice Draws whether a committed job is audited, once the randomness of the block after its commit
    /// block exists: probability 1 while the provider is in probation (fewer than `probationJobs` settled
    /// jobs in this token), else max(pMin, the consumer's request). If the randomness has expired the job
    /// counts as audited (fail-safe). Audited -> `Audited` (waiting for an auditor); otherwise
    /// `Challengeable` (the provider reveals with `settle` after the challenge window). `settle` draws by
    /// itself when nobody has; anyone may draw earlier. Not after the reveal window
    /// (`JobMarketDeadlinePassed`): `enforceDeadline` decides then.
    function draw(Job calldata job) external;

    /* GOVERNANCE (owner: the timelock) */

    function setPaymentToken(IERC20 token, bool allowed) external;
    function setParameter(Parameter parameter, uint256 value) external;
    /// @notice Sets the audit randomness source (0 = the built-in block-hash source).
    function setRandomnessSource(IRandomnessSource source) external;
    function withdrawTreasury(IERC20 token, address to, uint256 amount) external;

    /* VIEWS */

    function registry() external view returns (IProviderRegistry);
    function isPaymentToken(IERC20 token) external view returns (bool);
    function balanceOf(IERC20 token, address account) external view returns (uint256);
    /// @notice Fees a provider owes on its settled jobs, not yet swept to the treasury.
    function feesDue(IERC20 token, address provider) external view returns (uint256);
    /// @notice Jobs a provider has settled in `token` (the audit layer's probation and reputation use it).
    function completedJobs(IERC20 token, address provider) external view returns (uint256);
    function treasuryAccrual(IERC20 token) external view returns (uint256);
    function parameter(Parameter parameter) external view returns (uint256);
    function config() external view returns (MarketConfig memory);
    function verificationConfig() external view returns (VerificationConfig memory);
    function randomnessSource() external view returns (IRandomnessSource);
    /// @notice The address of the audit module the market forwards `IJobAudits` calls to.
    function auditModule() external view returns (address);
    /// @notice Bounds of a parameter given the others' current values (min <= max compute window,
    /// fraud shares summing to at most 100%). The economic bound is checked separately.
    function parameterBounds(Parameter parameter) external view returns (uint256 min, uint256 max);
    /// @notice The terms a job created now would get.
    function currentTerms() external view returns (Terms);
    function jobRecord(bytes32 jobId) external view returns (JobRecord memory);
    function jobState(bytes32 jobId) external view returns (JobState);
    /// @notice The commitment a provider posts: binds the job, the provider, the result root and a salt.
    function commitmentHash(bytes32 jobId, address provider, bytes32 resultRoot, bytes32 salt)
        external
        pure
        returns (bytes32);
    function hashJob(Job calldata job) external pure returns (bytes32);
    /// @notice The EIP-712 digest a provider signs to offer to run job `jobId` until `expiry`.
    function offerDigest(bytes32 jobId, uint40 expiry) external view returns (bytes32);
    /// @notice The collateral S a claimant of `job` locks.
    function collateralOf(Job calldata job) external pure returns (uint256);
}
