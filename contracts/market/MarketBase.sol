// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IJobMarketTypes} from "../interfaces/IJobMarketTypes.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {IRandomnessSource} from "../interfaces/IRandomnessSource.sol";
import {JobSlot, JobSlots} from "../libraries/JobSlot.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Terms} from "../libraries/JobParams.sol";

/// @title MarketBase
/// @notice Storage and shared internals of the job market's two halves: `JobMarket` (the lifecycle
/// core, deployed at the market's address) and `AuditModule` (the verification layer, run by
/// `delegatecall` from the market's fallback). Both inherit exactly this contract and declare no state
/// of their own, so they see one storage layout.
abstract contract MarketBase is IJobMarketTypes, Ownable, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /* STORAGE */

    /// @dev An account's internal balance of one token, one word. For providers it also holds the fees
    /// owed on settled jobs (swept to the treasury on withdrawal or by anyone) and the number of jobs
    /// settled: settling a job writes this one word for the provider and nothing else.
    struct Account {
        uint128 balance;
        uint96 feesDue;
        uint32 completed;
    }

    /// @dev Per payment token: allowlist flag, the treasury's accrued fees and the audit pool, one word.
    struct TokenState {
        bool allowed;
        uint128 treasuryAccrual;
        uint120 auditPool;
    }

    /// @dev An audit in progress (one word). `deadline` is the current phase's; `seed` picks the sample;
    /// `challenged` says whether `_challenges` holds anything (so the common case does not read it).
    struct AuditRecord {
        address auditor;
        uint32 deadline;
        AuditPhase phase;
        uint48 seed;
        bool challenged;
    }

    /// @dev Only for challenged jobs. The bond's share of P is kept as it was when it was posted.
    struct Challenge {
        address challenger;
        uint32 chunk;
        bool named;
        uint16 bondBps;
    }

    /// @dev Guardian pause: who, until when, and the longest pause governance allows. One word.
    struct GuardianState {
        address guardian;
        uint40 pausedUntil;
        uint32 maxPauseDuration;
    }

    uint256 internal constant BPS = 10_000;
    uint8 internal constant FLAG_EXTERNAL_RANDOMNESS = 1;
    uint8 internal constant FLAG_PAUSED = 2;

    /// @dev EIP-2935 block-hash history (8,191 blocks) on chains that have it.
    address private constant BLOCK_HASH_HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;

    IProviderRegistry internal immutable _registry;

    MarketConfig internal _config;
    VerificationConfig internal _verification;
    IRandomnessSource internal _randomness;
    /// @dev The block of the last `setRandomnessSource` (same word as `_randomness`).
    uint64 internal _randomnessSetBlock;
    GuardianState internal _guardian;
    address internal _commons;

    mapping(IERC20 token => TokenState) internal _tokens;
    mapping(IERC20 token => mapping(address account => Account)) internal _accounts;
    /// @dev The only per-job storage on the unaudited path: one word (see JobSlot).
    mapping(bytes32 jobId => JobSlot) internal _jobs;
    mapping(bytes32 jobId => AuditRecord) internal _audits;
    /// @dev The auditor's commitment; once the auditor has revealed in a dispute, the tie-breaker's
    /// address (high 160 bits, 0 until one claims) and the low 96 bits of the hash of the auditor's leaves.
    mapping(bytes32 jobId => bytes32) internal _auditorDigests;
    mapping(bytes32 jobId => Challenge) internal _challenges;

    constructor(IProviderRegistry registry_, address owner_) Ownable(owner_) EIP712("Meshwork JobMarket", "1") {
        if (address(registry_) == address(0)) revert JobMarketZeroAddress();
        _registry = registry_;
    }

    /* JOBS */

    function _hashJob(Job calldata job) internal pure returns (bytes32) {
        return keccak256(abi.encode(job));
    }

    /// @dev What a provider commits to (`IJobMarketCore.commitmentHash`).
    function _commitmentHash(bytes32 jobId, address provider, bytes32 resultRoot, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobId, provider, resultRoot, salt));
    }

    /// @dev What the job's word stores of a commitment: its hash with the claimant's address. A
    /// commitment opens only with the claimant as `provider`, so nobody settles, or is paid or counted, in
    /// the name of another address (a newcomer binding an address past probation would skip its audits).
    function _boundCommitment(bytes32 commitment, address claimant) internal pure returns (bytes32) {
        return keccak256(abi.encode(commitment, claimant));
    }

    /// @dev Reverts unless `provider`, `resultRoot` and `salt` open the commitment the job's word keeps.
    function _expectOpens(bytes32 jobId, JobSlot slot, address provider, bytes32 resultRoot, bytes32 salt)
        internal
        pure
    {
        bytes32 bound = _boundCommitment(_commitmentHash(jobId, provider, resultRoot, salt), provider);
        if (JobSlots.truncate(bound) != slot.digest()) revert JobMarketCommitmentMismatch(jobId);
    }

    function _expectState(bytes32 jobId, JobState current, JobState expected) internal pure {
        if (current != expected) {
            if (current == JobState.None) revert JobMarketUnknownJob(jobId);
            revert JobMarketUnexpectedState(jobId, current, expected);
        }
    }

    function _collateralOf(uint256 price, uint256 bps) internal pure returns (uint256) {
        return price * bps / BPS;
    }

    /// @dev Pays a job's provider: P - fee + S to its balance, the fee to its fees due, one more job done.
    function _payProvider(Job calldata job, address provider) internal {
        Terms terms = job.terms;
        uint256 price = job.request.price;
        uint256 fee = price * terms.feeBps() / BPS;
        uint256 payout = price - fee;
        Account storage account = _accounts[job.request.paymentToken][provider];
        account.balance = (account.balance + payout + _collateralOf(price, terms.collateralBps())).toUint128();
        account.feesDue = (account.feesDue + fee).toUint96();
        ++account.completed;
    }

    /// @dev Splits a forfeited amount: consumer side, honest auditors (shared equally; to the consumer
    /// side when there is none), the rest to the treasury.
    function _splitForfeit(
        IERC20 token,
        uint256 amount,
        address consumerSide,
        address auditorA,
        address auditorB
    ) internal returns (uint256 toConsumerSide, uint256 toAuditors, uint256 toTreasury) {
        VerificationConfig memory v = _verification;
        toConsumerSide = amount * v.fraudConsumerBps / BPS;
        toAuditors = amount * v.fraudAuditorBps / BPS;
        toTreasury = amount - toConsumerSide - toAuditors;
        if (auditorA == address(0)) {
            toConsumerSide += toAuditors;
            toAuditors = 0;
        } else if (auditorB == address(0)) {
            _credit(token, auditorA, toAuditors);
        } else {
            uint256 half = toAuditors / 2;
            _credit(token, auditorA, toAuditors - half);
            _credit(token, auditorB, half);
        }
        _credit(token, consumerSide, toConsumerSide);
        _tokens[token].treasuryAccrual += toTreasury.toUint128();
    }

    /* AUDIT DRAW */

    /// @dev The audit draw (PROTOCOL.md §6): probation, then max(pMin, the consumer's request).
    /// `announce`: emit `AuditDrawn` (settling or claiming the audit says it already).
    function _drawAudit(bytes32 jobId, Job calldata job, JobSlot slot, uint256 completed, bool announce)
        internal
        returns (bool audited)
    {
        Terms terms = job.terms;
        uint256 probability =
            completed < terms.probationJobs() ? BPS : Math.max(terms.pMinBps(), job.request.verification.auditBps());
        (IRandomnessSource.Availability availability, bytes32 value) =
            _randomnessOf(slot.commitBlock(), terms.externalRandomness());
        if (availability == IRandomnessSource.Availability.Pending) {
            revert JobMarketRandomnessNotReady(jobId, slot.commitBlock());
        }
        bool failSafe = availability == IRandomnessSource.Availability.Expired;
        audited = failSafe || uint256(keccak256(abi.encode(value, jobId))) % BPS < probability;
        if (announce) emit AuditDrawn(jobId, audited, probability, failSafe);
    }

    /// @dev The sample seed of an audit: the draw's randomness, or, once it expired, the hash of the
    /// latest block whose number is a multiple of 256. Every call within those 256 blocks gets the same
    /// seed, so a caller cannot retry block by block (reverting on a sample it dislikes) until the
    /// sample misses the chunks it fabricated; and an auditor's claim lands on the sample it read.
    function _seed(bytes32 jobId, Job calldata job, JobSlot slot) internal view returns (uint48) {
        (IRandomnessSource.Availability availability, bytes32 value) =
            _randomnessOf(slot.commitBlock(), job.terms.externalRandomness());
        if (availability == IRandomnessSource.Availability.Pending) {
            revert JobMarketRandomnessNotReady(jobId, slot.commitBlock());
        }
        if (availability == IRandomnessSource.Availability.Expired) value = blockhash((block.number - 1) & ~uint256(255));
        return uint48(uint256(keccak256(abi.encode(value, jobId, "sample"))));
    }

    /// @dev Randomness of the block after `commitBlock`: the governed source when the job uses one (and
    /// one is still set), else the built-in one.
    function _randomnessOf(uint256 commitBlock, bool external_)
        internal
        view
        returns (IRandomnessSource.Availability, bytes32)
    {
        if (external_) {
            IRandomnessSource source = _randomness;
            if (address(source) != address(0)) return _askSource(source, commitBlock);
        }
        uint256 target = commitBlock + 1;
        if (block.number <= target) return (IRandomnessSource.Availability.Pending, 0);
        bytes32 hash = blockhash(target);
        if (hash != 0) return (IRandomnessSource.Availability.Ready, hash);
        if (block.number - target <= 8191 && BLOCK_HASH_HISTORY.code.length != 0) {
            (bool ok, bytes memory ret) = BLOCK_HASH_HISTORY.staticcall(abi.encode(target));
            if (ok && ret.length == 32) return (IRandomnessSource.Availability.Ready, bytes32(ret));
        }
        return (IRandomnessSource.Availability.Expired, 0);
    }

    /// @dev The governed source's answer; a source that reverts or answers malformed data is Pending
    /// (never a revert here: a job whose source fails can still be voided, not stuck).
    function _askSource(IRandomnessSource source, uint256 commitBlock)
        private
        view
        returns (IRandomnessSource.Availability, bytes32)
    {
        (bool ok, bytes memory answer) =
            address(source).staticcall(abi.encodeCall(IRandomnessSource.randomness, (commitBlock)));
        if (!ok || answer.length < 64) return (IRandomnessSource.Availability.Pending, 0);
        (uint256 availability, bytes32 value) = abi.decode(answer, (uint256, bytes32));
        if (availability > uint256(IRandomnessSource.Availability.Expired)) return (IRandomnessSource.Availability.Pending, 0);
        return (IRandomnessSource.Availability(availability), value);
    }

    /* BALANCES */

    function _credit(IERC20 token, address account, uint256 amount) internal {
        if (amount == 0) return;
        Account storage a = _accounts[token][account];
        a.balance = (a.balance + amount).toUint128();
    }

    /// @dev Takes `amount` from the internal balance; returns what is missing (to pull by transfer).
    function _debit(IERC20 token, address account, uint256 amount) internal returns (uint256 shortfall) {
        Account storage a = _accounts[token][account];
        uint256 balance = a.balance;
        if (balance >= amount) {
            // Safe: checked just above.
            unchecked {
                a.balance = uint128(balance - amount);
            }
            return 0;
        }
        if (balance != 0) a.balance = 0;
        return amount - balance;
    }

    /// @dev Takes `amount` from `account`: internal balance first, the rest by transferFrom (last, CEI).
    function _collect(IERC20 token, address account, uint256 amount) internal {
        uint256 shortfall = _debit(token, account, amount);
        if (shortfall != 0) token.safeTransferFrom(account, address(this), shortfall);
    }

    /// @dev Pays `want` from the audit pool, or what is left of it.
    function _payFromPool(IERC20 token, address to, uint256 want) internal returns (uint256 paid) {
        TokenState storage t = _tokens[token];
        paid = want < t.auditPool ? want : t.auditPool;
        if (paid == 0) return 0;
        // Safe: paid <= auditPool.
        unchecked {
            t.auditPool -= uint120(paid);
        }
        _credit(token, to, paid);
    }
}
