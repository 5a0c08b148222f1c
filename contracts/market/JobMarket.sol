// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {JobSlot, JobSlots} from "../libraries/JobSlot.sol";
import {Requirements, Terms, TermsLib, Verification} from "../libraries/JobParams.sol";

/// @title JobMarket
/// @notice See {IJobMarket}. Owned by the governance timelock.
contract JobMarket is IJobMarket, Ownable, EIP712, ReentrancyGuardTransient {
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

    /// @dev Per payment token: allowlist flag and the treasury's accrued fees, one word.
    struct TokenState {
        bool allowed;
        uint128 treasuryAccrual;
    }

    uint256 internal constant BPS = 10_000;

    /// @notice EIP-712 type of a provider's offer.
    bytes32 public constant OFFER_TYPEHASH = keccak256("Offer(bytes32 jobId,uint40 expiry)");

    IProviderRegistry private immutable _registry;
    MarketConfig private _config;

    mapping(IERC20 token => TokenState) private _tokens;
    mapping(IERC20 token => mapping(address account => Account)) private _accounts;
    /// @dev The only per-job storage: one word (see JobSlot).
    mapping(bytes32 jobId => JobSlot) private _jobs;

    /// @param registry_ The provider registry (its `market` must be set to this contract).
    /// @param owner_ Initial owner (the deployer, who hands ownership to the timelock).
    /// @param config_ Initial parameters, each checked against its bounds.
    constructor(IProviderRegistry registry_, address owner_, MarketConfig memory config_)
        Ownable(owner_)
        EIP712("Meshwork JobMarket", "1")
    {
        if (address(registry_) == address(0)) revert JobMarketZeroAddress();
        _registry = registry_;
        // Maximum before minimum and auditor share before consumer share: each bound depends on the other.
        _setParameter(Parameter.FeeBps, config_.feeBps);
        _setParameter(Parameter.CollateralBps, config_.collateralBps);
        _setParameter(Parameter.TimeoutSlashBps, config_.timeoutSlashBps);
        _setParameter(Parameter.ChallengeWindow, config_.challengeWindow);
        _setParameter(Parameter.RevealWindow, config_.revealWindow);
        _setParameter(Parameter.MaxComputeWindow, config_.maxComputeWindow);
        _setParameter(Parameter.MinComputeWindow, config_.minComputeWindow);
        _setParameter(Parameter.FraudStakeSlashBps, config_.fraudStakeSlashBps);
        _setParameter(Parameter.FraudAuditorBps, config_.fraudAuditorBps);
        _setParameter(Parameter.FraudConsumerBps, config_.fraudConsumerBps);
    }

    /* BALANCES */

    /// @inheritdoc IJobMarket
    function deposit(IERC20 token, address account, uint256 amount) external nonReentrant {
        if (!_tokens[token].allowed) revert JobMarketTokenNotAllowed(token);
        if (amount == 0) revert JobMarketZeroAmount();
        if (account == address(0)) revert JobMarketZeroAddress();
        _credit(token, account, amount);
        emit Deposited(token, account, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IJobMarket
    function withdraw(IERC20 token, uint256 amount, address to) external nonReentrant {
        _withdraw(token, amount, to);
    }

    /// @inheritdoc IJobMarket
    function withdrawBatch(Withdrawal[] calldata withdrawals, address to) external nonReentrant {
        for (uint256 i; i < withdrawals.length; ++i) {
            _withdraw(withdrawals[i].token, withdrawals[i].amount, to);
        }
    }

    /// @inheritdoc IJobMarket
    function sweepFees(IERC20 token, address[] calldata providers) external {
        for (uint256 i; i < providers.length; ++i) {
            _sweepFees(token, providers[i]);
        }
    }

    /* JOBS */

    /// @inheritdoc IJobMarket
    function createJob(JobRequest calldata request, string calldata specURI)
        external
        nonReentrant
        returns (bytes32 jobId)
    {
        (jobId,) = _openJob(request, specURI);
        _jobs[jobId] = JobSlots.only(JobState.Open);
        _collect(request.paymentToken, msg.sender, request.price);
    }

    /// @inheritdoc IJobMarket
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

    /// @inheritdoc IJobMarket
    function cancel(Job calldata job) external {
        bytes32 jobId = hashJob(job);
        _expectState(jobId, _jobs[jobId].state(), JobState.Open);
        if (msg.sender != job.consumer) revert JobMarketNotConsumer(jobId, msg.sender);
        _jobs[jobId] = JobSlots.only(JobState.Cancelled);
        _credit(job.request.paymentToken, job.consumer, job.request.price);
        emit JobCancelled(jobId, job.consumer, job.request.price);
    }

    /// @inheritdoc IJobMarket
    function claim(Job calldata job) external nonReentrant {
        bytes32 jobId = hashJob(job);
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

    /// @inheritdoc IJobMarket
    function commit(bytes32 jobId, bytes32 commitment) external {
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Claimed);
        if (msg.sender != slot.claimant()) revert JobMarketNotProvider(jobId, msg.sender);
        uint256 deadline = slot.commitDeadline();
        if (block.timestamp > deadline) revert JobMarketDeadlinePassed(jobId, deadline);
        if (JobSlots.truncate(commitment) == 0) revert JobMarketZeroCommitment(jobId);
        _jobs[jobId] = JobSlots.committed(slot.claimantId(), block.timestamp, block.number, commitment);
        emit JobCommitted(jobId, msg.sender, commitment);
    }

    /// @inheritdoc IJobMarket
    function settle(Job calldata job, address provider, bytes32 resultRoot, bytes32 salt, string calldata outputURI)
        external
    {
        bytes32 jobId = hashJob(job);
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Committed);
        Terms terms = job.terms;
        uint256 windowEnd = slot.committedAt() + terms.challengeWindow();
        if (block.timestamp < windowEnd) revert JobMarketDeadlineNotReached(jobId, windowEnd);
        uint256 revealBy = windowEnd + terms.revealWindow();
        if (block.timestamp > revealBy) revert JobMarketDeadlinePassed(jobId, revealBy);
        if (JobSlots.truncate(commitmentHash(jobId, provider, resultRoot, salt)) != slot.commitment()) {
            revert JobMarketCommitmentMismatch(jobId);
        }

        _jobs[jobId] = JobSlots.only(JobState.Settled);
        uint256 price = job.request.price;
        uint256 fee = price * terms.feeBps() / BPS;
        uint256 payout = price - fee;
        Account storage account = _accounts[job.request.paymentToken][provider];
        account.balance = (account.balance + payout + _collateralOf(price, terms)).toUint128();
        account.feesDue = (account.feesDue + fee).toUint96();
        ++account.completed;
        emit JobSettled(jobId, provider, resultRoot, outputURI, payout, fee);
    }

    /// @inheritdoc IJobMarket
    function enforceDeadline(Job calldata job) external {
        bytes32 jobId = hashJob(job);
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
        } else if (state == JobState.Committed) {
            _expectPast(jobId, slot.committedAt() + job.terms.challengeWindow() + job.terms.revealWindow());
            _missedReveal(jobId, job, _registry.providerById(slot.committerId()));
        } else if (state == JobState.None) {
            revert JobMarketUnknownJob(jobId);
        } else {
            revert JobMarketNothingToEnforce(jobId, state);
        }
    }

    /* GOVERNANCE */

    /// @inheritdoc IJobMarket
    function setPaymentToken(IERC20 token, bool allowed) external onlyOwner {
        if (address(token) == address(0)) revert JobMarketZeroAddress();
        _tokens[token].allowed = allowed;
        emit PaymentTokenSet(token, allowed);
    }

    /// @inheritdoc IJobMarket
    function setParameter(Parameter which, uint256 value) external onlyOwner {
        _setParameter(which, value);
    }

    /// @inheritdoc IJobMarket
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

    /// @inheritdoc IJobMarket
    function registry() external view returns (IProviderRegistry) {
        return _registry;
    }

    /// @inheritdoc IJobMarket
    function isPaymentToken(IERC20 token) external view returns (bool) {
        return _tokens[token].allowed;
    }

    /// @inheritdoc IJobMarket
    function balanceOf(IERC20 token, address account) external view returns (uint256) {
        return _accounts[token][account].balance;
    }

    /// @inheritdoc IJobMarket
    function feesDue(IERC20 token, address provider) external view returns (uint256) {
        return _accounts[token][provider].feesDue;
    }

    /// @inheritdoc IJobMarket
    function completedJobs(IERC20 token, address provider) external view returns (uint256) {
        return _accounts[token][provider].completed;
    }

    /// @inheritdoc IJobMarket
    function treasuryAccrual(IERC20 token) external view returns (uint256) {
        return _tokens[token].treasuryAccrual;
    }

    /// @inheritdoc IJobMarket
    function config() external view returns (MarketConfig memory) {
        return _config;
    }

    /// @inheritdoc IJobMarket
    function parameter(Parameter which) public view returns (uint256) {
        MarketConfig memory c = _config;
        if (which == Parameter.FeeBps) return c.feeBps;
        if (which == Parameter.CollateralBps) return c.collateralBps;
        if (which == Parameter.TimeoutSlashBps) return c.timeoutSlashBps;
        if (which == Parameter.ChallengeWindow) return c.challengeWindow;
        if (which == Parameter.RevealWindow) return c.revealWindow;
        if (which == Parameter.MinComputeWindow) return c.minComputeWindow;
        if (which == Parameter.MaxComputeWindow) return c.maxComputeWindow;
        if (which == Parameter.FraudStakeSlashBps) return c.fraudStakeSlashBps;
        if (which == Parameter.FraudConsumerBps) return c.fraudConsumerBps;
        return c.fraudAuditorBps;
    }

    /// @inheritdoc IJobMarket
    function parameterBounds(Parameter which) public view returns (uint256 min, uint256 max) {
        if (which == Parameter.FeeBps) return (0, 1_000);
        if (which == Parameter.CollateralBps) return (0, 60_000);
        if (which == Parameter.ChallengeWindow || which == Parameter.RevealWindow) return (60, 30 days);
        if (which == Parameter.MinComputeWindow) return (60, _config.maxComputeWindow);
        if (which == Parameter.MaxComputeWindow) return (Math.max(60, _config.minComputeWindow), 365 days);
        if (which == Parameter.FraudConsumerBps) return (0, BPS - _config.fraudAuditorBps);
        if (which == Parameter.FraudAuditorBps) return (0, BPS - _config.fraudConsumerBps);
        return (0, BPS); // TimeoutSlashBps, FraudStakeSlashBps
    }

    /// @inheritdoc IJobMarket
    function currentTerms() public view returns (Terms) {
        MarketConfig memory c = _config;
        return TermsLib.pack(c.feeBps, c.collateralBps, c.timeoutSlashBps, c.challengeWindow, c.revealWindow);
    }

    /// @inheritdoc IJobMarket
    function jobRecord(bytes32 jobId) external view returns (JobRecord memory r) {
        JobSlot slot = _jobs[jobId];
        r.state = slot.state();
        if (r.state == JobState.Claimed) {
            r.provider = slot.claimant();
            r.providerId = slot.claimantId();
            r.commitDeadline = slot.commitDeadline();
        } else if (r.state == JobState.Committed) {
            r.providerId = slot.committerId();
            r.provider = _registry.providerById(r.providerId);
            r.committedAt = slot.committedAt();
            r.commitBlock = slot.commitBlock();
            r.commitment = slot.commitment();
        }
    }

    /// @inheritdoc IJobMarket
    function jobState(bytes32 jobId) external view returns (JobState) {
        return _jobs[jobId].state();
    }

    /// @inheritdoc IJobMarket
    function commitmentHash(bytes32 jobId, address provider, bytes32 resultRoot, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobId, provider, resultRoot, salt));
    }

    /// @inheritdoc IJobMarket
    function hashJob(Job calldata job) public pure returns (bytes32) {
        return keccak256(abi.encode(job));
    }

    /// @inheritdoc IJobMarket
    function offerDigest(bytes32 jobId, uint40 expiry) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(OFFER_TYPEHASH, jobId, expiry)));
    }

    /// @inheritdoc IJobMarket
    function collateralOf(Job calldata job) external pure returns (uint256) {
        return _collateralOf(job.request.price, job.terms);
    }

    /* INTERNAL: JOBS */

    /// @dev Validates the request, derives the job and its id, checks the id is new, emits JobCreated.
    function _openJob(JobRequest calldata request, string calldata specURI)
        private
        returns (bytes32 jobId, Terms terms)
    {
        _validateRequest(request);
        terms = currentTerms();
        Job memory job = Job(msg.sender, request, terms);
        jobId = keccak256(abi.encode(job));
        if (_jobs[jobId].state() != JobState.None) revert JobMarketJobExists(jobId);
        emit JobCreated(jobId, msg.sender, job, specURI);
    }

    function _validateRequest(JobRequest calldata r) private view {
        if (!_tokens[r.paymentToken].allowed) revert JobMarketTokenNotAllowed(r.paymentToken);
        if (r.price == 0) revert JobMarketInvalidRequest("price");
        if (r.workUnits == 0) revert JobMarketInvalidRequest("workUnits");
        if (r.specHash == bytes32(0)) revert JobMarketInvalidRequest("specHash");
        Requirements q = r.requirements;
        if (!q.isWellFormed() || q.runtime() >= 16) revert JobMarketInvalidRequest("requirements");
        Verification v = r.verification;
        if (!v.isWellFormed() || v.chunks() == 0 || v.auditChunks() == 0 || v.auditChunks() > v.chunks()) {
            revert JobMarketInvalidRequest("verification");
        }
        if (v.auditBps() > BPS) revert JobMarketInvalidRequest("verification");
        if (r.claimBy <= block.timestamp) revert JobMarketInvalidRequest("claimBy");
        MarketConfig memory c = _config;
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
        if (eligibility != IProviderRegistry.Eligibility.Eligible) revert JobMarketIneligible(jobId, provider, eligibility);
    }

    /// @dev Records the claim and takes the collateral from the provider's internal balance; returns
    /// the part of it that must still be pulled by transfer.
    function _assign(bytes32 jobId, JobRequest calldata r, Terms terms, address provider, uint32 providerId)
        private
        returns (uint256 shortfall)
    {
        _jobs[jobId] = JobSlots.claimed(provider, block.timestamp + r.computeWindow, providerId);
        shortfall = _debit(r.paymentToken, provider, _collateralOf(r.price, terms));
        emit JobClaimed(jobId, provider);
    }

    /// @dev The claimant missed its commit deadline: timeoutSlashBps of S to the consumer, the rest back.
    function _timeOut(bytes32 jobId, Job calldata job, address provider) private {
        uint256 collateral = _collateralOf(job.request.price, job.terms);
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
        MarketConfig memory c = _config;
        uint256 collateral = _collateralOf(job.request.price, job.terms);
        uint256 toTreasury = collateral * (BPS - c.fraudConsumerBps - c.fraudAuditorBps) / BPS;
        uint256 toConsumer = collateral - toTreasury;
        IERC20 token = job.request.paymentToken;
        _credit(token, job.consumer, job.request.price + toConsumer);
        _tokens[token].treasuryAccrual += toTreasury.toUint128();
        uint256 slashed = _registry.slash(provider, c.fraudStakeSlashBps, true);
        emit JobRevealMissed(jobId, provider, toConsumer, toTreasury, slashed);
    }

    function _expectState(bytes32 jobId, JobState current, JobState expected) private pure {
        if (current != expected) {
            if (current == JobState.None) revert JobMarketUnknownJob(jobId);
            revert JobMarketUnexpectedState(jobId, current, expected);
        }
    }

    function _expectPast(bytes32 jobId, uint256 deadline) private view {
        if (block.timestamp <= deadline) revert JobMarketDeadlineNotReached(jobId, deadline);
    }

    function _collateralOf(uint256 price, Terms terms) private pure returns (uint256) {
        return price * terms.collateralBps() / BPS;
    }

    /* INTERNAL: BALANCES */

    function _credit(IERC20 token, address account, uint256 amount) private {
        if (amount == 0) return;
        Account storage a = _accounts[token][account];
        a.balance = (a.balance + amount).toUint128();
    }

    /// @dev Takes `amount` from the internal balance; returns what is missing (to pull by transfer).
    function _debit(IERC20 token, address account, uint256 amount) private returns (uint256 shortfall) {
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
    function _collect(IERC20 token, address account, uint256 amount) private {
        uint256 shortfall = _debit(token, account, amount);
        if (shortfall != 0) token.safeTransferFrom(account, address(this), shortfall);
    }

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
        _tokens[token].treasuryAccrual += uint128(fees);
        emit FeesSwept(token, provider, fees);
    }

    /* INTERNAL: GOVERNANCE */

    function _setParameter(Parameter which, uint256 value) private {
        (uint256 min, uint256 max) = parameterBounds(which);
        if (value < min || value > max) revert JobMarketParameterOutOfBounds(which, value, min, max);
        uint256 old = parameter(which);
        MarketConfig storage c = _config;
        if (which == Parameter.FeeBps) c.feeBps = uint16(value);
        else if (which == Parameter.CollateralBps) c.collateralBps = uint16(value);
        else if (which == Parameter.TimeoutSlashBps) c.timeoutSlashBps = uint16(value);
        else if (which == Parameter.ChallengeWindow) c.challengeWindow = uint32(value);
        else if (which == Parameter.RevealWindow) c.revealWindow = uint32(value);
        else if (which == Parameter.MinComputeWindow) c.minComputeWindow = uint32(value);
        else if (which == Parameter.MaxComputeWindow) c.maxComputeWindow = uint32(value);
        else if (which == Parameter.FraudStakeSlashBps) c.fraudStakeSlashBps = uint16(value);
        else if (which == Parameter.FraudConsumerBps) c.fraudConsumerBps = uint16(value);
        else c.fraudAuditorBps = uint16(value);
        emit ParameterSet(which, old, value);
    }
}
