// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";
import {Requirements, Terms, Verification} from "../libraries/JobParams.sol";

/// @title Meshwork job market
/// @notice Consumers escrow payment for GPU jobs; staked providers claim them (first come, or through a
/// signed offer), lock collateral, commit to a result and reveal it after the challenge window. Every
/// payout is credited to an internal balance and withdrawn by its owner (pull payments).
/// @dev A job's immutable parameters are not stored: its id is `keccak256(abi.encode(job))` and later
/// steps take the `Job` as calldata and check it against the id. Only one word per job lives in storage
/// (see `JobSlot`). Every state has a deadline and `enforceDeadline` lets anyone move a job past an
/// expired one, so nothing can be stuck.
interface IJobMarket {
    /* TYPES */

    /// @notice The lifecycle of PROTOCOL.md §6. `Audited`, `Revealing`, `Challengeable`, `Disputed` and
    /// `Escalated` belong to the verification layer (audits, disputes, challenges).
    enum JobState {
        None,
        Open,
        Claimed,
        Committed,
        Audited,
        Revealing,
        Challengeable,
        Disputed,
        Escalated,
        Settled,
        Slashed,
        Refunded,
        Cancelled
    }

    /// @notice What a consumer asks for.
    /// @param paymentToken Allowlisted ERC20 the job is paid, collateralised and slashed in.
    /// @param price Total price P of the job in `paymentToken` units.
    /// @param workUnits Size of the job in the unit providers price by; `price >= postedPrice * workUnits`.
    /// @param specHash SHA-256 of the canonical JSON job spec.
    /// @param requirements What the provider's profile must satisfy (packed, see `Requirements`).
    /// @param verification Chunking and audit request (packed, see `Verification`).
    /// @param claimBy Latest time a provider may claim.
    /// @param computeWindow Seconds a claimant has to commit its result.
    /// @param targetProvider Only this provider may claim (0 = open market; the signer for offers).
    /// @param nonce Consumer-chosen number that makes otherwise identical jobs distinct.
    struct JobRequest {
        IERC20 paymentToken;
        uint96 price;
        uint64 workUnits;
        bytes32 specHash;
        Requirements requirements;
        Verification verification;
        uint40 claimBy;
        uint32 computeWindow;
        address targetProvider;
        uint64 nonce;
    }

    /// @notice A job as hashed into its id: the request, its consumer and the terms in force at creation.
    struct Job {
        address consumer;
        JobRequest request;
        Terms terms;
    }

    /// @notice A job's mutable state as stored (one word, see `JobSlot`), unpacked.
    /// @param provider The claimant (0 while open and in final states).
    /// @param providerId The claimant's registry id.
    /// @param commitDeadline Claimed: the time by which it must commit.
    /// @param committedAt Committed: when it committed; the challenge window runs from here.
    /// @param commitBlock Committed: the block of the commit (audit randomness comes after it).
    /// @param commitment Committed: the stored low 152 bits of the commitment.
    struct JobRecord {
        JobState state;
        address provider;
        uint32 providerId;
        uint256 commitDeadline;
        uint256 committedAt;
        uint256 commitBlock;
        uint256 commitment;
    }

    /// @notice One withdrawal of a batch.
    struct Withdrawal {
        IERC20 token;
        uint256 amount;
    }

    /// @notice Governed parameters of the market (see `MarketConfig` for their meaning).
    enum Parameter {
        FeeBps,
        CollateralBps,
        TimeoutSlashBps,
        ChallengeWindow,
        RevealWindow,
        MinComputeWindow,
        MaxComputeWindow,
        FraudStakeSlashBps,
        FraudConsumerBps,
        FraudAuditorBps
    }

    /// @notice All governed market parameters, one storage slot.
    /// @param feeBps Protocol fee on P (<= 10%).
    /// @param collateralBps Provider collateral S = P * collateralBps / 10000.
    /// @param timeoutSlashBps Share of S the consumer gets when the claimant misses its commit deadline.
    /// @param challengeWindow Seconds after a commit during which the result can be challenged.
    /// @param revealWindow Seconds after the challenge window for the reveal.
    /// @param minComputeWindow Lower bound on a job's compute window (`maxComputeWindow` the upper).
    /// @param maxComputeWindow Upper bound on a job's compute window.
    /// @param fraudStakeSlashBps Share of MESH stake (active + unbonding) slashed for fraud.
    /// @param fraudConsumerBps Consumer's share of a forfeited S (`fraudAuditorBps` the honest auditors');
    /// the treasury gets the rest. With no auditor involved (a missed reveal) the auditors' share goes to
    /// the consumer.
    /// @param fraudAuditorBps Honest auditors' share of a forfeited S.
    struct MarketConfig {
        uint16 feeBps;
        uint16 collateralBps;
        uint16 timeoutSlashBps;
        uint32 challengeWindow;
        uint32 revealWindow;
        uint32 minComputeWindow;
        uint32 maxComputeWindow;
        uint16 fraudStakeSlashBps;
        uint16 fraudConsumerBps;
        uint16 fraudAuditorBps;
    }

    /* EVENTS */

