// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {MarketSetup} from "./utils/MarketSetup.sol";

/// @notice Fuzz tests of the registry: profile validation, and MESH conservation through any mix of
/// stake, unstake, slash and withdrawal.
contract ProviderRegistryFuzzTest is MarketSetup {
    address internal constant ALICE = address(0xA11CE);

    function setUp() public {
        _deploy();
    }

    function testFuzz_registerAcceptsExactlyTheValidProfiles(
        uint16 gpuCount,
        uint16 vramGB,
        uint16 gpuClass,
        bytes2 region,
        uint8 energy,
        uint16 runtimes
    ) public {
        energy = uint8(bound(energy, 0, 2));
        IProviderRegistry.Profile memory p =
            IProviderRegistry.Profile(gpuCount, vramGB, gpuClass, region, IProviderRegistry.Energy(energy), runtimes);
        bool upper0 = region[0] >= 0x41 && region[0] <= 0x5a;
        bool upper1 = region[1] >= 0x41 && region[1] <= 0x5a;
        string memory bad;
        if (gpuCount == 0) bad = "gpuCount";
        else if (vramGB == 0) bad = "vramGB";
        else if (runtimes == 0) bad = "runtimes";
        else if (region != bytes2(0) && !(upper0 && upper1)) bad = "region";
        vm.prank(ALICE);
        if (bytes(bad).length != 0) {
            vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderRegistryInvalidProfile.selector, bad));
        }
        registry.register(p, "");
        assertTrue(registry.isRegistered(ALICE) == (bytes(bad).length == 0), "registered iff valid");
    }

    /// @notice Whatever the sequence, the registry holds exactly stake + unbonding + slashed MESH and an
    /// entry never pays out more than its pool holds.
    function testFuzz_stakeUnstakeSlashWithdrawConservesMesh(
        uint256 stakeAmount,
        uint256 unstake1,
        uint256 unstake2,
        uint256 slashBps,
        uint256 wait
    ) public {
        stakeAmount = bound(stakeAmount, 1, 1e9 * MESH / 2);
        mesh.transfer(ALICE, stakeAmount);
        vm.startPrank(ALICE);
        mesh.approve(address(registry), stakeAmount);
        registry.stake(ALICE, stakeAmount);
        unstake1 = bound(unstake1, 1, stakeAmount);
        registry.requestUnstake(unstake1);
        unstake2 = bound(unstake2, 0, stakeAmount - unstake1);
        if (unstake2 != 0) registry.requestUnstake(unstake2);
        vm.stopPrank();

        slashBps = bound(slashBps, 0, 10_000);
        vm.prank(address(market));
        uint256 slashed = registry.slash(ALICE, slashBps, true);
        assertEq(slashed, stakeAmount * slashBps / 10_000, "slash amount");
        _assertMeshConserved();

        vm.warp(block.timestamp + bound(wait, 7 days, 30 days));
        uint256 before = mesh.balanceOf(ALICE);
        (, uint256 unbonding,) = registry.stakeOf(ALICE);
        vm.prank(ALICE);
        uint256 out = registry.withdrawStake(10);
        assertEq(mesh.balanceOf(ALICE) - before, out, "paid what it returned");
        assertTrue(out <= unbonding, "never more than the unbonding pool");
        assertTrue(unbonding - out <= 2, "rounding dust only");
        _assertMeshConserved();
    }

    /// @notice After a slash empties the unbonding pool, any later request is accepted and paid in full
    /// (less later slashes): the emptied entries are released for nothing, and MESH is conserved.
    function testFuzz_fullSlashStartsANewShareEpoch(uint256 stakeAmount, uint256 unstake1, uint256 restake, uint256 slashBps)
        public
    {
        stakeAmount = bound(stakeAmount, 1, 1e9 * MESH / 4);
        unstake1 = bound(unstake1, 1, stakeAmount);
        restake = bound(restake, 1, 1e9 * MESH / 4);
        mesh.transfer(ALICE, stakeAmount + restake);
        vm.startPrank(ALICE);
        mesh.approve(address(registry), stakeAmount + restake);
        registry.stake(ALICE, stakeAmount);
        registry.requestUnstake(unstake1);
        vm.stopPrank();
        vm.prank(address(market));
        registry.slash(ALICE, 10_000, false);
        (uint256 active, uint256 unbonding,) = registry.stakeOf(ALICE);
        assertEq(active + unbonding, 0, "a full slash takes everything");

        vm.startPrank(ALICE);
        registry.stake(ALICE, restake);
        uint256 entryId = registry.requestUnstake(restake);
        vm.stopPrank();
        (uint256 value,) = registry.unbondingEntry(ALICE, entryId);
        assertEq(value, restake, "priced 1:1 in the new epoch");
        slashBps = bound(slashBps, 0, 9_999);
        vm.prank(address(market));
        uint256 slashed = registry.slash(ALICE, slashBps, false);
        _assertMeshConserved();

        vm.warp(block.timestamp + 30 days);
        uint256 before = mesh.balanceOf(ALICE);
        vm.prank(ALICE);
        uint256 out = registry.withdrawStake(10);
        assertEq(mesh.balanceOf(ALICE) - before, out, "paid what it returned");
        assertTrue(out <= restake - slashed && restake - slashed - out <= 1, "the new entry less the later slash");
        _assertMeshConserved();
    }

    /// @notice Stake votes are the active stake of their time, or 0 from a slash of active stake (which
    /// writes no record) until the next record: never more than the stake was, and a later slash leaves
    /// them as they were. Operations may share a second (a block).
    function testFuzz_stakeVotesNeverExceedTheStakeOfTheirTime(
        uint256 first,
        uint256 unstake,
        uint256 slashBps,
        uint256 second,
        uint256 seed
    ) public {
        first = bound(first, 1, 1e9 * MESH / 4);
        unstake = bound(unstake, 1, first);
        second = bound(second, 1, 1e9 * MESH / 4);
        slashBps = bound(slashBps, 0, 10_000);
        mesh.transfer(ALICE, first + second);
        vm.prank(ALICE);
        mesh.approve(address(registry), first + second);

        uint256[4] memory at;
        uint256[4] memory active;
        for (uint256 step; step < 4; ++step) {
            vm.warp(block.timestamp + (seed >> (step * 8)) % 3); // 0, 1 or 2 s: same-second steps too
            vm.prank(step == 2 ? address(market) : ALICE);
            if (step == 0) registry.stake(ALICE, first);
            else if (step == 1) registry.requestUnstake(unstake);
            else if (step == 2) registry.slash(ALICE, slashBps, true);
            else registry.stake(ALICE, second);
            at[step] = block.timestamp;
            (active[step],,) = registry.stakeOf(ALICE);
        }
        vm.warp(block.timestamp + 1);

        for (uint256 step; step < 4; ++step) {
            uint256 votes = registry.getPastStakeVotes(ALICE, at[step]);
            // The stake at the end of that second is the last step's within it.
            uint256 last = step;
            while (last < 3 && at[last + 1] == at[step]) ++last;
            assertTrue(votes <= active[last], "never more than the stake of its time");
            // From the slash (if it took active stake) until the next record's second: 0; else exact.
            bool unrecorded = active[2] != active[1] && at[step] >= at[2] && at[step] < at[3];
            assertEq(votes, unrecorded ? 0 : active[last], "exact but from an unrecorded slash");
        }
        assertEq(registry.stakeVotes(ALICE), active[3], "votes now");
    }

    /// @notice Through any mix of stakes, unstake requests and slashes, some in one second: a time's stake
    /// votes never exceed the stake at the end of that second, and once a time is past they never change
    /// (a slash after a vote's snapshot leaves the vote's weights as they were).
    function testFuzz_pastStakeVotesNeverExceedTheStakeAndNeverChange(uint256 seed) public {
        mesh.transfer(ALICE, 1e9 * MESH / 4);
        vm.prank(ALICE);
        mesh.approve(address(registry), type(uint256).max);
        uint256 n = 10;
        uint256[10] memory at;
        uint256[10] memory activeAfter;
        uint256[10] memory firstRead;
        bool[10] memory read;
        for (uint256 i; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            vm.warp(block.timestamp + r % 3); // 0, 1 or 2 s
            // Every past time read so far reads the same now.
            for (uint256 j; j < i; ++j) {
                if (at[j] >= block.timestamp) continue;
                uint256 v = registry.getPastStakeVotes(ALICE, at[j]);
                if (read[j]) assertEq(v, firstRead[j], "a past time's votes changed");
                (firstRead[j], read[j]) = (v, true);
            }
            (uint256 active,,) = registry.stakeOf(ALICE);
            uint256 kind = (r >> 8) % 3;
            if (kind == 1 && active == 0) kind = 0;
            if (kind == 0) {
                vm.prank(ALICE);
                registry.stake(ALICE, bound(r >> 16, 1, 1e6 * MESH));
            } else if (kind == 1) {
                vm.prank(ALICE);
                registry.requestUnstake(bound(r >> 16, 1, active));
            } else {
                vm.prank(address(market));
                registry.slash(ALICE, bound(r >> 16, 0, 10_000), false);
            }
            at[i] = block.timestamp;
            (activeAfter[i],,) = registry.stakeOf(ALICE);
        }
        vm.warp(block.timestamp + 1);
        for (uint256 i; i < n; ++i) {
            uint256 last = i; // the stake at the end of that second is the last operation's within it
            while (last + 1 < n && at[last + 1] == at[i]) ++last;
            uint256 v = registry.getPastStakeVotes(ALICE, at[i]);
            assertTrue(v <= activeAfter[last], "never more than the stake of its time");
            if (read[i]) assertEq(v, firstRead[i], "a past time's votes changed");
        }
    }

    function testFuzz_unstakeMoreThanActiveIsRejected(uint256 stakeAmount, uint256 unstake) public {
        stakeAmount = bound(stakeAmount, 1, 1e6 * MESH);
        unstake = bound(unstake, stakeAmount + 1, type(uint128).max);
        mesh.transfer(ALICE, stakeAmount);
        vm.startPrank(ALICE);
        mesh.approve(address(registry), stakeAmount);
        registry.stake(ALICE, stakeAmount);
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.ProviderRegistryInsufficientStake.selector, ALICE, stakeAmount, unstake)
        );
        registry.requestUnstake(unstake);
        vm.stopPrank();
    }

    function testFuzz_parametersStayWithinBounds(uint8 which, uint256 value) public {
        IProviderRegistry.Parameter p = IProviderRegistry.Parameter(bound(which, 0, 2));
        (uint256 min, uint256 max) = registry.parameterBounds(p);
        value = bound(value, 0, max < type(uint256).max / 2 ? max * 2 + 1 : max);
        if (value < min || value > max) {
            vm.expectRevert(
                abi.encodeWithSelector(IProviderRegistry.ProviderRegistryParameterOutOfBounds.selector, p, value, min, max)
            );
        }
        registry.setParameter(p, value);
    }

    function _assertMeshConserved() internal view {
        assertEq(
            mesh.balanceOf(address(registry)), registry.totalStaked() + registry.slashedStake(), "registry MESH balance"
        );
        (uint256 active, uint256 unbonding,) = registry.stakeOf(ALICE);
        assertEq(registry.totalStaked(), active + unbonding, "total staked");
    }
}
