// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {IJobMarketTypes} from "../interfaces/IJobMarketTypes.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {RequirementsLib, VerificationLib} from "../libraries/JobParams.sol";
import {MarketSetup} from "./utils/MarketSetup.sol";

/// @notice Fuzz tests of every market entry point's input validation: bad input is rejected with the
/// documented error and moves no money; good input moves exactly the documented amounts.
contract JobMarketFuzzTest is MarketSetup {
    address internal constant CONSUMER = address(0xC0);
    address internal constant PROVIDER = address(0xA1);
    address internal constant OTHER = address(0xB2);

    function setUp() public {
        _deploy();
        _onboard(PROVIDER, 1_000_000 * USD);
        _fund(CONSUMER, 1_000_000 * USD);
    }

    function _liabilities(IJobMarketTypes.Job[] memory jobs) internal view returns (uint256 total) {
        IERC20 t = IERC20(address(usd));
        total = market.treasuryAccrual(t) + market.auditPool(t);
        address[3] memory accounts = [CONSUMER, PROVIDER, OTHER];
        for (uint256 i; i < accounts.length; ++i) {
            total += market.balanceOf(t, accounts[i]) + market.feesDue(t, accounts[i]);
        }
        for (uint256 i; i < jobs.length; ++i) {
            total += market.heldFor(jobs[i]);
        }
    }

    function _assertConserved(IJobMarketTypes.Job[] memory jobs) internal view {
        assertEq(usd.balanceOf(address(market)), _liabilities(jobs), "market balance != liabilities");
    }

    function _one(IJobMarketTypes.Job memory job) internal pure returns (IJobMarketTypes.Job[] memory jobs) {
        jobs = new IJobMarketTypes.Job[](1);
        jobs[0] = job;
    }

    /// hardhat-config: fuzz.runs = 512
    function testFuzz_createJobValidatesEveryField(
        uint96 price,
        uint64 workUnits,
        uint32 claimDelay,
        uint32 computeWindow,
        uint32 chunks,
        uint16 auditChunks,
        uint16 auditBps,
        uint8 runtime
    ) public {
        price = uint96(bound(price, 0, 2_000_000 * USD));
        IJobMarketTypes.JobRequest memory r = _request(price, 1);
        r.workUnits = workUnits;
        r.claimBy = uint40(block.timestamp + bound(claimDelay, 0, 30 days));
        r.computeWindow = uint32(bound(computeWindow, 0, 8 days));
        r.verification = VerificationLib.pack(uint32(bound(chunks, 0, 5_000)), uint16(bound(auditChunks, 0, 70)), auditBps);
        r.requirements = RequirementsLib.pack(runtime, 16, 1, 0, bytes2(0), false);

        bytes memory expected;
        if (price == 0) expected = _invalid("price");
        else if (workUnits == 0) expected = _invalid("workUnits");
        else if (runtime >= 16) expected = _invalid("requirements");
        else if (
            r.verification.chunks() == 0 || r.verification.auditChunks() == 0
                || r.verification.auditChunks() > r.verification.chunks() || r.verification.auditChunks() > 64
                || auditBps > 10_000
        ) expected = _invalid("verification");
        else if (r.claimBy <= block.timestamp) expected = _invalid("claimBy");
        else if (r.computeWindow < 60 || r.computeWindow > 7 days) {
            expected = abi.encodeWithSelector(
                IJobMarketTypes.JobMarketComputeWindowOutOfBounds.selector, r.computeWindow, uint256(60), uint256(7 days)
            );
        } else if (price > 1_000_000 * USD) {
            // What the internal balance lacks is pulled from the wallet, which is empty.
            expected = abi.encodeWithSignature(
                "ERC20InsufficientBalance(address,uint256,uint256)", CONSUMER, uint256(0), uint256(price - 1_000_000 * USD)
            );
        }

        uint256 before = market.balanceOf(IERC20(address(usd)), CONSUMER);
        vm.prank(CONSUMER);
        if (expected.length != 0) {
            vm.expectRevert(expected);
            market.createJob(r, "");
            assertEq(market.balanceOf(IERC20(address(usd)), CONSUMER), before, "rejected create moved money");
            return;
        }
        bytes32 jobId = market.createJob(r, "");
        assertEq(before - market.balanceOf(IERC20(address(usd)), CONSUMER), price, "escrow");
        assertTrue(market.jobState(jobId) == IJobMarketTypes.JobState.Open, "state");
        _assertConserved(_one(_job(CONSUMER, r)));
    }

    function _invalid(string memory field) private pure returns (bytes memory) {
        return abi.encodeWithSelector(IJobMarketTypes.JobMarketInvalidRequest.selector, field);
    }

    function testFuzz_depositAndWithdrawNeverCreateMoney(uint256 amountIn, uint256 amountOut, address to) public {
        vm.assume(to != address(0) && to != address(market));
        amountIn = bound(amountIn, 1, 1e30);
        usd.mint(OTHER, amountIn);
        vm.startPrank(OTHER);
        usd.approve(address(market), amountIn);
        market.deposit(IERC20(address(usd)), OTHER, amountIn);
        uint256 toBefore = usd.balanceOf(to);
        if (amountOut == 0) {
            vm.expectRevert(IJobMarketTypes.JobMarketZeroAmount.selector);
        } else if (amountOut > amountIn) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IJobMarketTypes.JobMarketInsufficientBalance.selector, address(usd), OTHER, amountIn, amountOut
                )
            );
        }
        market.withdraw(IERC20(address(usd)), amountOut, to);
        vm.stopPrank();
        if (amountOut != 0 && amountOut <= amountIn) {
            assertEq(usd.balanceOf(to) - toBefore, amountOut, "paid out");
            assertEq(market.balanceOf(IERC20(address(usd)), OTHER), amountIn - amountOut, "left inside");
        }
        _assertConserved(new IJobMarketTypes.Job[](0));
    }

    function testFuzz_claimMatchesRequirementsExactly(
        uint16 minVram,
        uint16 minGpus,
        uint16 gpuClass,
        bool wantRegion,
        bool renewableOnly,
        uint8 runtime
    ) public {
        runtime = uint8(bound(runtime, 0, 15));
        minVram = uint16(bound(minVram, 0, 64));
        minGpus = uint16(bound(minGpus, 0, 4));
        gpuClass = uint16(bound(gpuClass, 0, 4));
        IJobMarketTypes.JobRequest memory r = _request(100 * USD, 2);
        bytes2 region = wantRegion ? bytes2("DE") : bytes2(0);
        r.requirements = RequirementsLib.pack(runtime, minVram, minGpus, gpuClass, region, renewableOnly);
        vm.prank(CONSUMER);
        bytes32 jobId = market.createJob(r, "");
        IJobMarketTypes.Job memory job = _job(CONSUMER, r);

        IProviderRegistry.Eligibility e = IProviderRegistry.Eligibility.Eligible;
        if (runtime > 1) e = IProviderRegistry.Eligibility.Runtime; // profile runtimes = 0b11
        else if (minVram > 24) e = IProviderRegistry.Eligibility.Vram;
        else if (minGpus > 2) e = IProviderRegistry.Eligibility.GpuCount;
        else if (gpuClass != 0 && gpuClass != 3) e = IProviderRegistry.Eligibility.GpuClass;

        vm.prank(PROVIDER);
        if (e != IProviderRegistry.Eligibility.Eligible) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarketTypes.JobMarketIneligible.selector, jobId, PROVIDER, e));
        }
        market.claim(job);
        IJobMarketTypes.JobState expected = e == IProviderRegistry.Eligibility.Eligible
            ? IJobMarketTypes.JobState.Claimed
            : IJobMarketTypes.JobState.Open;
        assertTrue(market.jobState(jobId) == expected, "state after claim");
        _assertConserved(_one(job));
    }

    function testFuzz_commitOnlyByClaimantWithNonZeroCommitment(bytes32 commitment, address stranger) public {
        vm.assume(stranger != PROVIDER);
        (bytes32 jobId,) = _claimed(3);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarketTypes.JobMarketNotProvider.selector, jobId, stranger));
        market.commit(jobId, commitment);
        vm.prank(PROVIDER);
        if (uint256(commitment) & ((1 << 152) - 1) == 0) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarketTypes.JobMarketZeroCommitment.selector, jobId));
        }
        market.commit(jobId, commitment);
    }

    function testFuzz_settleAcceptsOnlyTheCommittedReveal(bytes32 root, bytes32 salt, bytes32 otherRoot, bytes32 otherSalt)
        public
    {
        vm.assume(root != otherRoot || salt != otherSalt);
        (bytes32 jobId, IJobMarketTypes.Job memory job) = _claimed(4);
        bytes32 commitment = market.commitmentHash(jobId, PROVIDER, root, salt);
        vm.prank(PROVIDER);
        market.commit(jobId, commitment);
        _setDraw(jobId, false);
        vm.warp(block.timestamp + 1 hours);
        vm.expectRevert(abi.encodeWithSelector(IJobMarketTypes.JobMarketCommitmentMismatch.selector, jobId));
        market.settle(job, PROVIDER, otherRoot, otherSalt, "");
        uint256 before = market.balanceOf(IERC20(address(usd)), PROVIDER);
        market.settle(job, PROVIDER, root, salt, "");
        uint256 fee = job.request.price * 250 / 10_000;
        assertEq(market.balanceOf(IERC20(address(usd)), PROVIDER) - before, job.request.price - fee + 2 * job.request.price, "payout");
        _assertConserved(_one(job));
    }

    function testFuzz_timeoutSplitsCollateralAndConserves(uint96 price, uint32 lateBy) public {
        price = uint96(bound(price, 1 * USD, 100_000 * USD)); // at least the posted 1 tUSD per unit
        IJobMarketTypes.JobRequest memory r = _request(price, 5);
        vm.prank(CONSUMER);
        bytes32 jobId = market.createJob(r, "");
        IJobMarketTypes.Job memory job = _job(CONSUMER, r);
        vm.prank(PROVIDER);
        market.claim(job);
        vm.warp(block.timestamp + 1 hours + 1 + bound(lateBy, 0, 2 days));
        uint256 consumerBefore = market.balanceOf(IERC20(address(usd)), CONSUMER);
        market.enforceDeadline(job);
        uint256 collateral = uint256(price) * 2;
        uint256 expected = collateral * 2_000 / 10_000;
        if (block.timestamp > r.claimBy) expected += price; // could not reopen: refunded
        assertEq(market.balanceOf(IERC20(address(usd)), CONSUMER) - consumerBefore, expected, "consumer share");
        _assertConserved(_one(job));
        assertTrue(
            market.jobState(jobId) == IJobMarketTypes.JobState.Open || market.jobState(jobId) == IJobMarketTypes.JobState.Refunded,
            "reopened or refunded"
        );
    }

    function testFuzz_offerNeedsTheTargetProvidersSignature(uint256 signerKey, uint40 expiryDelay) public {
        signerKey = bound(signerKey, 1, 1e30);
        uint256 providerKey = 0xA11CE;
        address provider = vm.addr(providerKey);
        _onboard(provider, 10_000 * USD);
        IJobMarketTypes.JobRequest memory r = _request(100 * USD, 6);
        r.targetProvider = provider;
        bytes32 jobId = market.hashJob(_job(CONSUMER, r));
        uint40 expiry = uint40(block.timestamp + bound(expiryDelay, 0, 1 days));
        (uint8 v, bytes32 rs, bytes32 s) = vm.sign(signerKey, market.offerDigest(jobId, expiry));
        vm.prank(CONSUMER);
        if (signerKey != providerKey) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarketTypes.JobMarketInvalidSignature.selector, jobId, provider));
        }
        market.createJobWithOffer(r, "", expiry, abi.encodePacked(rs, s, v));
    }

    function testFuzz_parametersStayWithinBounds(uint8 which, uint256 value) public {
        IJobMarketTypes.Parameter p = IJobMarketTypes.Parameter(bound(which, 0, 19));
        (uint256 min, uint256 max) = market.parameterBounds(p);
        value = bound(value, 0, max * 2 + 10);
        bool inBounds = value >= min && value <= max;
        if (!inBounds) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarketTypes.JobMarketParameterOutOfBounds.selector, p, value, min, max)
            );
        } else if (!_boundHolds(p, value)) {
            (uint256 pMin, uint256 r, uint256 c) = _boundInputs(p, value);
            vm.expectRevert(abi.encodeWithSelector(IJobMarketTypes.JobMarketEconomicBoundBroken.selector, pMin, r, c));
        }
        market.setParameter(p, value);
        if (inBounds && _boundHolds(p, value)) assertEq(market.parameter(p), value, "stored");
        vm.prank(OTHER);
        vm.expectRevert(abi.encodeWithSignature("OwnableUnauthorizedAccount(address)", OTHER));
        market.setParameter(p, value);
    }

    /// @dev pMin * (1 - r) * (1 + collateralBps) > 1 after setting `p` to `value`.
    function _boundHolds(IJobMarketTypes.Parameter p, uint256 value) internal view returns (bool) {
        (uint256 pMin, uint256 r, uint256 c) = _boundInputs(p, value);
        return pMin * (10_000 - r) * (10_000 + c) > 1e12;
    }

    function _boundInputs(IJobMarketTypes.Parameter p, uint256 value)
        internal
        view
        returns (uint256 pMin, uint256 r, uint256 c)
    {
        pMin = p == IJobMarketTypes.Parameter.PMinBps ? value : market.parameter(IJobMarketTypes.Parameter.PMinBps);
        r = p == IJobMarketTypes.Parameter.AssumedCollusionBps
            ? value
            : market.parameter(IJobMarketTypes.Parameter.AssumedCollusionBps);
        c = p == IJobMarketTypes.Parameter.CollateralBps ? value : market.parameter(IJobMarketTypes.Parameter.CollateralBps);
    }

    function _claimed(uint256 nonce) internal returns (bytes32 jobId, IJobMarketTypes.Job memory job) {
        IJobMarketTypes.JobRequest memory r = _request(100 * USD, nonce);
        vm.prank(CONSUMER);
        jobId = market.createJob(r, "");
        job = _job(CONSUMER, r);
        vm.prank(PROVIDER);
        market.claim(job);
    }
}
