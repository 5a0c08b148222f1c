// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title MerkleSha256
/// @notice The result tree of PROTOCOL.md §5, checked with the SHA-256 precompile.
///
/// - leaf_i = sha256(0x00 ‖ jobId ‖ uint32be(i) ‖ sha256(inputChunk_i) ‖ sha256(outputChunk_i)), computed
///   off-chain by the worker and the auditor (the contracts only compare and prove leaves).
/// - node = sha256(0x01 ‖ left ‖ right). Domain separation keeps a node from passing as a leaf.
/// - A tree of N leaves has depth ceil(log2 N); missing leaves at the right are bytes32(0) (no
///   SHA-256 output is zero in practice), so every proof has exactly `depth(N)` siblings and the
///   index bits pick the side at each level. The SDK's `sdk/src/merkle.ts` builds the same trees.
library MerkleSha256 {
    /// @notice ceil(log2(chunks)): the number of siblings in a proof (0 for a single chunk).
    function depth(uint256 chunks) internal pure returns (uint256 d) {
        while ((uint256(1) << d) < chunks) ++d;
    }

    /// @notice The root a leaf and its proof lead to.
    function rootOf(bytes32 leaf, uint256 index, bytes32[] calldata proof) internal pure returns (bytes32 node) {
        node = leaf;
        for (uint256 level; level < proof.length; ++level) {
            node = (index >> level) & 1 == 0 ? _hashNode(node, proof[level]) : _hashNode(proof[level], node);
        }
    }

    /// @notice True when `leaf` is chunk `index` of the tree of `chunks` leaves with root `root`.
    function verify(bytes32 root, uint256 chunks, uint256 index, bytes32 leaf, bytes32[] calldata proof)
        internal
        pure
        returns (bool)
    {
        return index < chunks && proof.length == depth(chunks) && rootOf(leaf, index, proof) == root;
    }

    function _hashNode(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }
}
