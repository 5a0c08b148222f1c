// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IJobMarket} from "../../interfaces/IJobMarket.sol";
import {IJobMarketTypes} from "../../interfaces/IJobMarketTypes.sol";
import {IRandomnessSource} from "../../interfaces/IRandomnessSource.sol";
import {AuditModule} from "../../market/AuditModule.sol";
import {ComputeCommons} from "../../commons/ComputeCommons.sol";
import {MockRandomness} from "../mocks/MockRandomness.sol";
import {IProviderRegistry} from "../../interfaces/IProviderRegistry.sol";
import {JobMarket} from "../../market/JobMarket.sol";
import {ProviderRegistry} from "../../staking/ProviderRegistry.sol";
import {MeshToken} from "../../token/MeshToken.sol";
import {RequirementsLib, VerificationLib} from "../../libraries/JobParams.sol";
import {TestUSD} from "../mocks/TestUSD.sol";
import {TestBase} from "./Vm.sol";

/// @notice Deploys the system the way the deploy script does, with the parameters of PROTOCOL.md §7.
abstract contract MarketSetup is TestBase {
    uint256 internal constant MESH = 1e18;
    uint256 internal constant USD = 1e6;
    uint256 internal constant MIN_STAKE = 1_000 * MESH;

    MeshToken public mesh;
    ProviderRegistry public registry;
    IJobMarket public market;
    TestUSD public usd;
    MockRandomness public randomness;
    ComputeCommons public commons;

    function _deploy() internal {
        vm.warp(1_800_000_000);
        mesh = new MeshToken(address(this), 1e9 * MESH);
        registry = new ProviderRegistry(IERC20(address(mesh)), address(this), MIN_STAKE, 7 days, 30 days);
        AuditModule module = new AuditModule(IProviderRegistry(address(registry)));
        market = IJobMarket(
            address(
                new JobMarket(
                    IProviderRegistry(address(registry)), address(module), address(this), defaultConfig(), defaultVerification()
                )
            )
        );
        registry.setMarket(address(market));
        usd = new TestUSD();
        market.setPaymentToken(IERC20(address(usd)), true);
        randomness = new MockRandomness();
        market.setRandomnessSource(IRandomnessSource(address(randomness)));
        commons = new ComputeCommons(market, address(this));
        market.setCommons(address(commons));
    }

    function defaultConfig() internal pure returns (IJobMarketTypes.MarketConfig memory) {
        return IJobMarketTypes.MarketConfig({
            feeBps: 250,
            collateralBps: 20_000,
            timeoutSlashBps: 2_000,
            challengeWindow: 1 hours,
            revealWindow: 1 hours,
            pMinBps: 5_000,
            probationJobs: 0,
            auditRewardBps: 200,
            auditCollateralBps: 10_000,
            auditClaimWindow: 1 hours,
            auditRevealWindow: 1 hours,
            minComputeWindow: 60,
            maxComputeWindow: 7 days,
            flags: 0
        });
    }

    function defaultVerification() internal pure returns (IJobMarketTypes.VerificationConfig memory) {
        return IJobMarketTypes.VerificationConfig({
            fraudStakeSlashBps: 1_000,
            fraudConsumerBps: 3_000,
            fraudAuditorBps: 5_000,
            challengeBondBps: 1_000,
            assumedCollusionBps: 3_333,
            escalationWindow: 7 days,
            auditPoolShareBps: 4_000
        });
    }

    /// @dev Makes the next draw of `jobId` come out as `audited` (with the default probability, pMin).
    function _setDraw(bytes32 jobId, bool audited) internal {
        for (uint256 i;; ++i) {
            bytes32 v = keccak256(abi.encode(i));
            if ((uint256(keccak256(abi.encode(v, jobId))) % 10_000 < 5_000) == audited) {
                randomness.set(IRandomnessSource.Availability.Ready, v);
                return;
            }
        }
    }

    function defaultProfile() internal pure returns (IProviderRegistry.Profile memory) {
        return IProviderRegistry.Profile({
            gpuCount: 2,
            vramGB: 24,
            gpuClass: 3,
            region: "DE",
            energy: IProviderRegistry.Energy.Renewable,
            runtimes: 3
        });
    }

    /// @dev Registers, stakes the minimum, posts 1 tUSD per work unit and deposits `usdBalance`.
    function _onboard(address provider, uint256 usdBalance) internal {
        mesh.transfer(provider, MIN_STAKE);
        vm.startPrank(provider);
        registry.register(defaultProfile(), "");
        mesh.approve(address(registry), type(uint256).max);
        registry.stake(provider, MIN_STAKE);
        registry.postPrice(IERC20(address(usd)), 1 * USD);
        vm.stopPrank();
        _fund(provider, usdBalance);
    }

    function _fund(address account, uint256 amount) internal {
        if (amount == 0) return;
        usd.mint(account, amount);
        vm.startPrank(account);
        usd.approve(address(market), type(uint256).max);
        market.deposit(IERC20(address(usd)), account, amount);
        vm.stopPrank();
    }

    function _request(uint256 price, uint256 nonce) internal view returns (IJobMarketTypes.JobRequest memory) {
        return IJobMarketTypes.JobRequest({
            paymentToken: IERC20(address(usd)),
            price: uint96(price),
            workUnits: 1,
            specHash: keccak256(abi.encode("spec", nonce)),
            requirements: RequirementsLib.pack(0, 16, 1, 0, bytes2(0), false),
            verification: VerificationLib.pack(256, 4, 0),
            claimBy: uint40(block.timestamp + 1 days),
            computeWindow: 1 hours,
            targetProvider: address(0),
            nonce: uint64(nonce)
        });
    }

    function _job(address consumer, IJobMarketTypes.JobRequest memory request) internal view returns (IJobMarketTypes.Job memory) {
        return IJobMarketTypes.Job({consumer: consumer, request: request, terms: market.currentTerms()});
    }
}
