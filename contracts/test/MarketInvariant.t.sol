// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {IJobMarketTypes} from "../interfaces/IJobMarketTypes.sol";
import {IComputeCommons} from "../interfaces/IComputeCommons.sol";
import {ComputeCommons} from "../commons/ComputeCommons.sol";
import {IRandomnessSource} from "../interfaces/IRandomnessSource.sol";
import {VerificationLib} from "../libraries/JobParams.sol";
import {MarketSetup} from "./utils/MarketSetup.sol";

/// @notice Drives random sequences of every actor's actions: consumers create (open or from signed
/// offers), cancel, challenge and move money; providers claim, commit honest or fabricated results,
/// reveal or go silent, audit each other (honestly or lying), break ties, stake and unstake; governance
/// resolves escalations; anyone draws, enforces deadlines, and time passes.
contract MarketHandler is MarketSetup {
    struct Reveal {
        bytes32 root;
        bytes32 salt;
        address provider;
        bool fabricated;
    }

    /// @dev An auditor's or tie-breaker's answer, kept to reveal it later.
    struct Answer {
        bytes32[] leaves;
        bytes32 salt;
    }

    uint32 internal constant CHUNKS = 8;
    uint16 internal constant AUDIT_CHUNKS = 2;

    address[] public consumers;
    address[] public providers;
    uint256[] internal providerKeys;
    IJobMarketTypes.Job[] internal _jobs;
    mapping(bytes32 jobId => Reveal) public reveals;
    mapping(bytes32 jobId => bool) public everCommitted;
    mapping(bytes32 jobId => Answer) internal _auditAnswers;
    uint256 internal _nonce;
    /// @notice How many calls of each kind got through (the run summary, to see the handler does work).
    mapping(bytes32 action => uint256) public succeeded;

    /// @dev Compute commons: grantees, and the ghost of each programme's spend (prices of its jobs whose
    /// funds have not been returned), which the programme's own `spent` must always equal.
    address[] public grantees;
    mapping(uint256 programmeId => uint256) public ghostSpent;
    mapping(bytes32 jobId => bool) public commonsJobReturned;
    /// @dev Prices of commons jobs not yet closed.
    uint256 public ghostOutstanding;

    constructor() {
        _deploy();
        consumers.push(address(0xC001));
        consumers.push(address(0xC002));
        for (uint256 i = 1; i <= 3; ++i) {
            providerKeys.push(0xB0B0 + i);
            providers.push(vm.addr(0xB0B0 + i));
        }
        for (uint256 i; i < providers.length; ++i) {
            _onboard(providers[i], 100_000 * USD);
            mesh.transfer(providers[i], 3 * MIN_STAKE);
        }
        for (uint256 i; i < consumers.length; ++i) {
            _fund(consumers[i], 50_000 * USD);
            usd.mint(consumers[i], 50_000 * USD); // more in the wallet, for escrow by transfer
        }
        grantees.push(address(0x6A01));
        grantees.push(address(0x6A02));
        // One provider opts in to the commons at half its price.
        vm.prank(providers[0]);
        registry.postPrice(registry.commonsPriceKey(IERC20(address(usd))), USD / 2);
    }

    /* ACTIONS */

    function createJob(uint256 who, uint256 price, uint256 claimDelay, uint256 window) external {
        address consumer = consumers[who % consumers.length];
        IJobMarketTypes.JobRequest memory r = _smallRequest(bound(price, 1 * USD, 500 * USD));
        r.claimBy = uint40(block.timestamp + bound(claimDelay, 1, 3 days));
        r.computeWindow = uint32(bound(window, 60, 1 days));
        vm.prank(consumer);
        market.createJob(r, "");
        _jobs.push(_job(consumer, r));
        ++succeeded["create"];
    }

    function createJobWithOffer(uint256 who, uint256 providerSeed, uint256 price) external {
        address consumer = consumers[who % consumers.length];
        uint256 p = providerSeed % providers.length;
        IJobMarketTypes.JobRequest memory r = _smallRequest(bound(price, 1, 500 * USD));
        r.targetProvider = providers[p];
        IJobMarketTypes.Job memory job = _job(consumer, r);
        uint40 expiry = uint40(block.timestamp + 1 hours);
        (uint8 v, bytes32 rs, bytes32 s) = vm.sign(providerKeys[p], market.offerDigest(market.hashJob(job), expiry));
        vm.prank(consumer);
        market.createJobWithOffer(r, "", expiry, abi.encodePacked(rs, s, v));
        _jobs.push(job);
        ++succeeded["offer"];
    }

    function claim(uint256 jobSeed, uint256 providerSeed) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Open);
        if (!found) return;
        vm.prank(providers[providerSeed % providers.length]);
        market.claim(_jobs[i]);
        ++succeeded["claim"];
    }

    function commit(uint256 jobSeed, bytes32 salt, bool fabricate) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Claimed);
        if (!found) return;
        bytes32 jobId = market.hashJob(_jobs[i]);
        address provider = market.jobRecord(jobId).provider;
        bytes32 root = _root(_leaves(jobId, fabricate));
        bytes32 commitment = market.commitmentHash(jobId, provider, root, salt);
        vm.prank(provider);
        market.commit(jobId, commitment);
        reveals[jobId] = Reveal(root, salt, provider, fabricate);
        everCommitted[jobId] = true;
        ++succeeded["commit"];
    }

    /// @notice Reveals (honestly, or with a wrong root that must be rejected) once the window is over.
    function settle(uint256 jobSeed, bool lie) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Challengeable);
        if (!found) (found, i) = _find(jobSeed, IJobMarketTypes.JobState.Committed);
        if (!found) return;
        IJobMarketTypes.Job memory job = _jobs[i];
        bytes32 jobId = market.hashJob(job);
        IJobMarketTypes.JobRecord memory record = market.jobRecord(jobId);
        // committedAt reads the clock: the commit time, or the window end once Challengeable.
        uint256 windowEnd = record.state == IJobMarketTypes.JobState.Committed
            ? record.committedAt + job.terms.challengeWindow()
            : record.committedAt;
        if (block.timestamp < windowEnd) vm.warp(windowEnd);
        Reveal memory r = reveals[jobId];
        market.settle(job, r.provider, lie ? ~r.root : r.root, r.salt, "out");
        ++succeeded["settle"];
    }

    /* AUDIT ACTIONS */

    /// @notice The randomness the next draws see (the fuzzer picks it: sometimes Pending, sometimes expired).
    function setRandomness(bytes32 value, uint8 availability) external {
        randomness.set(IRandomnessSource.Availability(bound(availability, 0, 2)), value);
    }

    function draw(uint256 jobSeed) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Committed);
        if (!found) return;
        market.draw(_jobs[i]);
        ++succeeded["draw"];
    }

    /// @notice An auditor re-runs the sample (lying when asked) and claims + commits.
    function audit(uint256 jobSeed, uint256 auditorSeed, bool lie) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Audited);
        if (!found) (found, i) = _find(jobSeed, IJobMarketTypes.JobState.Committed);
        if (!found) return;
        IJobMarketTypes.Job memory job = _jobs[i];
        bytes32 jobId = market.hashJob(job);
        address auditor = providers[auditorSeed % providers.length];
        if (auditor == market.jobRecord(jobId).provider) auditor = providers[(auditorSeed + 1) % providers.length];
        uint32[] memory sample = market.sampleOf(job);
        bytes32[] memory leaves = new bytes32[](sample.length);
        for (uint256 k; k < sample.length; ++k) leaves[k] = lie ? keccak256(abi.encode("lie", jobId, k)) : _honest(jobId, sample[k]);
        _auditAnswers[jobId] = Answer(leaves, bytes32(0));
        bytes32 commitment = market.auditorCommitmentHash(jobId, auditor, leaves);
        vm.prank(auditor);
        market.audit(job, commitment);
        ++succeeded["audit"];
    }

    /// @notice The provider opens its commitment with proofs of the sampled leaves.
    function revealResult(uint256 jobSeed) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Revealing);
        if (!found) return;
        IJobMarketTypes.Job memory job = _jobs[i];
        bytes32 jobId = market.hashJob(job);
        Reveal memory r = reveals[jobId];
        bytes32[] memory all = _leaves(jobId, r.fabricated);
        uint32[] memory sample = market.sampleOf(job);
        bytes32[] memory leaves = new bytes32[](sample.length);
        bytes32[][] memory proofs = new bytes32[][](sample.length);
        for (uint256 k; k < sample.length; ++k) {
            leaves[k] = all[sample[k]];
            proofs[k] = _proof(all, sample[k]);
        }
        market.revealResult(job, r.provider, r.root, r.salt, "out", leaves, proofs);
        ++succeeded["revealResult"];
    }

    function revealAudit(uint256 jobSeed) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Disputed);
        if (!found) return;
        IJobMarketTypes.Job memory job = _jobs[i];
        bytes32 jobId = market.hashJob(job);
        market.revealAudit(job, _auditAnswers[jobId].leaves, _providerSampleLeaves(job, jobId));
        ++succeeded["revealAudit"];
    }

    /// @notice A provider with no role in the job claims the tie-break.
    function tieBreak(uint256 jobSeed, uint256 who) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Disputed);
        if (!found) return;
        IJobMarketTypes.Job memory job = _jobs[i];
        bytes32 jobId = market.hashJob(job);
        address auditor = market.auditOf(job).auditor;
        // The first provider from `who` on that plays no role in the job yet.
        address tieBreaker = providers[who % providers.length];
        for (uint256 k; k < providers.length; ++k) {
            tieBreaker = providers[(who + k) % providers.length];
            if (tieBreaker != auditor && tieBreaker != reveals[jobId].provider) break;
        }
        vm.prank(tieBreaker);
        market.tieBreak(job);
        ++succeeded["tieBreak"];
    }

    /// @notice The tie-breaker answers for the disputed chunks: honestly, or with a third answer.
    function revealTieBreak(uint256 jobSeed, bool third) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Disputed);
        if (!found) return;
        IJobMarketTypes.Job memory job = _jobs[i];
        bytes32 jobId = market.hashJob(job);
        IJobMarketTypes.AuditView memory v = market.auditOf(job);
        uint256 n;
        for (uint256 k; k < v.sample.length; ++k) if (v.disputed & (uint64(1) << uint64(k)) != 0) ++n;
        bytes32[] memory leaves = new bytes32[](n);
        uint256 j;
        for (uint256 k; k < v.sample.length; ++k) {
            if (v.disputed & (uint64(1) << uint64(k)) == 0) continue;
            leaves[j++] = third ? keccak256(abi.encode("third", jobId, k)) : _honest(jobId, v.sample[k]);
        }
        vm.prank(v.tieBreaker);
        market.revealTieBreak(job, leaves, _providerSampleLeaves(job, jobId), _auditAnswers[jobId].leaves);
        ++succeeded["revealTieBreak"];
    }

    function challenge(uint256 jobSeed, uint256 who, bool named, uint32 chunk) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Challengeable);
        if (!found) (found, i) = _find(jobSeed, IJobMarketTypes.JobState.Committed);
        if (!found) return;
        address challenger = _anyone(who);
        usd.mint(challenger, 1_000 * USD);
        vm.prank(challenger);
        usd.approve(address(market), type(uint256).max);
        vm.prank(challenger);
        market.challenge(_jobs[i], named, uint32(bound(chunk, 0, CHUNKS - 1)));
        ++succeeded["challenge"];
    }

    function resolveEscalation(uint256 jobSeed, uint8 verdict) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Escalated);
        if (!found) return;
        market.resolveEscalation(_jobs[i], IJobMarketTypes.Verdict(bound(verdict, 0, 2)));
        ++succeeded["resolve"];
    }

    function fundAuditPool(uint256 amount) external {
        amount = bound(amount, 1, 1_000 * USD);
        usd.mint(address(this), amount);
        usd.approve(address(market), amount);
        market.fundAuditPool(IERC20(address(usd)), amount);
    }

    function cancel(uint256 jobSeed) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarketTypes.JobState.Open);
        if (!found) return;
        IJobMarketTypes.Job memory job = _jobs[i];
        if (job.consumer == address(commons)) {
            bytes32 jobId = market.hashJob(job);
            (, address grantee) = commons.jobOf(jobId);
            if (jobSeed & 1 == 0) vm.prank(grantee); // else governance (this handler owns the commons) cancels it
            commons.cancelJob(job);
            _noteClosed(jobId, job.request.price, true);
        } else {
            vm.prank(job.consumer);
            market.cancel(job);
        }
        ++succeeded["cancel"];
    }

    function enforceDeadline(uint256 jobSeed) external {
        if (_jobs.length == 0) return;
        market.enforceDeadline(_jobs[jobSeed % _jobs.length]);
        ++succeeded["enforce"];
    }

    function warp(uint256 secondsAhead) external {
        vm.warp(block.timestamp + bound(secondsAhead, 1, 6 hours));
        vm.roll(block.number + 1);
    }

    function deposit(uint256 who, uint256 amount) external {
        address account = _anyone(who);
        amount = bound(amount, 1, 10_000 * USD);
        usd.mint(account, amount);
        vm.prank(account);
        usd.approve(address(market), type(uint256).max);
        vm.prank(account);
        market.deposit(IERC20(address(usd)), account, amount);
    }

    function withdraw(uint256 who, uint256 amount) external {
        address account = _anyone(who);
        uint256 balance = market.balanceOf(IERC20(address(usd)), account);
        if (balance == 0) return;
        vm.prank(account);
        market.withdraw(IERC20(address(usd)), bound(amount, 1, balance), account);
    }

    function sweepFees() external {
        market.sweepFees(IERC20(address(usd)), providers);
    }

    function withdrawTreasury(uint256 amount) external {
        uint256 accrued = market.treasuryAccrual(IERC20(address(usd)));
        if (accrued == 0) return;
        market.withdrawTreasury(IERC20(address(usd)), address(0xDA0), bound(amount, 1, accrued));
    }

    function stake(uint256 providerSeed, uint256 amount) external {
        address provider = providers[providerSeed % providers.length];
        uint256 have = mesh.balanceOf(provider);
        if (have == 0) return;
        vm.prank(provider);
        registry.stake(provider, bound(amount, 1, have));
    }

    function requestUnstake(uint256 providerSeed, uint256 amount) external {
        address provider = providers[providerSeed % providers.length];
        (uint256 active,,) = registry.stakeOf(provider);
        if (active == 0) return;
        vm.prank(provider);
        registry.requestUnstake(bound(amount, 1, active));
    }

    function withdrawStake(uint256 providerSeed) external {
        address provider = providers[providerSeed % providers.length];
        vm.prank(provider);
        registry.withdrawStake(5);
    }

    /* COMPUTE COMMONS (the handler is governance) */

    /// @notice Funds reach the commons: from the treasury, or a donation straight to it.
    function fundCommons(uint256 amount, bool fromTreasury) external {
        IERC20 t = IERC20(address(usd));
        if (fromTreasury) {
            uint256 accrued = market.treasuryAccrual(t);
            if (accrued == 0) return;
            market.withdrawTreasury(t, address(commons), bound(amount, 1, accrued));
        } else {
            usd.mint(address(commons), bound(amount, 1, 2_000 * USD));
        }
        ++succeeded["fundCommons"];
    }

    /// @notice Governance funds the commons (from the treasury when it has accrued fees, else by a
    /// donation), creates a programme with it and approves both grantees.
    function createProgramme(uint256 budget, uint256 length, uint256 allowance) external {
        IERC20 t = IERC20(address(usd));
        budget = bound(budget, 1, 2_000 * USD);
        uint256 accrued = market.treasuryAccrual(t);
        if (accrued >= budget) market.withdrawTreasury(t, address(commons), budget);
        else usd.mint(address(commons), budget);
        uint256 start = block.timestamp;
        uint256 programmeId = commons.createProgramme("p", t, budget, start, start + bound(length, 1 hours, 10 days));
        allowance = bound(allowance, 1, budget);
        for (uint256 i; i < grantees.length; ++i) commons.approveGrantee(programmeId, grantees[i], allowance);
        ++succeeded["createProgramme"];
    }

    function fundProgramme(uint256 programmeSeed, uint256 amount) external {
        uint256 n = commons.programmeCount();
        uint256 free = commons.unallocated(IERC20(address(usd)));
        if (n == 0 || free == 0) return;
        commons.fundProgramme(programmeSeed % n + 1, bound(amount, 1, free));
        ++succeeded["fundProgramme"];
    }

    function approveGrantee(uint256 programmeSeed, uint256 granteeSeed, uint256 allowance) external {
        uint256 n = commons.programmeCount();
        if (n == 0) return;
        commons.approveGrantee(programmeSeed % n + 1, grantees[granteeSeed % grantees.length], bound(allowance, 0, 2_000 * USD));
        ++succeeded["approveGrantee"];
    }

    /// @notice A grantee posts a job paid from its programme (reverts, and so does nothing, when the
    /// allowance, budget or period does not allow it).
    function createCommonsJob(uint256 programmeSeed, uint256 granteeSeed, uint256 price) external {
        uint256 n = commons.programmeCount();
        if (n == 0) return;
        uint256 programmeId = programmeSeed % n + 1;
        IJobMarketTypes.JobRequest memory r = _smallRequest(bound(price, 1, 500 * USD));
        vm.prank(grantees[granteeSeed % grantees.length]);
        bytes32 jobId = commons.createJob(programmeId, r, "");
        r.requirements = r.requirements.asCommons();
        _jobs.push(_job(address(commons), r));
        ghostSpent[programmeId] += r.price;
        ghostOutstanding += r.price;
        assertTrue(market.hashJob(_jobs[_jobs.length - 1]) == jobId, "commons job tracked");
        ++succeeded["commonsJob"];
    }

    /// @notice Anyone closes a finished commons job (a refunded price returns to its programme).
    function closeCommonsJob(uint256 jobSeed) external {
        uint256 n = _jobs.length;
        for (uint256 k; k < n; ++k) {
            IJobMarketTypes.Job memory job = _jobs[(jobSeed + k) % n];
            if (job.consumer != address(commons)) continue;
            bytes32 jobId = market.hashJob(job);
            IJobMarketTypes.JobState s = market.jobState(jobId);
            if (s < IJobMarketTypes.JobState.Settled || commonsJobReturned[jobId]) continue;
            commons.closeJob(job);
            _noteClosed(jobId, job.request.price, s != IJobMarketTypes.JobState.Settled);
            ++succeeded["closeJob"];
            return;
        }
    }

    /// @notice Governance takes part of a programme's remaining budget back into the unallocated funds.
    function reclaimBudget(uint256 programmeSeed, uint256 amount) external {
        uint256 n = commons.programmeCount();
        if (n == 0) return;
        uint256 programmeId = programmeSeed % n + 1;
        IComputeCommons.Programme memory p = commons.programme(programmeId);
        if (p.budget == p.spent) return;
        commons.reclaimBudget(programmeId, bound(amount, 1, p.budget - p.spent));
        ++succeeded["reclaimBudget"];
    }

    function withdrawUnallocated(uint256 amount) external {
        uint256 free = commons.unallocated(IERC20(address(usd)));
        if (free == 0) return;
        commons.withdrawUnallocated(IERC20(address(usd)), address(0xDA0), bound(amount, 1, free));
        ++succeeded["withdrawUnallocated"];
    }

    function _noteClosed(bytes32 jobId, uint256 price, bool refunded) internal {
        (uint256 programmeId,) = commons.jobOf(jobId);
        commonsJobReturned[jobId] = true;
        ghostOutstanding -= price;
        if (refunded) ghostSpent[programmeId] -= price;
    }

    /* VIEWS FOR THE INVARIANTS */

    function jobCount() external view returns (uint256) {
        return _jobs.length;
    }

    function jobAt(uint256 i) external view returns (IJobMarketTypes.Job memory) {
        return _jobs[i];
    }

    function accounts() public view returns (address[] memory all) {
        all = new address[](consumers.length + providers.length);
        for (uint256 i; i < consumers.length; ++i) all[i] = consumers[i];
        for (uint256 i; i < providers.length; ++i) all[consumers.length + i] = providers[i];
    }

    function _smallRequest(uint256 price) internal returns (IJobMarketTypes.JobRequest memory r) {
        r = _request(price, ++_nonce);
        r.verification = VerificationLib.pack(CHUNKS, AUDIT_CHUNKS, 0);
    }

    /// @dev The correct leaf of chunk i (what honest workers and auditors compute).
    function _honest(bytes32 jobId, uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("honest", jobId, i));
    }

    function _leaves(bytes32 jobId, bool fabricated) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](CHUNKS);
        for (uint256 i; i < CHUNKS; ++i) {
            leaves[i] = fabricated ? keccak256(abi.encode("fake", jobId, i)) : _honest(jobId, i);
        }
    }

    function _providerSampleLeaves(IJobMarketTypes.Job memory job, bytes32 jobId) internal view returns (bytes32[] memory leaves) {
        bytes32[] memory all = _leaves(jobId, reveals[jobId].fabricated);
        uint32[] memory sample = market.sampleOf(job);
        leaves = new bytes32[](sample.length);
        for (uint256 k; k < sample.length; ++k) leaves[k] = all[sample[k]];
    }

    function _node(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    /// @dev Root of a power-of-two tree (CHUNKS = 8).
    function _root(bytes32[] memory level) internal pure returns (bytes32) {
        while (level.length > 1) {
            bytes32[] memory next = new bytes32[](level.length / 2);
            for (uint256 i; i < next.length; ++i) next[i] = _node(level[2 * i], level[2 * i + 1]);
            level = next;
        }
        return level[0];
    }

    function _proof(bytes32[] memory level, uint256 index) internal pure returns (bytes32[] memory proof) {
        proof = new bytes32[](3);
        for (uint256 d; d < 3; ++d) {
            proof[d] = level[index ^ 1];
            bytes32[] memory next = new bytes32[](level.length / 2);
            for (uint256 i; i < next.length; ++i) next[i] = _node(level[2 * i], level[2 * i + 1]);
            level = next;
            index >>= 1;
        }
    }

    /// @dev The first tracked job in `state`, starting at `seed` (handler-side search only).
    function _find(uint256 seed, IJobMarketTypes.JobState state) internal view returns (bool, uint256) {
        uint256 n = _jobs.length;
        for (uint256 k; k < n; ++k) {
            uint256 i = (seed + k) % n;
            if (market.jobState(market.hashJob(_jobs[i])) == state) return (true, i);
        }
        return (false, 0);
    }

    function _anyone(uint256 seed) internal view returns (address) {
        address[] memory all = accounts();
        return all[seed % all.length];
    }

    /// @notice Everything the market owes in the payment token.
    function liabilities() public view returns (uint256 total) {
        IERC20 t = IERC20(address(usd));
        total = market.treasuryAccrual(t) + market.auditPool(t);
        address[] memory all = accounts();
        for (uint256 i; i < all.length; ++i) total += market.balanceOf(t, all[i]) + market.feesDue(t, all[i]);
        total += market.balanceOf(t, address(commons));
        for (uint256 i; i < _jobs.length; ++i) total += market.heldFor(_jobs[i]);
    }

    /// @notice Moves every unfinished job past its current deadline (the caller warps time first).
    function enforceAll() external {
        for (uint256 i; i < _jobs.length; ++i) {
            if (market.jobState(market.hashJob(_jobs[i])) < IJobMarketTypes.JobState.Settled) {
                // A deadline set in this round is enforced in the next one.
                try market.enforceDeadline(_jobs[i]) {} catch {}
            }
        }
    }

    /// @notice Everyone withdraws everything; fees are swept and the treasury paid out.
    function withdrawAll() external {
        address[] memory all = accounts();
        IERC20 t = IERC20(address(usd));
        for (uint256 i; i < all.length; ++i) {
            uint256 balance = market.balanceOf(t, all[i]);
            if (balance != 0) {
                vm.prank(all[i]);
                market.withdraw(t, balance, all[i]);
            }
        }
        market.sweepFees(t, all);
        uint256 accrued = market.treasuryAccrual(t);
        if (accrued != 0) market.withdrawTreasury(t, address(0xDA0), accrued);
        for (uint256 i; i < _jobs.length; ++i) {
            bytes32 jobId = market.hashJob(_jobs[i]);
            IJobMarketTypes.JobState s = market.jobState(jobId);
            if (_jobs[i].consumer == address(commons) && !commonsJobReturned[jobId]) {
                commons.closeJob(_jobs[i]);
                _noteClosed(jobId, _jobs[i].request.price, s != IJobMarketTypes.JobState.Settled);
            }
        }
        // Governance takes back every programme's remaining budget: nothing stays in the commons.
        for (uint256 p = 1; p <= commons.programmeCount(); ++p) {
            IComputeCommons.Programme memory prog = commons.programme(p);
            if (prog.budget != prog.spent) commons.reclaimBudget(p, prog.budget - prog.spent);
        }
        uint256 free = commons.unallocated(t);
        if (free != 0) commons.withdrawUnallocated(t, address(0xDA0), free);
    }

    /// @notice Prices of unclosed commons jobs that the commons does not hold: still escrowed in the market
    /// (live) or paid to their provider (settled, not yet closed).
    function unheldCommonsPrices() external view returns (uint256 total) {
        for (uint256 i; i < _jobs.length; ++i) {
            if (_jobs[i].consumer != address(commons)) continue;
            bytes32 jobId = market.hashJob(_jobs[i]);
            if (commonsJobReturned[jobId]) continue;
            IJobMarketTypes.JobState s = market.jobState(jobId);
            bool refunded = s == IJobMarketTypes.JobState.Refunded || s == IJobMarketTypes.JobState.Cancelled
                || s == IJobMarketTypes.JobState.Slashed;
            if (!refunded) total += _jobs[i].request.price;
        }
    }

    function programmeSpent(uint256 programmeId) external view returns (uint256) {
        return commons.programme(programmeId).spent;
    }

    /// @notice What programme `programmeId` spent on jobs that settled (paid providers for good).
    function settledSpend(uint256 programmeId) external view returns (uint256 total) {
        for (uint256 i; i < _jobs.length; ++i) {
            if (_jobs[i].consumer != address(commons)) continue;
            bytes32 jobId = market.hashJob(_jobs[i]);
            (uint256 p,) = commons.jobOf(jobId);
            if (p == programmeId && market.jobState(jobId) == IJobMarketTypes.JobState.Settled) total += _jobs[i].request.price;
        }
    }
}

