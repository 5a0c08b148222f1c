// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IJobAudits} from "../interfaces/IJobAudits.sol";
import {IJobMarketCore} from "../interfaces/IJobMarketCore.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {IRandomnessSource} from "../interfaces/IRandomnessSource.sol";
import {JobSlot, JobSlots} from "../libraries/JobSlot.sol";
import {Requirements, Terms, TermsLib, Verification} from "../libraries/JobParams.sol";
import {AuditModule} from "./AuditModule.sol";
import {MarketBase} from "./MarketBase.sol";

/// @title JobMarket
/// @notice See {IJobMarketCore}. Calls to {IJobAudits} functions reach the fallback, which runs them in
/// the audit module with this contract's storage. Owned by the governance timelock.
contract JobMarket is IJobMarketCore, MarketBase {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice EIP-712 type of a provider's offer.
    bytes32 public constant OFFER_TYPEHASH = keccak256("Offer(bytes32 jobId,uint40 expiry)");

    address private immutable _auditModule;

    /// @param registry_ The provider registry (its `market` must be set to this contract).
    /// @param auditModule_ The `AuditModule` deployed for this market's registry.
    /// @param owner_ Initial owner (the deployer, who hands ownership to the timelock).
    /// @param config_ Initial parameters, each checked against its bounds, and the economic bound.
    constructor(
        IProviderRegistry registry_,
        address auditModule_,
        address owner_,
        MarketConfig memory config_,
        VerificationConfig memory verification_
    ) MarketBase(registry_, owner_) {
        if (auditModule_ == address(0)) revert JobMarketZeroAddress();
        IProviderRegistry moduleRegistry = AuditModule(auditModule_).registryOfModule();
        if (moduleRegistry != registry_) revert JobMarketModuleRegistryMismatch(address(moduleRegistry));
        _auditModule = auditModule_;
        // Maximum before minimum and auditor share before consumer share: each bound depends on the other.
        _setParameter(Parameter.FeeBps, config_.feeBps);
        _setParameter(Parameter.CollateralBps, config_.collateralBps);
        _setParameter(Parameter.TimeoutSlashBps, config_.timeoutSlashBps);
        _setParameter(Parameter.ChallengeWindow, config_.challengeWindow);
        _setParameter(Parameter.RevealWindow, config_.revealWindow);
        _setParameter(Parameter.PMinBps, config_.pMinBps);
        _setParameter(Parameter.ProbationJobs, config_.probationJobs);
        _setParameter(Parameter.AuditPoolShareBps, verification_.auditPoolShareBps);
        _setParameter(Parameter.AuditRewardBps, config_.auditRewardBps);
        _setParameter(Parameter.AuditCollateralBps, config_.auditCollateralBps);
        _setParameter(Parameter.MaxComputeWindow, config_.maxComputeWindow);
        _setParameter(Parameter.MinComputeWindow, config_.minComputeWindow);
        _setParameter(Parameter.FraudStakeSlashBps, verification_.fraudStakeSlashBps);
        _setParameter(Parameter.FraudAuditorBps, verification_.fraudAuditorBps);
        _setParameter(Parameter.FraudConsumerBps, verification_.fraudConsumerBps);
        _setParameter(Parameter.ChallengeBondBps, verification_.challengeBondBps);
        _setParameter(Parameter.AssumedCollusionBps, verification_.assumedCollusionBps);
        _setParameter(Parameter.AuditClaimWindow, config_.auditClaimWindow);
        _setParameter(Parameter.AuditRevealWindow, config_.auditRevealWindow);
        _setParameter(Parameter.EscalationWindow, verification_.escalationWindow);
        _setParameter(Parameter.MaxPauseDuration, 3 days);
        _checkEconomicBound();
    }

    /* BALANCES */

    /// @inheritdoc IJobMarketCore
    function deposit(IERC20 token, address account, uint256 amount) external nonReentrant {
        if (!_tokens[token].allowed) revert JobMarketTokenNotAllowed(token);
        if (amount == 0) revert JobMarketZeroAmount();
        if (account == address(0)) revert JobMarketZeroAddress();
        _credit(token, account, amount);
        emit Deposited(token, account, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IJobMarketCore
    function withdraw(IERC20 token, uint256 amount, address to) external nonReentrant {
        _withdraw(token, amount, to);
    }

    /// @inheritdoc IJobMarketCore
    function withdrawBatch(Withdrawal[] calldata withdrawals, address to) external nonReentrant {
        for (uint256 i; i < withdrawals.length; ++i) {
            _withdraw(withdrawals[i].token, withdrawals[i].amount, to);
        }
    }

    /// @inheritdoc IJobMarketCore
    function sweepFees(IERC20 token, address[] calldata providers) external {
        for (uint256 i; i < providers.length; ++i) {
            _sweepFees(token, providers[i]);
        }
    }

    /* JOBS */

    /// @inheritdoc IJobMarketCore
    function createJob(JobRequest calldata request, string calldata specURI)
        external
        nonReentrant
        returns (bytes32 jobId)
    {
        (jobId,) = _openJob(request, specURI);
        _jobs[jobId] = JobSlots.only(JobState.Open);
        _collect(request.paymentToken, msg.sender, request.price);
    }

    /// @inheritdoc IJobMarketCore
    function createJobWithOffer(
        JobRequest calldata request,
        string calldata specURI,
        uint40 expiry,
        bytes calldata signature
    ) external nonReentrant returns (bytes32 jobId) {
        address provider = request.targetProvider;
        if (provider == address(0)) revert JobMarketInvalidRequest("targetProvider");
        Terms terms;
        (jobId, terms) = _openJob(request, specURI);
        if (block.timestamp > expiry) revert JobMarketOfferExpired(jobId, expiry);
        if (!SignatureChecker.isValidSignatureNow(provider, offerDigest(jobId, expiry), signature)) {
            revert JobMarketInvalidSignature(jobId, provider);
        }
        uint32 providerId = _checkEligible(jobId, msg.sender, request, provider, false);
        uint256 shortfall = _assign(jobId, request, terms, provider, providerId);
        _collect(request.paymentToken, msg.sender, request.price);
        if (shortfall != 0) request.paymentToken.safeTransferFrom(provider, address(this), shortfall);
    }

    /// @inheritdoc IJobMarketCore
    function cancel(Job calldata job) external {
        bytes32 jobId = _hashJob(job);
        _expectState(jobId, _jobs[jobId].state(), JobState.Open);
        if (msg.sender != job.consumer) revert JobMarketNotConsumer(jobId, msg.sender);
        _jobs[jobId] = JobSlots.only(JobState.Cancelled);
        _credit(job.request.paymentToken, job.consumer, job.request.price);
        emit JobCancelled(jobId, job.consumer, job.request.price);
    }

    /// @inheritdoc IJobMarketCore
    function claim(Job calldata job) external nonReentrant {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        JobState state = slot.state();
        if (state == JobState.Claimed && block.timestamp > slot.commitDeadline()) {
            // The previous claimant missed its commit deadline: time it out and take its place.
            _timeOut(jobId, job, slot.claimant());
            state = JobState.Open;
        }
        _expectState(jobId, state, JobState.Open);
        if (block.timestamp > job.request.claimBy) revert JobMarketClaimByPassed(jobId, job.request.claimBy);
        uint32 providerId = _checkEligible(jobId, job.consumer, job.request, msg.sender, true);
        uint256 shortfall = _assign(jobId, job.request, job.terms, msg.sender, providerId);
        if (shortfall != 0) job.request.paymentToken.safeTransferFrom(msg.sender, address(this), shortfall);
    }

    /// @inheritdoc IJobMarketCore
    function commit(bytes32 jobId, bytes32 commitment) external {
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Claimed);
        if (msg.sender != slot.claimant()) revert JobMarketNotProvider(jobId, msg.sender);
        uint256 deadline = slot.commitDeadline();
        if (block.timestamp > deadline) revert JobMarketDeadlinePassed(jobId, deadline);
        if (JobSlots.truncate(commitment) == 0) revert JobMarketZeroCommitment(jobId);
        _jobs[jobId] = JobSlots.committed(
            slot.claimantId(), block.timestamp, block.number, _boundCommitment(commitment, msg.sender)
        );
        emit JobCommitted(jobId);
    }

    /// @inheritdoc IJobMarketCore
    function draw(Job calldata job) external {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Committed);
        address provider = _registry.providerById(slot.providerId());
        uint256 completed = _accounts[job.request.paymentToken][provider].completed;
        bool audited = _drawAudit(jobId, job, slot, completed, true); // reverts while the randomness is Pending
        // Past the reveal window `enforceDeadline` decides (a missed reveal, or a void): a late draw must
        // not turn a void into a slash.
        uint256 revealBy = slot.clock() + job.terms.challengeWindow() + job.terms.revealWindow();
        if (block.timestamp > revealBy) revert JobMarketDeadlinePassed(jobId, revealBy);
        if (audited) {
            _jobs[jobId] = slot.withState(JobState.Audited);
            _audits[jobId] = AuditRecord(
                address(0),
                uint32(block.timestamp + job.terms.auditClaimWindow()),
                AuditPhase.AwaitingAuditor,
                _seed(jobId, job, slot),
                false
            );
        } else {
            _jobs[jobId] = slot.withState(JobState.Challengeable).withClock(slot.clock() + job.terms.challengeWindow());
        }
    }

    /// @inheritdoc IJobMarketCore
    function settle(Job calldata job, address provider, bytes32 resultRoot, bytes32 salt, string calldata outputURI)
        external
    {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        JobState state = slot.state();
        uint256 windowEnd;
        if (state == JobState.Committed) windowEnd = slot.clock() + job.terms.challengeWindow();
        else if (state == JobState.Challengeable) windowEnd = slot.clock();
        else _expectState(jobId, state, JobState.Challengeable);
        if (block.timestamp < windowEnd) revert JobMarketDeadlineNotReached(jobId, windowEnd);
        uint256 revealBy = windowEnd + job.terms.revealWindow();
        if (block.timestamp > revealBy) revert JobMarketDeadlinePassed(jobId, revealBy);
        _expectOpens(jobId, slot, provider, resultRoot, salt);
        if (state == JobState.Committed) {
            uint256 completed = _accounts[job.request.paymentToken][provider].completed;
            if (_drawAudit(jobId, job, slot, completed, false)) revert JobMarketAuditRequired(jobId);
        }

        _jobs[jobId] = JobSlots.only(JobState.Settled);
        _payProvider(job, provider);
        emit JobSettled(jobId, provider, resultRoot, outputURI);
    }

    /// @inheritdoc IJobMarketCore
    function enforceDeadline(Job calldata job) external {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        JobState state = slot.state();
        if (state == JobState.Open) {
            _expectPast(jobId, job.request.claimBy);
            _refund(jobId, job);
        } else if (state == JobState.Claimed) {
            _expectPast(jobId, slot.commitDeadline());
            _timeOut(jobId, job, slot.claimant());
            if (block.timestamp <= job.request.claimBy) {
                _jobs[jobId] = JobSlots.only(JobState.Open);
                emit JobReopened(jobId);
            } else {
                _refund(jobId, job);
            }
        } else if (state == JobState.Committed || state == JobState.Challengeable) {
            uint256 windowEnd = state == JobState.Committed ? slot.clock() + job.terms.challengeWindow() : slot.clock();
            _expectPast(jobId, windowEnd + job.terms.revealWindow());
            address provider = _registry.providerById(slot.providerId());
            if (state == JobState.Committed && _undrawable(jobId, job, slot)) _voidUndrawn(jobId, job, provider);
            else _missedReveal(jobId, job, provider);
        } else if (state >= JobState.Audited && state <= JobState.Escalated) {
            _delegate(_auditModule);
        } else if (state == JobState.None) {
            revert JobMarketUnknownJob(jobId);
        } else {
            revert JobMarketNothingToEnforce(jobId, state);
        }
    }

    /* GOVERNANCE */

    /// @inheritdoc IJobMarketCore
    function setPaymentToken(IERC20 token, bool allowed) external onlyOwner {
        if (address(token) == address(0)) revert JobMarketZeroAddress();
        _tokens[token].allowed = allowed;
        emit PaymentTokenSet(token, allowed);
    }

    /// @inheritdoc IJobMarketCore
    function setParameter(Parameter which, uint256 value) external onlyOwner {
        _setParameter(which, value);
        if (which == Parameter.PMinBps || which == Parameter.CollateralBps || which == Parameter.AssumedCollusionBps) {
            _checkEconomicBound();
        }
    }

    /// @inheritdoc IJobMarketCore
    function setRandomnessSource(IRandomnessSource source) external onlyOwner {
        emit RandomnessSourceSet(address(_randomness), address(source));
        _randomness = source;
        _randomnessSetBlock = uint64(block.number);
        if (address(source) != address(0)) _config.flags |= FLAG_EXTERNAL_RANDOMNESS;
        else _config.flags &= ~FLAG_EXTERNAL_RANDOMNESS;
    }

    /// @inheritdoc IJobMarketCore
    function withdrawTreasury(IERC20 token, address to, uint256 amount) external onlyOwner nonReentrant {
        if (to == address(0)) revert JobMarketZeroAddress();
        uint256 accrued = _tokens[token].treasuryAccrual;
        if (amount > accrued) revert JobMarketInsufficientTreasury(token, accrued, amount);
        // Safe: checked just above.
        unchecked {
            _tokens[token].treasuryAccrual = uint128(accrued - amount);
        }
        emit TreasuryWithdrawn(token, to, amount);
        token.safeTransfer(to, amount);
    }

    /* VIEWS */

    /// @inheritdoc IJobMarketCore
    function registry() external view returns (IProviderRegistry) {
        return _registry;
    }

    /// @inheritdoc IJobMarketCore
    function auditModule() external view returns (address) {
        return _auditModule;
    }

    /// @inheritdoc IJobMarketCore
    function isPaymentToken(IERC20 token) external view returns (bool) {
        return _tokens[token].allowed;
    }

    /// @inheritdoc IJobMarketCore
    function balanceOf(IERC20 token, address account) external view returns (uint256) {
        return _accounts[token][account].balance;
    }

    /// @inheritdoc IJobMarketCore
    function feesDue(IERC20 token, address provider) external view returns (uint256) {
        return _accounts[token][provider].feesDue;
    }

    /// @inheritdoc IJobMarketCore
    function completedJobs(IERC20 token, address provider) external view returns (uint256) {
        return _accounts[token][provider].completed;
    }

    /// @inheritdoc IJobMarketCore
    function treasuryAccrual(IERC20 token) external view returns (uint256) {
        return _tokens[token].treasuryAccrual;
    }

    /// @inheritdoc IJobMarketCore
    function config() external view returns (MarketConfig memory) {
        return _config;
    }

    /// @inheritdoc IJobMarketCore
    function verificationConfig() external view returns (VerificationConfig memory) {
        return _verification;
    }

    /// @inheritdoc IJobMarketCore
    function randomnessSource() external view returns (IRandomnessSource) {
        return _randomness;
    }

    /// @inheritdoc IJobMarketCore
    function parameter(Parameter which) public view returns (uint256) {
        MarketConfig memory c = _config;
        VerificationConfig memory v = _verification;
        uint256[21] memory values = [
            uint256(c.feeBps),
            c.collateralBps,
            c.timeoutSlashBps,
            c.challengeWindow,
            c.revealWindow,
            c.pMinBps,
            c.probationJobs,
            v.auditPoolShareBps,
            c.auditRewardBps,
            c.auditCollateralBps,
            c.minComputeWindow,
            c.maxComputeWindow,
            v.fraudStakeSlashBps,
            v.fraudConsumerBps,
            v.fraudAuditorBps,
            v.challengeBondBps,
            v.assumedCollusionBps,
            c.auditClaimWindow,
            c.auditRevealWindow,
            v.escalationWindow,
            _guardian.maxPauseDuration
        ];
        return values[uint256(which)];
    }

    /// @inheritdoc IJobMarketCore
    function parameterBounds(Parameter which) public view returns (uint256 min, uint256 max) {
        if (which == Parameter.FeeBps) return (0, 1_000);
        if (which == Parameter.CollateralBps || which == Parameter.AuditCollateralBps) return (0, 60_000);
        if (which == Parameter.ChallengeBondBps) return (0, 60_000);
        if (which == Parameter.PMinBps) return (1, BPS);
        if (which == Parameter.ProbationJobs) return (0, 255);
        if (which == Parameter.AuditRewardBps) return (0, 2_000);
        if (which == Parameter.AssumedCollusionBps) return (0, 5_000);
        if (which == Parameter.MinComputeWindow) return (60, _config.maxComputeWindow);
        if (which == Parameter.MaxComputeWindow) return (Math.max(60, _config.minComputeWindow), 180 days);
        if (which == Parameter.FraudConsumerBps) return (0, BPS - _verification.fraudAuditorBps);
        if (which == Parameter.FraudAuditorBps) return (0, BPS - _verification.fraudConsumerBps);
        if (which == Parameter.EscalationWindow) return (1 hours, 365 days);
        if (which == Parameter.MaxPauseDuration) return (1 hours, 30 days);
        if (
            which == Parameter.ChallengeWindow || which == Parameter.RevealWindow || which == Parameter.AuditClaimWindow
                || which == Parameter.AuditRevealWindow
        ) return (60, 30 days);
        return (0, BPS); // TimeoutSlashBps, FraudStakeSlashBps, AuditPoolShareBps
    }

    /// @inheritdoc IJobMarketCore
    function currentTerms() public view returns (Terms) {
        MarketConfig memory c = _config;
        return TermsLib.pack(
            c.feeBps,
            c.collateralBps,
            c.timeoutSlashBps,
            c.challengeWindow,
            c.revealWindow,
            c.pMinBps,
            c.probationJobs,
            c.auditRewardBps,
            c.auditCollateralBps,
            c.flags & FLAG_EXTERNAL_RANDOMNESS != 0,
            c.auditClaimWindow,
            c.auditRevealWindow
        );
    }

    /// @inheritdoc IJobMarketCore
    function jobRecord(bytes32 jobId) external view returns (JobRecord memory r) {
        JobSlot slot = _jobs[jobId];
        r.state = slot.state();
        if (r.state == JobState.Claimed) {
            r.provider = slot.claimant();
            r.providerId = slot.claimantId();
            r.commitDeadline = slot.commitDeadline();
        } else if (r.state >= JobState.Committed && r.state <= JobState.Escalated) {
            r.providerId = slot.providerId();
            r.provider = _registry.providerById(r.providerId);
            r.committedAt = slot.clock();
            r.commitBlock = slot.commitBlock();
            r.commitment = slot.digest();
        }
    }

    /// @inheritdoc IJobMarketCore
    function jobState(bytes32 jobId) external view returns (JobState) {
        return _jobs[jobId].state();
    }

    /// @inheritdoc IJobMarketCore
    function commitmentHash(bytes32 jobId, address provider, bytes32 resultRoot, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return _commitmentHash(jobId, provider, resultRoot, salt);
    }

    /// @inheritdoc IJobMarketCore
    function hashJob(Job calldata job) external pure returns (bytes32) {
        return _hashJob(job);
    }

    /// @inheritdoc IJobMarketCore
    function offerDigest(bytes32 jobId, uint40 expiry) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(OFFER_TYPEHASH, jobId, expiry)));
    }

    /// @inheritdoc IJobMarketCore
    function collateralOf(Job calldata job) external pure returns (uint256) {
        return _collateralOf(job.request.price, job.terms.collateralBps());
    }

    /* INTERNAL: JOBS */

    /// @dev Validates the request, derives the job and its id, checks the id is new, emits JobCreated.
    function _openJob(JobRequest calldata request, string calldata specURI) private returns (bytes32 jobId, Terms terms) {
        _validateRequest(request);
        terms = currentTerms();
        Job memory job = Job(msg.sender, request, terms);
        jobId = keccak256(abi.encode(job));
        if (_jobs[jobId].state() != JobState.None) revert JobMarketJobExists(jobId);
        emit JobCreated(jobId, msg.sender, job, specURI);
    }

    function _validateRequest(JobRequest calldata r) private {
        MarketConfig memory c = _config;
        if (c.flags & FLAG_PAUSED != 0) _expectNotPaused();
        if (!_tokens[r.paymentToken].allowed) revert JobMarketTokenNotAllowed(r.paymentToken);
        if (r.price == 0) revert JobMarketInvalidRequest("price");
        if (r.workUnits == 0) revert JobMarketInvalidRequest("workUnits");
        if (r.specHash == bytes32(0)) revert JobMarketInvalidRequest("specHash");
        Requirements q = r.requirements;
        if (!q.isWellFormed() || q.runtime() >= 16) revert JobMarketInvalidRequest("requirements");
        if (q.commons() && msg.sender != _commons) revert JobMarketNotCommons(msg.sender);
        Verification v = r.verification;
        if (
            !v.isWellFormed() || v.chunks() == 0 || v.auditChunks() == 0 || v.auditChunks() > v.chunks()
                || v.auditChunks() > 64 || v.auditBps() > BPS
        ) revert JobMarketInvalidRequest("verification");
        if (r.claimBy <= block.timestamp) revert JobMarketInvalidRequest("claimBy");
        if (r.computeWindow < c.minComputeWindow || r.computeWindow > c.maxComputeWindow) {
            revert JobMarketComputeWindowOutOfBounds(r.computeWindow, c.minComputeWindow, c.maxComputeWindow);
        }
    }

    /// @dev Reverts unless `provider` may take the job; returns its registry id. `checkPostedPrice` is
    /// false for signed offers: the provider agreed to that very price.
    function _checkEligible(
        bytes32 jobId,
        address consumer,
        JobRequest calldata r,
        address provider,
        bool checkPostedPrice
    ) private view returns (uint32 providerId) {
        if (r.targetProvider != address(0) && r.targetProvider != provider) {
            revert JobMarketIneligible(jobId, provider, IProviderRegistry.Eligibility.NotTargetProvider);
        }
        if (provider == consumer) revert JobMarketIneligible(jobId, provider, IProviderRegistry.Eligibility.IsConsumer);
        IProviderRegistry.Eligibility eligibility;
        (eligibility, providerId) =
            _registry.checkEligibility(provider, r.paymentToken, r.requirements, r.price, r.workUnits, checkPostedPrice);
        if (eligibility == IProviderRegistry.Eligibility.ClaimsPaused) revert JobMarketPaused(_guardian.pausedUntil);
        if (eligibility != IProviderRegistry.Eligibility.Eligible) revert JobMarketIneligible(jobId, provider, eligibility);
    }

    /// @dev Reached only when the paused flag is set: reverts while the pause lasts, else clears the flag
    /// so that creating jobs reads nothing extra again.
    function _expectNotPaused() private {
        uint256 until = _guardian.pausedUntil;
        if (block.timestamp < until) revert JobMarketPaused(until);
        _config.flags &= ~FLAG_PAUSED;
    }

    /// @dev Records the claim and takes the collateral from the provider's internal balance; returns
    /// the part of it that must still be pulled by transfer.
    function _assign(bytes32 jobId, JobRequest calldata r, Terms terms, address provider, uint32 providerId)
        private
        returns (uint256 shortfall)
    {
        _jobs[jobId] = JobSlots.claimed(provider, block.timestamp + r.computeWindow, providerId);
        shortfall = _debit(r.paymentToken, provider, _collateralOf(r.price, terms.collateralBps()));
        emit JobClaimed(jobId, provider);
    }

    /// @dev The claimant missed its commit deadline: timeoutSlashBps of S to the consumer, the rest back.
    function _timeOut(bytes32 jobId, Job calldata job, address provider) private {
        uint256 collateral = _collateralOf(job.request.price, job.terms.collateralBps());
        uint256 toConsumer = collateral * job.terms.timeoutSlashBps() / BPS;
        IERC20 token = job.request.paymentToken;
        _credit(token, job.consumer, toConsumer);
        _credit(token, provider, collateral - toConsumer);
        _registry.recordTimedOut(provider);
        emit JobTimedOut(jobId, provider, toConsumer, collateral - toConsumer);
    }

    function _refund(bytes32 jobId, Job calldata job) private {
        _jobs[jobId] = JobSlots.only(JobState.Refunded);
        _credit(job.request.paymentToken, job.consumer, job.request.price);
        emit JobRefunded(jobId, job.consumer, job.request.price);
    }

    /// @dev A provider that committed but never revealed is treated as a fraud without auditors: P back
    /// to the consumer, S split between consumer and treasury, stake slashed, provider jailed.
    function _missedReveal(bytes32 jobId, Job calldata job, address provider) private {
        _jobs[jobId] = JobSlots.only(JobState.Slashed);
        IERC20 token = job.request.paymentToken;
        (uint256 toConsumer,, uint256 toTreasury) = _splitForfeit(
            token, _collateralOf(job.request.price, job.terms.collateralBps()), job.consumer, address(0), address(0)
        );
        _credit(token, job.consumer, job.request.price);
        uint256 slashed = _registry.slash(provider, _verification.fraudStakeSlashBps, true);
        emit JobRevealMissed(jobId, provider, toConsumer, toTreasury, slashed);
    }

    /// @dev Whether a committed job whose reveal window has closed could not be drawn through no fault of
    /// its provider: it draws from a governed source that still answers Pending (or fails), so `settle`
    /// refused the provider all along (`JobMarketRandomnessNotReady`); or governance replaced the source
    /// since the commit, so the source that decides now is not the one the provider faced. The built-in
    /// source is Pending only until the block after the commit block exists: then this reverts
    /// (`JobMarketRandomnessNotReady`), and a call a block later slashes the missed reveal.
    function _undrawable(bytes32 jobId, Job calldata job, JobSlot slot) private view returns (bool) {
        uint256 commitBlock = slot.commitBlock();
        bool external_ = job.terms.externalRandomness();
        if (external_ && _randomnessSetBlock > commitBlock) return true;
        (IRandomnessSource.Availability availability,) = _randomnessOf(commitBlock, external_);
        if (availability != IRandomnessSource.Availability.Pending) return false;
        if (external_ && address(_randomness) != address(0)) return true;
        revert JobMarketRandomnessNotReady(jobId, commitBlock);
    }

    /// @dev The reveal window closed with no draw possible: nobody is at fault. P back to the consumer,
    /// S back to the provider, no slash.
    function _voidUndrawn(bytes32 jobId, Job calldata job, address provider) private {
        uint256 collateral = _collateralOf(job.request.price, job.terms.collateralBps());
        emit JobVoided(jobId, provider, collateral); // before `JobRefunded`: a reader knows why first
        _refund(jobId, job);
        _credit(job.request.paymentToken, provider, collateral);
    }

    function _expectPast(bytes32 jobId, uint256 deadline) private view {
        if (block.timestamp <= deadline) revert JobMarketDeadlineNotReached(jobId, deadline);
    }

    /* INTERNAL: BALANCES */

    function _withdraw(IERC20 token, uint256 amount, address to) private {
        if (amount == 0) revert JobMarketZeroAmount();
        if (to == address(0)) revert JobMarketZeroAddress();
        Account storage a = _accounts[token][msg.sender];
        uint256 balance = a.balance;
        if (balance < amount) revert JobMarketInsufficientBalance(token, msg.sender, balance, amount);
        // Safe: checked just above.
        unchecked {
            a.balance = uint128(balance - amount);
        }
        _sweepFees(token, msg.sender);
        emit Withdrawn(token, msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    function _sweepFees(IERC20 token, address provider) private {
        Account storage a = _accounts[token][provider];
        uint256 fees = a.feesDue;
        if (fees == 0) return;
        a.feesDue = 0;
        uint256 toPool = fees * _verification.auditPoolShareBps / BPS;
        TokenState storage t = _tokens[token];
        t.auditPool += toPool.toUint120();
        t.treasuryAccrual += uint128(fees - toPool);
        emit FeesSwept(token, provider, fees, toPool);
    }

    /* INTERNAL: GOVERNANCE */

    /// @dev pMin * (1 - r) * (1 + collateralFactor) > 1, in basis points.
    function _checkEconomicBound() private view {
        uint256 p = _config.pMinBps;
        uint256 r = _verification.assumedCollusionBps;
        uint256 s = _config.collateralBps;
        if (p * (BPS - r) * (BPS + s) <= BPS * BPS * BPS) revert JobMarketEconomicBoundBroken(p, r, s);
    }

    function _setParameter(Parameter which, uint256 value) private {
        (uint256 min, uint256 max) = parameterBounds(which);
        if (value < min || value > max) revert JobMarketParameterOutOfBounds(which, value, min, max);
        uint256 old = parameter(which);
        MarketConfig storage c = _config;
        VerificationConfig storage v = _verification;
        if (which == Parameter.FeeBps) c.feeBps = uint16(value);
        else if (which == Parameter.CollateralBps) c.collateralBps = uint16(value);
        else if (which == Parameter.TimeoutSlashBps) c.timeoutSlashBps = uint16(value);
        else if (which == Parameter.ChallengeWindow) c.challengeWindow = uint24(value);
        else if (which == Parameter.RevealWindow) c.revealWindow = uint24(value);
        else if (which == Parameter.PMinBps) c.pMinBps = uint16(value);
        else if (which == Parameter.ProbationJobs) c.probationJobs = uint8(value);
        else if (which == Parameter.AuditPoolShareBps) v.auditPoolShareBps = uint16(value);
        else if (which == Parameter.AuditRewardBps) c.auditRewardBps = uint16(value);
        else if (which == Parameter.AuditCollateralBps) c.auditCollateralBps = uint16(value);
        else if (which == Parameter.MinComputeWindow) c.minComputeWindow = uint24(value);
        else if (which == Parameter.MaxComputeWindow) c.maxComputeWindow = uint24(value);
        else if (which == Parameter.FraudStakeSlashBps) v.fraudStakeSlashBps = uint16(value);
        else if (which == Parameter.FraudConsumerBps) v.fraudConsumerBps = uint16(value);
        else if (which == Parameter.FraudAuditorBps) v.fraudAuditorBps = uint16(value);
        else if (which == Parameter.ChallengeBondBps) v.challengeBondBps = uint16(value);
        else if (which == Parameter.AssumedCollusionBps) v.assumedCollusionBps = uint16(value);
        else if (which == Parameter.AuditClaimWindow) c.auditClaimWindow = uint24(value);
        else if (which == Parameter.AuditRevealWindow) c.auditRevealWindow = uint24(value);
        else if (which == Parameter.EscalationWindow) v.escalationWindow = uint32(value);
        else _guardian.maxPauseDuration = uint32(value);
        emit ParameterSet(which, old, value);
    }

    /* FORWARDING */

    /// @notice Runs calls this contract does not implement (the {IJobAudits} functions) in the audit
    /// module, on this contract's storage. Not payable: the market takes no ether.
    fallback() external {
        _delegate(_auditModule);
    }

    /// @dev Delegatecalls `module` with the current calldata and returns or reverts with its result.
    function _delegate(address module) private {
        // Copies calldata to memory at 0 and the result over it: this frame never returns to Solidity.
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), module, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }
}
