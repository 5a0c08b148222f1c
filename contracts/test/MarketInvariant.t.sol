// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {RequirementsLib} from "../libraries/JobParams.sol";
import {MarketSetup} from "./utils/MarketSetup.sol";

/// @notice Drives random sequences of every actor's actions: consumers create (open or from signed
/// offers), cancel and move money; providers claim, commit, reveal or go silent, stake and unstake;
/// anyone enforces deadlines and time passes.
contract MarketHandler is MarketSetup {
    struct Reveal {
        bytes32 root;
        bytes32 salt;
        address provider;
    }

    address[] public consumers;
    address[] public providers;
    uint256[] internal providerKeys;
    IJobMarket.Job[] internal _jobs;
    mapping(bytes32 jobId => Reveal) public reveals;
    mapping(bytes32 jobId => bool) public everCommitted;
    uint256 internal _nonce;
    /// @notice How many calls of each kind got through (the run summary, to see the handler does work).
    mapping(bytes32 action => uint256) public succeeded;

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
    }

    /* ACTIONS */

    function createJob(uint256 who, uint256 price, uint256 claimDelay, uint256 window) external {
        address consumer = consumers[who % consumers.length];
        IJobMarket.JobRequest memory r = _request(bound(price, 1 * USD, 500 * USD), ++_nonce);
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
        IJobMarket.JobRequest memory r = _request(bound(price, 1, 500 * USD), ++_nonce);
        r.targetProvider = providers[p];
        IJobMarket.Job memory job = _job(consumer, r);
        uint40 expiry = uint40(block.timestamp + 1 hours);
        (uint8 v, bytes32 rs, bytes32 s) = vm.sign(providerKeys[p], market.offerDigest(market.hashJob(job), expiry));
        vm.prank(consumer);
        market.createJobWithOffer(r, "", expiry, abi.encodePacked(rs, s, v));
        _jobs.push(job);
        ++succeeded["offer"];
    }

    function claim(uint256 jobSeed, uint256 providerSeed) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarket.JobState.Open);
        if (!found) return;
        vm.prank(providers[providerSeed % providers.length]);
        market.claim(_jobs[i]);
        ++succeeded["claim"];
    }

    function commit(uint256 jobSeed, bytes32 root, bytes32 salt) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarket.JobState.Claimed);
        if (!found) return;
        bytes32 jobId = market.hashJob(_jobs[i]);
        address provider = market.jobRecord(jobId).provider;
        bytes32 commitment = market.commitmentHash(jobId, provider, root, salt);
        vm.prank(provider);
        market.commit(jobId, commitment);
        reveals[jobId] = Reveal(root, salt, provider);
        everCommitted[jobId] = true;
        ++succeeded["commit"];
    }

    /// @notice Reveals (honestly, or with a wrong root that must be rejected) once the window is over.
    function settle(uint256 jobSeed, bool lie) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarket.JobState.Committed);
        if (!found) return;
        IJobMarket.Job memory job = _jobs[i];
        bytes32 jobId = market.hashJob(job);
        uint256 windowEnd = market.jobRecord(jobId).committedAt + job.terms.challengeWindow();
        if (block.timestamp < windowEnd) vm.warp(windowEnd);
        Reveal memory r = reveals[jobId];
        market.settle(job, r.provider, lie ? ~r.root : r.root, r.salt, "out");
        ++succeeded["settle"];
    }

    function cancel(uint256 jobSeed) external {
        (bool found, uint256 i) = _find(jobSeed, IJobMarket.JobState.Open);
        if (!found) return;
        IJobMarket.Job memory job = _jobs[i];
        vm.prank(job.consumer);
        market.cancel(job);
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
        vm.startPrank(account);
        usd.approve(address(market), type(uint256).max);
        market.deposit(IERC20(address(usd)), account, amount);
        vm.stopPrank();
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

    /* VIEWS FOR THE INVARIANTS */

    function jobCount() external view returns (uint256) {
        return _jobs.length;
    }

    function jobAt(uint256 i) external view returns (IJobMarket.Job memory) {
        return _jobs[i];
    }

    function accounts() public view returns (address[] memory all) {
        all = new address[](consumers.length + providers.length);
        for (uint256 i; i < consumers.length; ++i) all[i] = consumers[i];
        for (uint256 i; i < providers.length; ++i) all[consumers.length + i] = providers[i];
    }

    /// @dev The first tracked job in `state`, starting at `seed` (handler-side search only).
    function _find(uint256 seed, IJobMarket.JobState state) internal view returns (bool, uint256) {
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
        total = market.treasuryAccrual(t);
        address[] memory all = accounts();
        for (uint256 i; i < all.length; ++i) total += market.balanceOf(t, all[i]) + market.feesDue(t, all[i]);
        for (uint256 i; i < _jobs.length; ++i) {
            IJobMarket.JobState s = market.jobState(market.hashJob(_jobs[i]));
            if (s == IJobMarket.JobState.Open) total += _jobs[i].request.price;
            if (s == IJobMarket.JobState.Claimed || s == IJobMarket.JobState.Committed) {
                total += _jobs[i].request.price + market.collateralOf(_jobs[i]);
            }
        }
    }

    /// @notice After every deadline: enforce them all, then everyone withdraws everything.
    function drain() external {
        vm.warp(block.timestamp + 60 days);
        for (uint256 i; i < _jobs.length; ++i) {
            IJobMarket.JobState s = market.jobState(market.hashJob(_jobs[i]));
            if (s == IJobMarket.JobState.Open || s == IJobMarket.JobState.Claimed || s == IJobMarket.JobState.Committed) {
                market.enforceDeadline(_jobs[i]);
            }
        }
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
        bytes4[] memory s = new bytes4[](16);
        s[0] = MarketHandler.createJob.selector;
        s[1] = MarketHandler.createJobWithOffer.selector;
        s[2] = MarketHandler.claim.selector;
        s[3] = MarketHandler.claim.selector; // claims and commits twice as often: the lifecycle's core
        s[4] = MarketHandler.commit.selector;
        s[5] = MarketHandler.commit.selector;
        s[6] = MarketHandler.settle.selector;
        s[7] = MarketHandler.cancel.selector;
        s[8] = MarketHandler.enforceDeadline.selector;
        s[9] = MarketHandler.warp.selector;
        s[10] = MarketHandler.deposit.selector;
        s[11] = MarketHandler.withdraw.selector;
        s[12] = MarketHandler.sweepFees.selector;
        s[13] = MarketHandler.withdrawTreasury.selector;
        s[14] = MarketHandler.stake.selector;
        s[15] = MarketHandler.requestUnstake.selector;
        targets = new FuzzSelector[](2);
        targets[0] = FuzzSelector(address(handler), s);
        bytes4[] memory s2 = new bytes4[](1);
        s2[0] = MarketHandler.withdrawStake.selector;
        targets[1] = FuzzSelector(address(handler), s2);
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

    /// @notice No job is in an impossible state: the verification states are unreachable without the
    /// audit layer, a settled or slashed job was committed first, a claimed job has a registered claimant.
    function invariant_jobsAreInPossibleStates() public view {
        uint256 n = handler.jobCount();
        for (uint256 i; i < n; ++i) {
            bytes32 jobId = _market().hashJob(handler.jobAt(i));
            IJobMarket.JobRecord memory r = _market().jobRecord(jobId);
            IJobMarket.JobState s = r.state;
            assertTrue(s != IJobMarket.JobState.None, "tracked job exists");
            assertTrue(
                s <= IJobMarket.JobState.Committed || s >= IJobMarket.JobState.Settled, "no verification state yet"
            );
            if (s == IJobMarket.JobState.Settled || s == IJobMarket.JobState.Slashed) {
                assertTrue(handler.everCommitted(jobId), "settled or slashed only after a commit");
            }
            if (s == IJobMarket.JobState.Claimed || s == IJobMarket.JobState.Committed) {
                assertTrue(_registry().isRegistered(r.provider), "claimant registered");
            }
        }
    }

    /// @notice Nothing is stuck: past every deadline each job can be finished and every token withdrawn.
    function afterInvariant() public {
        handler.drain();
        uint256 n = handler.jobCount();
        for (uint256 i; i < n; ++i) {
            IJobMarket.JobState s = _market().jobState(_market().hashJob(handler.jobAt(i)));
            assertTrue(s >= IJobMarket.JobState.Settled, "every job reaches a final state");
        }
        assertEq(_usd().balanceOf(address(_market())), 0, "no token left behind in the market");
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
}
