// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title A token that approves as USDT does: no return value, and a non-zero allowance may only be
/// set from zero (`approve(spender, 0)` first). For the SDK's allowance tests only.
/// @dev Never deploy on a live chain.
contract ApproveFromZeroToken {
    mapping(address owner => mapping(address spender => uint256)) public allowance;
    mapping(address account => uint256) public balanceOf;
    uint8 public constant decimals = 6;

    error ApproveFromNonZero(uint256 allowance);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    /// @dev Returns nothing, as USDT does.
    function approve(address spender, uint256 amount) external {
        uint256 current = allowance[msg.sender][spender];
        if (amount != 0 && current != 0) revert ApproveFromNonZero(current);
        allowance[msg.sender][spender] = amount;
    }
}
