// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobMarketTypes} from "../interfaces/IJobMarketTypes.sol";
import {VerificationLib} from "../libraries/JobParams.sol";
import {MarketSetup} from "./utils/MarketSetup.sol";

/// @notice Fuzz tests of result proofs and audit reveals: a genuine proof of any chunk of any tree
/// verifies, any single change to it does not, and the market rejects a reveal with a tampered leaf.
contract MerkleFuzzTest is MarketSetup {
    address internal constant CONSUMER = address(0xC0);
    address internal constant PROVIDER = address(0xA1);
    address internal constant AUDITOR = address(0xA2);

    function setUp() public {
        _deploy();
        _onboard(PROVIDER, 100_000 * USD);
        _onboard(AUDITOR, 100_000 * USD);
        _fund(CONSUMER, 100_000 * USD);
    }

    function _node(bytes32 l, bytes32 r) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), l, r));
    }

    /// @dev The padded tree of `n` pseudo-random leaves and the proof of `index`.
    function _tree(uint256 seed, uint256 n, uint256 index)
        internal
        pure
        returns (bytes32 root, bytes32 leaf, bytes32[] memory proof)
    {
        uint256 d;
        while ((uint256(1) << d) < n) ++d;
        bytes32[] memory level = new bytes32[](uint256(1) << d);
        for (uint256 i; i < n; ++i) level[i] = keccak256(abi.encode(seed, i));
        leaf = level[index];
        proof = new bytes32[](d);
        for (uint256 l; l < d; ++l) {
            proof[l] = level[index ^ 1];
            bytes32[] memory next = new bytes32[](level.length / 2);
            for (uint256 i; i < next.length; ++i) next[i] = _node(level[2 * i], level[2 * i + 1]);
            level = next;
            index >>= 1;
        }
        root = level[0];
    }

    function testFuzz_genuineProofsVerifyAndTamperedOnesDoNot(uint256 seed, uint256 n, uint256 index, uint256 which)
        public
        view
    {
        n = bound(n, 1, 300);
        index = bound(index, 0, n - 1);
        (bytes32 root, bytes32 leaf, bytes32[] memory proof) = _tree(seed, n, index);
        assertTrue(market.verifyChunk(root, n, index, leaf, proof), "genuine proof");
        assertTrue(!market.verifyChunk(root, n, index, leaf ^ bytes32(uint256(1)), proof), "tampered leaf");
        assertTrue(!market.verifyChunk(root, n, n + (which % 5), leaf, proof), "index out of range");
        if (proof.length > 0) {
            uint256 level = which % proof.length;
            proof[level] = proof[level] ^ bytes32(uint256(1) << (which % 256));
            assertTrue(!market.verifyChunk(root, n, index, leaf, proof), "tampered sibling");
            assertTrue(!market.verifyChunk(root, n, index ^ (uint256(1) << level), leaf, proof) || n == 1, "moved index");
        }
    }

    function testFuzz_revealWithATamperedLeafIsRejected(bytes32 salt, uint256 position, bytes32 garbage) public {
        IJobMarketTypes.JobRequest memory r = _request(100 * USD, 1);
        r.verification = VerificationLib.pack(16, 4, 0);
        vm.prank(CONSUMER);
        bytes32 jobId = market.createJob(r, "");
        IJobMarketTypes.Job memory job = _job(CONSUMER, r);
        vm.prank(PROVIDER);
        market.claim(job);
        (bytes32 root,,) = _tree(uint256(jobId), 16, 0);
        bytes32 commitment = market.commitmentHash(jobId, PROVIDER, root, salt);
        vm.prank(PROVIDER);
        market.commit(jobId, commitment);
        _setDraw(jobId, true);
        uint32[] memory sample = market.sampleOf(job);
        vm.prank(AUDITOR);
        market.audit(job, keccak256("an answer that differs from the provider's"));

        bytes32[] memory leaves = new bytes32[](4);
        bytes32[][] memory proofs = new bytes32[][](4);
        for (uint256 k; k < 4; ++k) (, leaves[k], proofs[k]) = _tree(uint256(jobId), 16, sample[k]);
        position = bound(position, 0, 3);
        vm.assume(garbage != leaves[position]);
        bytes32 original = leaves[position];
        leaves[position] = garbage;
        vm.expectRevert(abi.encodeWithSelector(IJobMarketTypes.JobMarketInvalidProof.selector, jobId, position));
        market.revealResult(job, PROVIDER, root, salt, "", leaves, proofs);
        leaves[position] = original;
        market.revealResult(job, PROVIDER, root, salt, "", leaves, proofs);
        assertTrue(market.auditOf(job).phase == IJobMarketTypes.AuditPhase.AwaitingAuditorReveal, "revealed");
    }
}
