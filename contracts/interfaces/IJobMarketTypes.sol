// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IProviderRegistry} from "./IProviderRegistry.sol";
import {Requirements, Terms, Verification} from "../libraries/JobParams.sol";

/// @title Types, events and errors of the Meshwork job market
/// @notice Shared by its two halves, the lifecycle core (`IJobMarketCore`) and the verification layer
/// (`IJobAudits`); `IJobMarket` is the whole market as users call it.
interface IJobMarketTypes {
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
    /// @param commitment Committed: the stored low 152 bits of keccak256(abi.encode(commitment, provider)),
    /// the commitment bound to its claimant.
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

    /// @notice Governed parameters of the market (see `MarketConfig` and `VerificationConfig`).
    enum Parameter {
        FeeBps,
        CollateralBps,
        TimeoutSlashBps,
        ChallengeWindow,
        RevealWindow,
        PMinBps,
        ProbationJobs,
        AuditPoolShareBps,
        AuditRewardBps,
        AuditCollateralBps,
        MinComputeWindow,
        MaxComputeWindow,
        FraudStakeSlashBps,
        FraudConsumerBps,
        FraudAuditorBps,
        ChallengeBondBps,
        AssumedCollusionBps,
        AuditClaimWindow,
        AuditRevealWindow,
        EscalationWindow,
        MaxPauseDuration
    }

    /// @notice The governed parameters a job's `Terms` snapshot, plus the compute-window bounds: one
    /// storage word, the only one `createJob` reads. See `Terms` for the meaning of the fields it copies.
    /// @param minComputeWindow Lower bound on a job's compute window (`maxComputeWindow` the upper).
    /// @param flags Bit 0: a randomness source is set (`setRandomnessSource`), so jobs created now draw
    /// from it, others from the built-in block-hash source. Bit 1: a guardian pause may be in force (the
    /// only case where creating a job reads the guardian's word).
    struct MarketConfig {
        uint16 feeBps;
        uint16 collateralBps;
        uint16 timeoutSlashBps;
        uint24 challengeWindow;
        uint24 revealWindow;
        uint16 pMinBps;
        uint8 probationJobs;
        uint16 auditRewardBps;
        uint16 auditCollateralBps;
        uint24 auditClaimWindow;
        uint24 auditRevealWindow;
        uint24 minComputeWindow;
        uint24 maxComputeWindow;
        uint8 flags;
    }

    /// @notice Governed parameters read only on the rarer paths (fraud, challenges, audit phases).
    /// @param fraudStakeSlashBps Share of MESH stake (active + unbonding) slashed for fraud.
    /// @param fraudConsumerBps Share of a forfeited collateral for the consumer (the challenger when a
    /// challenge proved the fraud).
    /// @param fraudAuditorBps Share for the honest auditors (to the consumer when none took part); the
    /// treasury gets the rest.
    /// @param challengeBondBps A challenger's bond, as a share of P.
    /// @param assumedCollusionBps r: the share of auditors assumed to collude. A parameter change that
    /// breaks `pMin * (1 - r) * (1 + collateralBps) > 1` is rejected.
    /// @param escalationWindow Seconds governance has to decide an escalated dispute before the no-fault
    /// outcome applies (without the auditors' rewards: see `Verdict.NoFault`).
    /// @param auditPoolShareBps Share of the protocol fees that goes to the audit pool (the rest to the
    /// treasury) when they are swept: the audit premium the consumers' fees pay.
    struct VerificationConfig {
        uint16 fraudStakeSlashBps;
        uint16 fraudConsumerBps;
        uint16 fraudAuditorBps;
        uint16 challengeBondBps;
        uint16 assumedCollusionBps;
        uint32 escalationWindow;
        uint16 auditPoolShareBps;
    }

    enum AuditPhase {
        None,
        /// Drawn (or challenged); waiting for an auditor until the deadline.
        AwaitingAuditor,
        /// The auditor claimed and committed blind; waiting for the provider's reveal.
        AuditorCommitted,
        /// The provider's leaves did not open the auditor's commitment; waiting for the auditor's reveal.
        AwaitingAuditorReveal,
        /// Both revealed and differ at the `disputed` chunks; waiting for a tie-breaker.
        AwaitingTieBreaker,
        /// A tie-breaker claimed the tie-break; waiting for its answer.
        TieBreakerClaimed,
        /// No majority (or no tie-breaker): waiting for governance until the deadline.
        Escalated
    }