    /// @notice Everything a worker needs to claim the job and rebuild its id is in `job`.
    event JobCreated(bytes32 indexed jobId, address indexed consumer, Job job, string specURI);
    /// @notice Collateral and commit deadline follow from the job: S = P * collateralBps / 10000, the
    /// deadline is the block time plus `computeWindow`.
    event JobClaimed(bytes32 indexed jobId, address indexed provider);
    event JobCommitted(bytes32 indexed jobId, address indexed provider, bytes32 commitment);
    /// @notice `providerPayout` (P - fee) plus the collateral went to the provider's balance, `fee` is
    /// owed to the treasury.
    event JobSettled(
        bytes32 indexed jobId, address indexed provider, bytes32 resultRoot, string outputURI, uint256 providerPayout, uint256 fee
    );
    /// @notice The claimant missed its commit deadline: `toConsumer` of its collateral went to the consumer.
    event JobTimedOut(bytes32 indexed jobId, address indexed provider, uint256 toConsumer, uint256 returnedToProvider);
    /// @notice A timed-out job went back to the open market.
    event JobReopened(bytes32 indexed jobId);
    /// @notice The consumer was refunded `amount` (job expired unclaimed or could not be reopened).
    event JobRefunded(bytes32 indexed jobId, address indexed consumer, uint256 amount);
    event JobCancelled(bytes32 indexed jobId, address indexed consumer, uint256 refund);
    /// @notice The provider never revealed: treated as fraud (collateral forfeited, stake slashed, jailed).
    event JobRevealMissed(
        bytes32 indexed jobId, address indexed provider, uint256 toConsumer, uint256 toTreasury, uint256 stakeSlashed
    );
    event Deposited(IERC20 indexed token, address indexed account, address indexed payer, uint256 amount);
    event Withdrawn(IERC20 indexed token, address indexed account, address indexed to, uint256 amount);
    /// @notice Fees a provider owed on settled jobs moved to the treasury accrual.
    event FeesSwept(IERC20 indexed token, address indexed provider, uint256 amount);
    event PaymentTokenSet(IERC20 indexed token, bool allowed);
    event ParameterSet(Parameter indexed parameter, uint256 oldValue, uint256 newValue);
    event TreasuryWithdrawn(IERC20 indexed token, address indexed to, uint256 amount);

    /* ERRORS */

    error JobMarketTokenNotAllowed(IERC20 token);
    error JobMarketZeroAmount();
    error JobMarketZeroAddress();
    error JobMarketInsufficientBalance(IERC20 token, address account, uint256 have, uint256 need);
    error JobMarketJobExists(bytes32 jobId);
    /// @notice The `Job` passed (or the id) is not an existing job.
    error JobMarketUnknownJob(bytes32 jobId);
    error JobMarketUnexpectedState(bytes32 jobId, JobState current, JobState expected);
    error JobMarketNotConsumer(bytes32 jobId, address caller);
    error JobMarketNotProvider(bytes32 jobId, address caller);
    /// @notice A request field is invalid; `field` names it.
    error JobMarketInvalidRequest(string field);
    error JobMarketComputeWindowOutOfBounds(uint256 computeWindow, uint256 min, uint256 max);
    error JobMarketClaimByPassed(bytes32 jobId, uint256 claimBy);
    error JobMarketDeadlinePassed(bytes32 jobId, uint256 deadline);
    error JobMarketDeadlineNotReached(bytes32 jobId, uint256 deadline);
    /// @notice `enforceDeadline` on a job whose state has no deadline to enforce.
    error JobMarketNothingToEnforce(bytes32 jobId, JobState state);
    error JobMarketIneligible(bytes32 jobId, address provider, IProviderRegistry.Eligibility reason);
    error JobMarketZeroCommitment(bytes32 jobId);
    error JobMarketCommitmentMismatch(bytes32 jobId);
    error JobMarketOfferExpired(bytes32 jobId, uint256 expiry);
    error JobMarketInvalidSignature(bytes32 jobId, address signer);
    error JobMarketParameterOutOfBounds(Parameter parameter, uint256 value, uint256 min, uint256 max);
    error JobMarketInsufficientTreasury(IERC20 token, uint256 have, uint256 need);

    /* BALANCES */

    /// @notice Credits `amount` of `token` to `account`'s internal balance, pulled from the caller.
    function deposit(IERC20 token, address account, uint256 amount) external;

    /// @notice Sends `amount` of the caller's internal balance of `token` to `to`. Always available,
    /// also for tokens no longer allowlisted. Also sweeps the caller's fees due to the treasury.
    function withdraw(IERC20 token, uint256 amount, address to) external;

    /// @notice Several withdrawals to `to` in one transaction.
    function withdrawBatch(Withdrawal[] calldata withdrawals, address to) external;

    /// @notice Moves the fees `providers` owe on settled jobs to the treasury accrual. Anyone may call.
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

    /// @notice The claimant commits `keccak256(abi.encode(jobId, provider, resultRoot, salt))`.
    function commit(bytes32 jobId, bytes32 commitment) external;

    /// @notice After the challenge window, reveals the result and settles: P - fee + S to the provider's
    /// balance, the fee owed to the treasury. Anyone holding the reveal may call it.
    /// @param provider The job's provider; the commitment binds it, so no other address can match.
    function settle(Job calldata job, address provider, bytes32 resultRoot, bytes32 salt, string calldata outputURI)
        external;

    /// @notice Moves a job past an expired deadline: unclaimed after `claimBy` -> refund; not committed
    /// within the compute window -> timeout (reopen or refund); not revealed in time -> missed reveal.
    function enforceDeadline(Job calldata job) external;

    /* GOVERNANCE (owner: the timelock) */

    function setPaymentToken(IERC20 token, bool allowed) external;
    function setParameter(Parameter parameter, uint256 value) external;
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
    /// @notice Bounds of a parameter given the others' current values (min <= max compute window,
    /// fraud shares summing to at most 100%).
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
