// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Stands in for the EIP-2935 block-hash history contract on a chain that has none (EDR here):
/// answers every 32-byte query with one fixed hash. Tests put its code at the system address.
contract BlockHashHistoryMock {
    fallback(bytes calldata) external returns (bytes memory) {
        return abi.encode(keccak256("meshwork.test.block-hash-history"));
    }
}