    /// @notice Governance's decision on an escalated dispute.
    enum Verdict {
        /// The provider's result is wrong: fraud, as if the tie-breaker had sided with the auditor, except
        /// that a tie-breaker whose answer escalated gets only its collateral back (no share, no reward).
        ProviderFraud,
        /// The auditor lied: as if the tie-breaker had sided with the provider, except that a tie-breaker
        /// whose answer escalated gets only its collateral back (no share, no reward).
        AuditorFraud,
        /// Nobody is punished: the consumer is refunded, every collateral and bond returned. The auditors
        /// are paid their reward from the pool when governance gives this verdict, not when an escalation
        /// expires undecided (else addresses of one owner answering three ways could drain the pool).
        NoFault
    }

    /// @notice An audit, unpacked.
    /// @param seed The audit's sample seed (see `sampleIndices` in the SDK).
    /// @param sample The chunk indices the audit re-executes (m of them, in order).
    /// @param disputed Bit k set when the provider's and the auditor's leaves differ at `sample[k]`.
    struct AuditView {
        AuditPhase phase;
        uint256 deadline;
        address auditor;
        address tieBreaker;
        address challenger;
        uint56 seed;
        uint32[] sample;
        uint64 disputed;
    }

    /* EVENTS */

    /// @notice Everything a worker needs to claim the job and rebuild its id is in `job`.
    event JobCreated(bytes32 indexed jobId, address indexed consumer, Job job, string specURI);
    /// @notice Collateral and commit deadline follow from the job: S = P * collateralBps / 10000, the
    /// deadline is the block time plus `computeWindow`.
    event JobClaimed(bytes32 indexed jobId, address indexed provider);
    /// @notice The commitment itself is in the job's record (`jobRecord`).
    event JobCommitted(bytes32 indexed jobId);
    /// @notice P - fee plus the collateral went to the provider's balance and the fee is owed to the
    /// treasury (both follow from the job's terms). An audited job's root and output URI are in its
    /// `ResultRevealed` event, and this one carries zero and "".
    event JobSettled(bytes32 indexed jobId, address indexed provider, bytes32 resultRoot, string outputURI);
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
    /// @notice The reveal window closed while the job's audit draw was still impossible (the governed
    /// randomness source Pending), so the provider could not settle: nobody is at fault. The consumer was
    /// refunded P (`JobRefunded`) and `collateral` went back to the provider; no stake was slashed.
    event JobVoided(bytes32 indexed jobId, address indexed provider, uint256 collateral);
    event Deposited(IERC20 indexed token, address indexed account, address indexed payer, uint256 amount);
    event Withdrawn(IERC20 indexed token, address indexed account, address indexed to, uint256 amount);
    /// @notice Fees a provider owed on settled jobs were swept: `toAuditPool` to the audit pool, the
    /// rest of `amount` to the treasury accrual.
    event FeesSwept(IERC20 indexed token, address indexed provider, uint256 amount, uint256 toAuditPool);
    event PaymentTokenSet(IERC20 indexed token, bool allowed);
    event ParameterSet(Parameter indexed parameter, uint256 oldValue, uint256 newValue);
    event TreasuryWithdrawn(IERC20 indexed token, address indexed to, uint256 amount);
    event RandomnessSourceSet(address indexed oldSource, address indexed newSource);
    event GuardianSet(address indexed oldGuardian, address indexed newGuardian);
    event Paused(address indexed guardian, uint256 until);
    event Unpaused(address indexed by);
    event CommonsSet(address indexed oldCommons, address indexed newCommons);