/// @notice Invariants of the core market (PROTOCOL.md §2, §3, §6) under the handler's random sequences.
/// hardhat-config in hardhat.config.ts: 256 runs x depth 50.
contract MarketInvariantTest is MarketSetup {
    MarketHandler internal handler;

    function setUp() public {
        handler = new MarketHandler();
    }

    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice Only the handler's actions, not its getters.
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory s = new bytes4[](46);
        s[0] = MarketHandler.createJob.selector;
        s[1] = MarketHandler.createJobWithOffer.selector;
        s[2] = MarketHandler.claim.selector;
        s[3] = MarketHandler.claim.selector; // the lifecycle's and the audits' steps come up more often
        s[4] = MarketHandler.commit.selector;
        s[5] = MarketHandler.commit.selector;
        s[6] = MarketHandler.settle.selector;
        s[7] = MarketHandler.settle.selector;
        s[8] = MarketHandler.cancel.selector;
        s[9] = MarketHandler.enforceDeadline.selector;
        s[10] = MarketHandler.warp.selector;
        s[11] = MarketHandler.deposit.selector;
        s[12] = MarketHandler.withdraw.selector;
        s[13] = MarketHandler.sweepFees.selector;
        s[14] = MarketHandler.withdrawTreasury.selector;
        s[15] = MarketHandler.stake.selector;
        s[16] = MarketHandler.requestUnstake.selector;
        s[17] = MarketHandler.withdrawStake.selector;
        s[18] = MarketHandler.setRandomness.selector;
        s[19] = MarketHandler.draw.selector;
        s[20] = MarketHandler.audit.selector;
        s[21] = MarketHandler.audit.selector;
        s[22] = MarketHandler.revealResult.selector;
        s[23] = MarketHandler.revealResult.selector;
        s[24] = MarketHandler.revealAudit.selector;
        s[25] = MarketHandler.revealAudit.selector;
        s[26] = MarketHandler.tieBreak.selector;
        s[27] = MarketHandler.tieBreak.selector;
        s[28] = MarketHandler.revealTieBreak.selector;
        s[29] = MarketHandler.revealTieBreak.selector;
        s[30] = MarketHandler.challenge.selector;
        s[31] = MarketHandler.resolveEscalation.selector;
        s[32] = MarketHandler.fundAuditPool.selector;
        s[33] = MarketHandler.draw.selector;
        s[34] = MarketHandler.audit.selector;
        s[35] = MarketHandler.revealAudit.selector;
        s[36] = MarketHandler.fundCommons.selector;
        s[37] = MarketHandler.createProgramme.selector;
        s[38] = MarketHandler.fundProgramme.selector;
        s[39] = MarketHandler.approveGrantee.selector;
        s[40] = MarketHandler.createCommonsJob.selector;
        s[41] = MarketHandler.closeCommonsJob.selector;
        s[42] = MarketHandler.withdrawUnallocated.selector;
        s[43] = MarketHandler.createCommonsJob.selector;
        s[44] = MarketHandler.createCommonsJob.selector;
        s[45] = MarketHandler.reclaimBudget.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), s);
    }

    /// @notice For the payment token: market balance == escrows + collateral + balances + fees due + treasury.
    function invariant_paymentTokenIsConserved() public view {
        assertEq(_usd().balanceOf(address(_market())), handler.liabilities(), "payment token conservation");
    }

    /// @notice MESH in the registry == active + unbonding stake of every provider + slashed stake.
    function invariant_meshStakeIsConserved() public view {
        uint256 bonded;
        for (uint256 i; i < 3; ++i) {
            (uint256 active, uint256 unbonding,) = _registry().stakeOf(handler.providers(i));
            bonded += active + unbonding;
        }
        assertEq(_registry().totalStaked(), bonded, "total staked");
        assertEq(
            _mesh().balanceOf(address(_registry())), bonded + _registry().slashedStake(), "registry MESH conservation"
        );
    }

    /// @notice No provider's stake votes more than its active stake, whatever slashes came (a slash
    /// writes no vote record: the votes stop until the stake's next change).
    function invariant_stakeVotesNeverExceedTheActiveStake() public view {
        for (uint256 i; i < 3; ++i) {
            address provider = handler.providers(i);
            (uint256 active,,) = _registry().stakeOf(provider);
            assertTrue(_registry().stakeVotes(provider) <= active, "stake votes");
        }
    }

    /// @notice No job is in an impossible state: its audit phase matches its state, settled or slashed
    /// jobs were committed first, claimed jobs have a registered claimant.
    function invariant_jobsAreInPossibleStates() public view {
        uint256 n = handler.jobCount();
        for (uint256 i; i < n; ++i) {
            IJobMarketTypes.Job memory job = handler.jobAt(i);
            bytes32 jobId = _market().hashJob(job);
            IJobMarketTypes.JobRecord memory r = _market().jobRecord(jobId);
            IJobMarketTypes.JobState s = r.state;
            IJobMarketTypes.AuditPhase phase = _market().auditOf(job).phase;
            assertTrue(s != IJobMarketTypes.JobState.None, "tracked job exists");
            if (s == IJobMarketTypes.JobState.Audited) {
                assertTrue(phase == IJobMarketTypes.AuditPhase.AwaitingAuditor, "audited: awaiting auditor");
            } else if (s == IJobMarketTypes.JobState.Revealing) {
                assertTrue(phase == IJobMarketTypes.AuditPhase.AuditorCommitted, "revealing: auditor committed");
            } else if (s == IJobMarketTypes.JobState.Disputed) {
                assertTrue(
                    phase == IJobMarketTypes.AuditPhase.AwaitingAuditorReveal
                        || phase == IJobMarketTypes.AuditPhase.AwaitingTieBreaker
                        || phase == IJobMarketTypes.AuditPhase.TieBreakerClaimed,
                    "disputed: auditor reveal or tie-break phase"
                );
            } else if (s == IJobMarketTypes.JobState.Escalated) {
                assertTrue(phase == IJobMarketTypes.AuditPhase.Escalated, "escalated phase");
            } else {
                assertTrue(phase == IJobMarketTypes.AuditPhase.None, "no audit record outside audit states");
            }
            if (s == IJobMarketTypes.JobState.Settled || s == IJobMarketTypes.JobState.Slashed) {
                assertTrue(handler.everCommitted(jobId), "settled or slashed only after a commit");
            }
            if (s >= IJobMarketTypes.JobState.Claimed && s <= IJobMarketTypes.JobState.Escalated) {
                assertTrue(_registry().isRegistered(r.provider), "claimant registered");
            }
        }
    }

    /// @notice Commons budgets are conserved: what the commons holds covers the programmes' remaining
    /// budgets exactly up to `unallocated`; remaining budgets sum to `allocated`; each programme's
    /// `spent` is the price of its jobs not refunded (ghost-tracked).
    function invariant_commonsBudgetIsConserved() public view {
        ComputeCommons c = ComputeCommons(address(handler.commons()));
        IERC20 t = _usd();
        uint256 holdings = _market().balanceOf(t, address(c)) + t.balanceOf(address(c));
        uint256 allocated = c.allocated(t);
        uint256 outstanding = c.outstanding(t);
        assertEq(outstanding, handler.ghostOutstanding(), "outstanding = prices of open commons jobs");
        // A refund comes back unseen: what governance may take never includes a budget, an open job's
        // escrow or a refund owed to a programme. (Outstanding prices not held are escrowed or paid out.)
        assertTrue(
            holdings + handler.unheldCommonsPrices() >= allocated + outstanding + c.unallocated(t),
            "budgets, open prices and unallocated funds are backed"
        );
        uint256 remaining;
        uint256 n = c.programmeCount();
        for (uint256 p = 1; p <= n; ++p) {
            IComputeCommons.Programme memory prog = c.programme(p);
            assertTrue(prog.spent <= prog.budget, "spent within budget");
            assertEq(prog.spent, handler.ghostSpent(p), "spent = prices of unreturned jobs");
            remaining += prog.budget - prog.spent;
        }
        assertEq(remaining, allocated, "remaining budgets = allocated");
    }

    /// @notice Nothing is stuck: past every deadline each job can be finished and every token withdrawn
    /// (but the audit pool, which belongs to future audits).
    function afterInvariant() public {
        // Each round moves every unfinished job past one deadline; an audit needs at most a few. (Time is
        // kept in locals: with via-IR the compiler may reuse an earlier read of block.timestamp.)
        uint256 time = block.timestamp;
        uint256 blockNumber = block.number;
        for (uint256 round; round < 6; ++round) {
            time += 60 days;
            vm.warp(time);
            vm.roll(++blockNumber);
            handler.enforceAll();
        }
        handler.withdrawAll();
        uint256 n = handler.jobCount();
        for (uint256 i; i < n; ++i) {
            IJobMarketTypes.JobState s = _market().jobState(_market().hashJob(handler.jobAt(i)));
            assertTrue(s >= IJobMarketTypes.JobState.Settled, "every job reaches a final state");
        }
        // Left behind: only the audit pool, which pays future audits. Every programme's remaining budget
        // was reclaimed and withdrawn with the rest of the commons' unallocated funds.
        ComputeCommons c = ComputeCommons(address(handler.commons()));
        assertEq(_usd().balanceOf(address(_market())), _market().auditPool(_usd()), "nothing but the audit pool left behind");
        assertEq(c.unallocated(_usd()), 0, "unallocated commons funds withdrawn");
        assertEq(c.allocated(_usd()), 0, "every remaining budget reclaimed");
        assertEq(_usd().balanceOf(address(c)) + _market().balanceOf(_usd(), address(c)), 0, "nothing stuck in the commons");
        for (uint256 p = 1; p <= c.programmeCount(); ++p) {
            assertEq(handler.programmeSpent(p), handler.settledSpend(p), "programme spend = its settled jobs");
        }
    }

    function _market() internal view returns (IJobMarket) {
        return IJobMarket(address(handler.market()));
    }

    function _registry() internal view returns (MarketHandlerRegistry) {
        return MarketHandlerRegistry(address(handler.registry()));
    }

    function _usd() internal view returns (IERC20) {
        return IERC20(address(handler.usd()));
    }

    function _mesh() internal view returns (IERC20) {
        return IERC20(address(handler.mesh()));
    }
}

interface MarketHandlerRegistry {
    function stakeOf(address) external view returns (uint256, uint256, uint256);
    function totalStaked() external view returns (uint256);
    function slashedStake() external view returns (uint256);
    function isRegistered(address) external view returns (bool);
    function stakeVotes(address) external view returns (uint256);
}
