// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IJobAudits} from "../interfaces/IJobAudits.sol";
import {IMarketAdmin} from "../interfaces/IMarketAdmin.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {JobSlot, JobSlots} from "../libraries/JobSlot.sol";
import {MerkleSha256} from "../libraries/MerkleSha256.sol";
import {Terms, Verification} from "../libraries/JobParams.sol";
import {MarketBase} from "./MarketBase.sol";

/// @title AuditModule
/// @notice See {IJobAudits} and {IMarketAdmin}: the market's functions off the hot path. Runs only by
/// `delegatecall` from a `JobMarket`, on the market's storage; calling it directly reverts. Money never
/// leaves the market: every payout is an internal balance.
contract AuditModule is IJobAudits, IMarketAdmin, MarketBase {
    address private immutable _self;

    /// @param registry_ The registry of the market this module will serve.
    constructor(IProviderRegistry registry_) MarketBase(registry_, msg.sender) {
        _self = address(this);
    }

    modifier viaMarket() {
        if (address(this) == _self) revert JobMarketDirectModuleCall();
        _;
    }

    /* AUDITS */

    /// @inheritdoc IJobAudits
    function audit(Job calldata job, bytes32 commitment) external viaMarket nonReentrant {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        uint48 seed;
        bool challenged;
        if (slot.state() == JobState.Committed) {
            // Fold the draw into the claim: the auditor learnt the sample from `sampleOf`.
            address provider = _registry.providerById(slot.providerId());
            if (!_drawAudit(jobId, job, slot, _accounts[job.request.paymentToken][provider].completed, false)) {
                revert JobMarketNotDrawnForAudit(jobId);
            }
            // As `draw`: past the reveal window `enforceDeadline` decides; a late audit must not rescue a
            // provider that withheld its reveal (its own second address committing to its leaves).
            uint256 revealBy = slot.clock() + job.terms.challengeWindow() + job.terms.revealWindow();
            if (block.timestamp > revealBy) revert JobMarketDeadlinePassed(jobId, revealBy);
            seed = _seed(jobId, job, slot);
        } else {
            _expectState(jobId, slot.state(), JobState.Audited);
            AuditRecord memory record = _audits[jobId];
            _expectPhase(jobId, record.phase, AuditPhase.AwaitingAuditor);
            if (block.timestamp > record.deadline) revert JobMarketDeadlinePassed(jobId, record.deadline);
            if (record.challenged && msg.sender == _challenges[jobId].challenger) {
                revert JobMarketConflictOfInterest(jobId, msg.sender);
            }
            seed = record.seed;
            challenged = record.challenged;
        }
        _checkAuditor(jobId, job, slot, msg.sender);
        Terms terms = job.terms;
        _audits[jobId] = AuditRecord(
            msg.sender, uint32(block.timestamp + terms.revealWindow()), AuditPhase.AuditorCommitted, seed, challenged
        );
        _auditorDigests[jobId] = commitment;
        _jobs[jobId] = slot.withState(JobState.Revealing);
        emit AuditClaimed(jobId, msg.sender, commitment);
        _collect(job.request.paymentToken, msg.sender, _collateralOf(job.request.price, terms.auditCollateralBps()));
    }

    /// @inheritdoc IJobAudits
    function revealResult(
        Job calldata job,
        address provider,
        bytes32 resultRoot,
        bytes32 salt,
        string calldata outputURI,
        bytes32[] calldata leaves,
        bytes32[][] calldata proofs
    ) external viaMarket {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Revealing);
        AuditRecord memory record = _audits[jobId];
        if (block.timestamp > record.deadline) revert JobMarketDeadlinePassed(jobId, record.deadline);
        _expectOpens(jobId, slot, provider, resultRoot, salt);
        Verification v = job.request.verification;
        uint32[] memory sample = _sample(jobId, record.seed, record.challenged, v);
        _expectLength(jobId, leaves.length, sample.length);
        _expectLength(jobId, proofs.length, sample.length);
        for (uint256 k; k < sample.length; ++k) {
            if (!MerkleSha256.verify(resultRoot, v.chunks(), sample[k], leaves[k], proofs[k])) {
                revert JobMarketInvalidProof(jobId, k);
            }
        }
        emit ResultRevealed(jobId, provider, resultRoot, outputURI, leaves);
        if (auditorCommitmentHash(jobId, record.auditor, leaves) == _auditorDigests[jobId]) {
            _auditPassed(jobId, job, provider, record.auditor);
            return;
        }
        _jobs[jobId] = slot.withState(JobState.Disputed).withDigest(keccak256(abi.encode(leaves))).withDisputed(0);
        _audits[jobId].phase = AuditPhase.AwaitingAuditorReveal;
        _audits[jobId].deadline = uint32(block.timestamp + job.terms.auditRevealWindow());
    }

    /// @inheritdoc IJobAudits
    function revealAudit(Job calldata job, bytes32[] calldata leaves, bytes32[] calldata providerLeaves)
        external
        viaMarket
    {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Disputed);
        AuditRecord memory record = _audits[jobId];
        _expectPhase(jobId, record.phase, AuditPhase.AwaitingAuditorReveal);
        if (block.timestamp > record.deadline) revert JobMarketDeadlinePassed(jobId, record.deadline);
        if (auditorCommitmentHash(jobId, record.auditor, leaves) != _auditorDigests[jobId]) {
            revert JobMarketAuditCommitmentMismatch(jobId);
        }
        uint256 m = job.request.verification.auditChunks();
        _expectProviderLeaves(jobId, slot, providerLeaves, m);
        // Exactly m: a commitment to more leaves would match on the first m and leave no tie-break possible.
        _expectLength(jobId, leaves.length, m);

        uint64 disputed;
        for (uint256 k; k < m; ++k) {
            if (leaves[k] != providerLeaves[k]) disputed |= uint64(1) << uint64(k);
        }
        emit AuditRevealed(jobId, record.auditor, leaves, disputed);
        _auditorDigests[jobId] = _dispute(address(0), keccak256(abi.encode(leaves)));
        _jobs[jobId] = slot.withDisputed(disputed);
        _audits[jobId].phase = AuditPhase.AwaitingTieBreaker;
        _audits[jobId].deadline = uint32(block.timestamp + job.terms.auditClaimWindow());
    }

    /* DISPUTES */

    /// @inheritdoc IJobAudits
    function tieBreak(Job calldata job) external viaMarket nonReentrant {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Disputed);
        AuditRecord storage record = _audits[jobId];
        _expectPhase(jobId, record.phase, AuditPhase.AwaitingTieBreaker);
        if (block.timestamp > record.deadline) revert JobMarketDeadlinePassed(jobId, record.deadline);
        if (msg.sender == record.auditor || msg.sender == _challengerOf(jobId)) {
            revert JobMarketConflictOfInterest(jobId, msg.sender);
        }
        _checkAuditor(jobId, job, slot, msg.sender);
        _auditorDigests[jobId] = _dispute(msg.sender, _auditorDigests[jobId]);
        record.phase = AuditPhase.TieBreakerClaimed;
        record.deadline = uint32(block.timestamp + job.terms.auditRevealWindow());
        emit TieBreakClaimed(jobId, msg.sender);
        _collect(
            job.request.paymentToken, msg.sender, _collateralOf(job.request.price, job.terms.auditCollateralBps())
        );
    }

    /// @inheritdoc IJobAudits
    function revealTieBreak(
        Job calldata job,
        bytes32[] calldata leaves,
        bytes32[] calldata providerLeaves,
        bytes32[] calldata auditorLeaves
    ) external viaMarket {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Disputed);
        AuditRecord memory record = _audits[jobId];
        _expectPhase(jobId, record.phase, AuditPhase.TieBreakerClaimed);
        if (block.timestamp > record.deadline) revert JobMarketDeadlinePassed(jobId, record.deadline);
        bytes32 dispute = _auditorDigests[jobId];
        address tieBreaker = _tieBreakerOf(dispute);
        if (msg.sender != tieBreaker) revert JobMarketNotTieBreaker(jobId, msg.sender);
        uint256 m = job.request.verification.auditChunks();
        _expectProviderLeaves(jobId, slot, providerLeaves, m);
        _expectLength(jobId, auditorLeaves.length, m);
        if (_dispute(tieBreaker, keccak256(abi.encode(auditorLeaves))) != dispute) {
            revert JobMarketRevealedLeavesMismatch(jobId);
        }
        uint64 mask = slot.disputed();

        bool withProvider = true;
        bool withAuditor = true;
        uint256 j;
        for (uint256 k; k < m; ++k) {
            if (mask & (uint64(1) << uint64(k)) == 0) continue;
            if (j >= leaves.length) revert JobMarketWrongLeafCount(jobId, leaves.length, j + 1);
            withProvider = withProvider && leaves[j] == providerLeaves[k];
            withAuditor = withAuditor && leaves[j] == auditorLeaves[k];
            ++j;
        }
        _expectLength(jobId, leaves.length, j);
        emit TieBreakRevealed(jobId, tieBreaker, leaves);
        if (withAuditor) _providerFraud(jobId, job, slot, record.auditor, tieBreaker);
        else if (withProvider) _auditorFraud(jobId, job, slot, record.auditor, tieBreaker);
        else _escalate(jobId, slot);
    }

    /// @inheritdoc IJobAudits
    function resolveEscalation(Job calldata job, Verdict verdict) external viaMarket onlyOwner {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        _expectState(jobId, slot.state(), JobState.Escalated);
        _resolve(jobId, job, slot, verdict, true);
        emit EscalationResolved(jobId, verdict, true);
    }

    /* CHALLENGES */

    /// @inheritdoc IJobAudits
    function challenge(Job calldata job, bool named, uint32 chunk) external viaMarket nonReentrant {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        JobState state = slot.state();
        uint256 windowEnd;
        if (state == JobState.Committed) windowEnd = slot.clock() + job.terms.challengeWindow();
        else if (state == JobState.Challengeable) windowEnd = slot.clock();
        else _expectState(jobId, state, JobState.Committed);
        if (block.timestamp >= windowEnd) revert JobMarketChallengeWindowClosed(jobId, windowEnd);
        if (_registry.idOf(msg.sender) == slot.providerId()) revert JobMarketConflictOfInterest(jobId, msg.sender);
        if (state == JobState.Committed) {
            // A job the draw selects is under audit already: a challenge would only replace a drawn chunk
            // and take the consumer's share of S (for a provider's own second address, back to it).
            address provider = _registry.providerById(slot.providerId());
            if (_drawAudit(jobId, job, slot, _accounts[job.request.paymentToken][provider].completed, false)) {
                revert JobMarketAuditRequired(jobId);
            }
        }
        uint256 chunks = job.request.verification.chunks();
        if (named && chunk >= chunks) revert JobMarketChunkOutOfRange(jobId, chunk, chunks);

        uint16 bondBps = _verification.challengeBondBps;
        uint256 bond = _collateralOf(job.request.price, bondBps);
        _challenges[jobId] = Challenge(msg.sender, chunk, named, bondBps);
        _audits[jobId] = AuditRecord(
            address(0),
            uint32(block.timestamp + job.terms.auditClaimWindow()),
            AuditPhase.AwaitingAuditor,
            _seed(jobId, job, slot),
            true
        );
        // Under audit the clock is the commit time again.
        uint256 committedAt = state == JobState.Committed ? slot.clock() : windowEnd - job.terms.challengeWindow();
        _jobs[jobId] = slot.withState(JobState.Audited).withClock(committedAt);
        emit JobChallenged(jobId, msg.sender, bond, named, chunk);
        _collect(job.request.paymentToken, msg.sender, bond);
    }

    /// @inheritdoc IJobAudits
    function fundAuditPool(IERC20 token, uint256 amount) external viaMarket nonReentrant {
        if (!_tokens[token].allowed) revert JobMarketTokenNotAllowed(token);
        if (amount == 0) revert JobMarketZeroAmount();
        _tokens[token].auditPool += SafeCast.toUint120(amount);
        emit AuditPoolFunded(token, msg.sender, amount);
        _collect(token, msg.sender, amount);
    }

    /* ADMINISTRATION */

    /// @inheritdoc IMarketAdmin
    function setGuardian(address guardian_) external viaMarket onlyOwner {
        emit GuardianSet(_guardian.guardian, guardian_);
        _guardian.guardian = guardian_;
    }

    /// @inheritdoc IMarketAdmin
    function pause(uint256 duration) external viaMarket {
        GuardianState memory g = _guardian;
        if (msg.sender != g.guardian || g.guardian == address(0)) revert JobMarketNotGuardian(msg.sender);
        if (duration > g.maxPauseDuration) revert JobMarketPauseTooLong(duration, g.maxPauseDuration);
        if (g.pausedUntil != 0) {
            uint256 availableAt = uint256(g.pausedUntil) + g.maxPauseDuration;
            if (block.timestamp < availableAt) revert JobMarketPauseCooldown(availableAt);
        }
        uint256 until = block.timestamp + duration;
        _guardian.pausedUntil = uint40(until);
        _config.flags |= FLAG_PAUSED;
        _registry.pauseClaims(until);
        emit Paused(msg.sender, until);
    }

    /// @inheritdoc IMarketAdmin
    function unpause() external viaMarket {
        if (msg.sender != _guardian.guardian && msg.sender != owner()) revert JobMarketNotGuardian(msg.sender);
        // The pause ends now; the guardian's cooldown runs from here.
        if (_guardian.pausedUntil > block.timestamp) _guardian.pausedUntil = uint40(block.timestamp);
        _config.flags &= ~FLAG_PAUSED;
        _registry.pauseClaims(0);
        emit Unpaused(msg.sender);
    }

    /// @inheritdoc IMarketAdmin
    function setCommons(address commons_) external viaMarket onlyOwner {
        emit CommonsSet(_commons, commons_);
        _commons = commons_;
    }

    /// @inheritdoc IMarketAdmin
    function guardian() external view viaMarket returns (address) {
        return _guardian.guardian;
    }

    /// @inheritdoc IMarketAdmin
    function pausedUntil() external view viaMarket returns (uint256) {
        return _guardian.pausedUntil;
    }

    /// @inheritdoc IMarketAdmin
    function commons() external view viaMarket returns (address) {
        return _commons;
    }

    /* DEADLINES */

    /// @notice Reached through `JobMarket.enforceDeadline` for jobs under audit.
    function enforceDeadline(Job calldata job) external viaMarket {
        bytes32 jobId = _hashJob(job);
        JobSlot slot = _jobs[jobId];
        AuditRecord memory record = _audits[jobId];
        if (block.timestamp <= record.deadline) revert JobMarketDeadlineNotReached(jobId, record.deadline);
        AuditPhase phase = record.phase;
        if (phase == AuditPhase.AwaitingAuditor) {
            _abandonAudit(jobId, job, slot);
        } else if (phase == AuditPhase.AuditorCommitted) {
            // The provider did not reveal to its auditor: fraud, the auditor being the honest party.
            _providerFraud(jobId, job, slot, record.auditor, address(0));
        } else if (phase == AuditPhase.AwaitingAuditorReveal) {
            _auditorStalled(jobId, job, slot, record.auditor);
        } else if (phase == AuditPhase.AwaitingTieBreaker) {
            _escalate(jobId, slot);
        } else if (phase == AuditPhase.TieBreakerClaimed) {
            _tieBreakerStalled(jobId, job, slot);
        } else {
            _resolve(jobId, job, slot, Verdict.NoFault, false);
            emit EscalationResolved(jobId, Verdict.NoFault, false);
        }
    }

    /* VIEWS */

    /// @inheritdoc IJobAudits
    function auditOf(Job calldata job) external view viaMarket returns (AuditView memory a) {
        bytes32 jobId = _hashJob(job);
        AuditRecord memory record = _audits[jobId];
        a.phase = record.phase;
        a.deadline = record.deadline;
        a.auditor = record.auditor;
        if (record.phase >= AuditPhase.AwaitingTieBreaker) {
            a.tieBreaker = _tieBreakerOf(_auditorDigests[jobId]);
            a.disputed = _jobs[jobId].disputed();
        }
        if (record.challenged) a.challenger = _challenges[jobId].challenger;
        a.seed = record.seed;
        if (record.phase != AuditPhase.None) a.sample = _sample(jobId, record.seed, record.challenged, job.request.verification);
    }

    /// @inheritdoc IJobAudits
    function sampleOf(Job calldata job) external view viaMarket returns (uint32[] memory) {
        bytes32 jobId = _hashJob(job);
        AuditRecord memory record = _audits[jobId];
        if (record.phase != AuditPhase.None) return _sample(jobId, record.seed, record.challenged, job.request.verification);
        JobSlot slot = _jobs[jobId];
        if (slot.state() != JobState.Committed && slot.state() != JobState.Challengeable) {
            _expectState(jobId, slot.state(), JobState.Committed);
        }
        return _sample(jobId, _seed(jobId, job, slot), false, job.request.verification);
    }

    /// @inheritdoc IJobAudits
    function heldFor(Job calldata job) external view viaMarket returns (uint256 held) {
        bytes32 jobId = _hashJob(job);
        JobState state = _jobs[jobId].state();
        if (state == JobState.None || state >= JobState.Settled) return 0;
        uint256 price = job.request.price;
        held = price;
        if (state == JobState.Open) return held;
        Terms terms = job.terms;
        held += _collateralOf(price, terms.collateralBps());
        if (_audits[jobId].challenged) held += _bondOf(jobId, job);
        uint256 auditCollateral = _collateralOf(price, terms.auditCollateralBps());
        AuditRecord memory record = _audits[jobId];
        if (record.auditor != address(0)) held += auditCollateral;
        if (record.phase >= AuditPhase.AwaitingTieBreaker && _tieBreakerOf(_auditorDigests[jobId]) != address(0)) {
            held += auditCollateral;
        }
    }

    /// @inheritdoc IJobAudits
    function auditPool(IERC20 token) external view viaMarket returns (uint256) {
        return _tokens[token].auditPool;
    }

    /// @inheritdoc IJobAudits
    function auditorCommitmentHash(bytes32 jobId, address auditor, bytes32[] calldata leaves)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobId, auditor, leaves));
    }

    /// @inheritdoc IJobAudits
    function verifyChunk(bytes32 root, uint256 chunks, uint256 index, bytes32 leaf, bytes32[] calldata proof)
        external
        pure
        returns (bool)
    {
        return MerkleSha256.verify(root, chunks, index, leaf, proof);
    }

    /// @notice The registry this module was built for (the market checks it matches its own).
    function registryOfModule() external view returns (IProviderRegistry) {
        return _registry;
    }

    /* INTERNAL: OUTCOMES */

    /// @dev Leaves matched: the provider is paid, the auditor rewarded, a challenger's bond goes to the
    /// provider. `provider` was authenticated by opening its commitment.
    function _auditPassed(bytes32 jobId, Job calldata job, address provider, address auditor) private {
        _jobs[jobId] = JobSlots.only(JobState.Settled);
        _payProvider(job, provider);
        uint256 reward = _releaseAuditor(job, auditor, true);
        _settleChallenge(jobId, job, provider);
        _registry.recordAudit(provider, true);
        _clearAudit(jobId);
        emit AuditPassed(jobId, provider, auditor, reward);
        emit JobSettled(jobId, provider, bytes32(0), "");
    }

    /// @dev The provider's result is wrong: S split (consumer side / honest auditors / treasury), P back,
    /// stake slashed, provider jailed. A challenger that was right gets its bond back and the consumer side.
    function _providerFraud(bytes32 jobId, Job calldata job, JobSlot slot, address auditorA, address auditorB) private {
        address provider = _registry.providerById(slot.providerId());
        IERC20 token = job.request.paymentToken;
        _jobs[jobId] = JobSlots.only(JobState.Slashed);
        address challenger = _challengerOf(jobId);
        address consumerSide = challenger == address(0) ? job.consumer : challenger;
        (uint256 toConsumerSide, uint256 toAuditors, uint256 toTreasury) = _splitForfeit(
            token, _collateralOf(job.request.price, job.terms.collateralBps()), consumerSide, auditorA, auditorB
        );
        _credit(token, job.consumer, job.request.price);
        if (auditorA != address(0)) _releaseAuditor(job, auditorA, true);
        if (auditorB != address(0)) _releaseAuditor(job, auditorB, true);
        if (challenger != address(0)) _credit(token, challenger, _bondOf(jobId, job));
        uint256 slashed = _registry.slash(provider, _verification.fraudStakeSlashBps, true);
        _registry.recordAudit(provider, false);
        _clearAudit(jobId);
        emit FraudProven(jobId, provider, toConsumerSide, toAuditors, toTreasury, slashed);
    }

    /// @dev The auditor was in the minority: its collateral split (consumer / tie-breaker / treasury), its
    /// stake slashed and jailed; the provider is paid and gets a wrong challenger's bond.
    function _auditorFraud(bytes32 jobId, Job calldata job, JobSlot slot, address auditor, address tieBreaker) private {
        address provider = _registry.providerById(slot.providerId());
        IERC20 token = job.request.paymentToken;
        _jobs[jobId] = JobSlots.only(JobState.Settled);
        _payProvider(job, provider);
        uint256 collateral = _collateralOf(job.request.price, job.terms.auditCollateralBps());
        _splitForfeit(token, collateral, job.consumer, tieBreaker, address(0));
        if (tieBreaker != address(0)) _releaseAuditor(job, tieBreaker, true);
        _settleChallenge(jobId, job, provider);
        uint256 slashed = _registry.slash(auditor, _verification.fraudStakeSlashBps, true);
        _registry.recordAudit(provider, true);
        _clearAudit(jobId);
        emit AuditorSlashed(jobId, auditor, collateral, slashed);
        emit JobSettled(jobId, provider, bytes32(0), "");
    }

    /// @dev Nobody punished: consumer refunded, every collateral and bond returned. Auditors are paid their
    /// reward only on governance's verdict (`rewarded`): an escalation left to expire pays nothing from the
    /// pool, or addresses of one owner answering three ways could draw on it with every large job.
    function _noFault(bytes32 jobId, Job calldata job, JobSlot slot, address auditor, address tieBreaker, bool rewarded)
        private
    {
        IERC20 token = job.request.paymentToken;
        _jobs[jobId] = JobSlots.only(JobState.Refunded);
        address provider = _registry.providerById(slot.providerId());
        _credit(token, job.consumer, job.request.price);
        _credit(token, provider, _collateralOf(job.request.price, job.terms.collateralBps()));
        if (auditor != address(0)) _releaseAuditor(job, auditor, rewarded);
        if (tieBreaker != address(0)) _releaseAuditor(job, tieBreaker, rewarded);
        address challenger = _challengerOf(jobId);
        if (challenger != address(0)) _credit(token, challenger, _bondOf(jobId, job));
        _clearAudit(jobId);
        emit JobRefunded(jobId, job.consumer, job.request.price);
    }

    function _resolve(bytes32 jobId, Job calldata job, JobSlot slot, Verdict verdict, bool byGovernance) private {
        address auditor = _audits[jobId].auditor;
        address tieBreaker = _tieBreakerOf(_auditorDigests[jobId]);
        if (verdict == Verdict.NoFault) return _noFault(jobId, job, slot, auditor, tieBreaker, byGovernance);
        // A tie-breaker still recorded here answered neither side wholly and so sent the dispute to
        // governance: on a fraud verdict its collateral comes back and nothing more. (A cheater's
        // accomplice answering a third way took a share of the cheater's collateral and a reward.)
        if (tieBreaker != address(0)) _releaseAuditor(job, tieBreaker, false);
        if (verdict == Verdict.ProviderFraud) _providerFraud(jobId, job, slot, auditor, address(0));
        else _auditorFraud(jobId, job, slot, auditor, address(0));
    }

    function _escalate(bytes32 jobId, JobSlot slot) private {
        uint256 deadline = block.timestamp + _verification.escalationWindow;
        _audits[jobId].phase = AuditPhase.Escalated;
        _audits[jobId].deadline = uint32(deadline);
        _jobs[jobId] = slot.withState(JobState.Escalated);
        emit DisputeEscalated(jobId, deadline);
    }

    /// @dev No auditor came: the job goes on unaudited, with a challenge window ending no earlier than now.
    function _abandonAudit(bytes32 jobId, Job calldata job, JobSlot slot) private {
        uint256 windowEnd = slot.clock() + job.terms.challengeWindow();
        if (windowEnd < block.timestamp) windowEnd = block.timestamp;
        address challenger = _challengerOf(jobId);
        if (challenger != address(0)) _credit(job.request.paymentToken, challenger, _bondOf(jobId, job));
        _clearAudit(jobId);
        _jobs[jobId] = slot.withState(JobState.Challengeable).withClock(windowEnd);
        emit AuditUnclaimed(jobId);
    }

    /// @dev In a dispute the auditor did not reveal its leaves: the job settles for the provider and the
    /// auditor forfeits its collateral (consumer / treasury). A new auditor could not be blind any more:
    /// the provider's leaves are public.
    function _auditorStalled(bytes32 jobId, Job calldata job, JobSlot slot, address auditor) private {
        address provider = _registry.providerById(slot.providerId());
        IERC20 token = job.request.paymentToken;
        _jobs[jobId] = JobSlots.only(JobState.Settled);
        _payProvider(job, provider);
        uint256 collateral = _collateralOf(job.request.price, job.terms.auditCollateralBps());
        _splitForfeit(token, collateral, job.consumer, address(0), address(0));
        address challenger = _challengerOf(jobId);
        if (challenger != address(0)) _credit(token, challenger, _bondOf(jobId, job));
        _clearAudit(jobId);
        emit AuditorStalled(jobId, auditor, collateral);
        emit JobSettled(jobId, provider, bytes32(0), "");
    }

    /// @dev The tie-breaker did not reveal: it forfeits its collateral and the dispute goes to governance.
    /// Reopening the tie-break instead let a provider's own sybil stall again and again, each time for a
    /// collateral, until the provider's unbonding stake was released and the fraud slash found nothing.
    function _tieBreakerStalled(bytes32 jobId, Job calldata job, JobSlot slot) private {
        bytes32 dispute = _auditorDigests[jobId];
        address tieBreaker = _tieBreakerOf(dispute);
        uint256 collateral = _collateralOf(job.request.price, job.terms.auditCollateralBps());
        _splitForfeit(job.request.paymentToken, collateral, job.consumer, address(0), address(0));
        _auditorDigests[jobId] = _dispute(address(0), dispute);
        emit AuditorStalled(jobId, tieBreaker, collateral);
        _escalate(jobId, slot);
    }

    /* INTERNAL: HELPERS */

    /// @dev Returns an honest auditor's collateral and, when `rewarded`, pays its reward from the audit pool.
    function _releaseAuditor(Job calldata job, address auditor, bool rewarded) private returns (uint256 reward) {
        IERC20 token = job.request.paymentToken;
        Terms terms = job.terms;
        _credit(token, auditor, _collateralOf(job.request.price, terms.auditCollateralBps()));
        if (rewarded) reward = _payFromPool(token, auditor, _collateralOf(job.request.price, terms.auditRewardBps()));
    }

    /// @dev A challenge that did not prove fraud: the bond goes to the provider.
    function _settleChallenge(bytes32 jobId, Job calldata job, address provider) private {
        if (_audits[jobId].challenged) _credit(job.request.paymentToken, provider, _bondOf(jobId, job));
    }

    /// @dev The challenger's bond, at the share in force when it was posted.
    function _bondOf(bytes32 jobId, Job calldata job) private view returns (uint256) {
        return _collateralOf(job.request.price, _challenges[jobId].bondBps);
    }

    /// @dev Deletes the audit's storage (gas refunds); the challenge's only if there was one.
    function _clearAudit(bytes32 jobId) private {
        if (_audits[jobId].challenged) delete _challenges[jobId];
        delete _audits[jobId];
        delete _auditorDigests[jobId];
    }

    /// @dev The challenger, or 0 when the job was not challenged (without reading the challenge then).
    function _challengerOf(bytes32 jobId) private view returns (address) {
        return _audits[jobId].challenged ? _challenges[jobId].challenger : address(0);
    }

    /// @dev The dispute word: tie-breaker (0 until one claims) and the low 96 bits of the auditor's
    /// leaves hash (enough to recognise the leaves passed again: a forgery needs a 2^96 preimage).
    function _dispute(address tieBreaker, bytes32 auditorLeavesHash) private pure returns (bytes32) {
        return bytes32((uint256(uint160(tieBreaker)) << 96) | uint96(uint256(auditorLeavesHash)));
    }

    function _tieBreakerOf(bytes32 dispute) private pure returns (address) {
        return address(uint160(uint256(dispute) >> 96));
    }

    /// @dev An auditor (or tie-breaker) must be eligible for the job and play no other role in it. A
    /// guardian pause stops new claims, not audits of jobs already running: `ClaimsPaused` is accepted.
    function _checkAuditor(bytes32 jobId, Job calldata job, JobSlot slot, address auditor) private view {
        if (auditor == job.consumer || auditor == _challengerOf(jobId)) {
            revert JobMarketConflictOfInterest(jobId, auditor);
        }
        (IProviderRegistry.Eligibility eligibility, uint32 id) =
            _registry.checkEligibility(auditor, job.request.paymentToken, job.request.requirements, 0, 0, false);
        if (id == slot.providerId()) revert JobMarketConflictOfInterest(jobId, auditor);
        if (
            eligibility != IProviderRegistry.Eligibility.Eligible
                && eligibility != IProviderRegistry.Eligibility.ClaimsPaused
        ) revert JobMarketIneligible(jobId, auditor, eligibility);
    }

    /// @dev The m sampled chunk indices (with replacement); a named chunk replaces the first.
    function _sample(bytes32 jobId, uint48 seed, bool challenged, Verification v)
        private
        view
        returns (uint32[] memory sample)
    {
        uint256 chunks = v.chunks();
        sample = new uint32[](v.auditChunks());
        for (uint256 k; k < sample.length; ++k) {
            sample[k] = uint32(uint256(keccak256(abi.encode(seed, k))) % chunks);
        }
        if (!challenged) return sample;
        Challenge memory c = _challenges[jobId];
        if (c.named) sample[0] = c.chunk;
    }

    function _expectProviderLeaves(bytes32 jobId, JobSlot slot, bytes32[] calldata leaves, uint256 m) private pure {
        _expectLength(jobId, leaves.length, m);
        if (JobSlots.truncate(keccak256(abi.encode(leaves))) != slot.digest()) revert JobMarketRevealedLeavesMismatch(jobId);
    }

    function _expectLength(bytes32 jobId, uint256 got, uint256 expected) private pure {
        if (got != expected) revert JobMarketWrongLeafCount(jobId, got, expected);
    }

    function _expectPhase(bytes32 jobId, AuditPhase current, AuditPhase expected) private pure {
        if (current != expected) revert JobMarketUnexpectedPhase(jobId, current, expected);
    }
}