    /// @notice The audit draw of a committed job. `failSafe`: the randomness had expired, so it counts as audited.
    event AuditDrawn(bytes32 indexed jobId, bool audited, uint256 probabilityBps, bool failSafe);
    /// @notice Someone bonded `bond` to force an audit (`namedChunk` is the first sampled chunk when `named`).
    event JobChallenged(bytes32 indexed jobId, address indexed challenger, uint256 bond, bool named, uint32 namedChunk);
    /// @notice The sample is `sampleOf(job)`.
    event AuditClaimed(bytes32 indexed jobId, address indexed auditor, bytes32 commitment);
    /// @notice The provider opened its commitment during an audit; `leaves` are the sampled leaves.
    event ResultRevealed(bytes32 indexed jobId, address indexed provider, bytes32 resultRoot, string outputURI, bytes32[] leaves);
    event AuditRevealed(bytes32 indexed jobId, address indexed auditor, bytes32[] leaves, uint64 disputed);
    /// @notice The audit matched: the job settled, the auditor got `reward` from the audit pool.
    event AuditPassed(bytes32 indexed jobId, address indexed provider, address indexed auditor, uint256 reward);
    event TieBreakClaimed(bytes32 indexed jobId, address indexed tieBreaker);
    event TieBreakRevealed(bytes32 indexed jobId, address indexed tieBreaker, bytes32[] leaves);
    /// @notice The provider was found wrong: S split, P refunded, stake slashed, provider jailed.
    event FraudProven(
        bytes32 indexed jobId,
        address indexed provider,
        uint256 toConsumerSide,
        uint256 toAuditors,
        uint256 toTreasury,
        uint256 stakeSlashed
    );
    /// @notice An auditor was in the minority (or judged wrong): its collateral split, stake slashed, jailed.
    event AuditorSlashed(bytes32 indexed jobId, address indexed auditor, uint256 collateral, uint256 stakeSlashed);
    /// @notice An auditor or tie-breaker missed its deadline and forfeited its collateral.
    event AuditorStalled(bytes32 indexed jobId, address indexed auditor, uint256 collateral);
    /// @notice No auditor claimed the audit in time: the job goes on unaudited.
    event AuditUnclaimed(bytes32 indexed jobId);
    event DisputeEscalated(bytes32 indexed jobId, uint256 deadline);
    event AuditPoolFunded(IERC20 indexed token, address indexed funder, uint256 amount);
    /// @notice `byGovernance` false: the escalation deadline passed and the no-fault outcome applied, with
    /// no rewards paid.
    event EscalationResolved(bytes32 indexed jobId, Verdict verdict, bool byGovernance);

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
    /// @notice The change would break `pMin * (1 - r) * (1 + collateralBps) > 1` (all in basis points).
    error JobMarketEconomicBoundBroken(uint256 pMinBps, uint256 assumedCollusionBps, uint256 collateralBps);


    error JobMarketRandomnessNotReady(bytes32 jobId, uint256 commitBlock);
    /// @notice The job was drawn for audit: call `draw` (without revealing) and wait for the auditor. From
    /// `challenge`: the job is under audit already, no challenge is needed.
    error JobMarketAuditRequired(bytes32 jobId);
    error JobMarketNotDrawnForAudit(bytes32 jobId);
    error JobMarketUnexpectedPhase(bytes32 jobId, AuditPhase current, AuditPhase expected);
    /// @notice The account already plays another role in this job (provider, consumer, challenger, auditor).
    error JobMarketConflictOfInterest(bytes32 jobId, address account);
    error JobMarketWrongLeafCount(bytes32 jobId, uint256 got, uint256 expected);
    error JobMarketInvalidProof(bytes32 jobId, uint256 position);
    /// @notice Leaves passed again do not hash to what was revealed before.
    error JobMarketRevealedLeavesMismatch(bytes32 jobId);
    error JobMarketAuditCommitmentMismatch(bytes32 jobId);
    error JobMarketChunkOutOfRange(bytes32 jobId, uint256 chunk, uint256 chunks);
    error JobMarketChallengeWindowClosed(bytes32 jobId, uint256 windowEnd);
    /// @notice Only the provider that claimed the tie-break may answer it.
    error JobMarketNotTieBreaker(bytes32 jobId, address caller);
    /// @notice New jobs and claims are paused until `until` by the guardian.
    error JobMarketPaused(uint256 until);
    error JobMarketNotGuardian(address caller);
    error JobMarketPauseTooLong(uint256 duration, uint256 max);
    /// @notice The guardian paused recently; it may pause again from `availableAt`.
    error JobMarketPauseCooldown(uint256 availableAt);
    /// @notice Only the compute-commons contract may create commons jobs.
    error JobMarketNotCommons(address caller);
    /// @notice The audit module runs only inside the market (by delegatecall).
    error JobMarketDirectModuleCall();
    /// @notice The audit module given to the market was built for another registry.
    error JobMarketModuleRegistryMismatch(address moduleRegistry);

}
