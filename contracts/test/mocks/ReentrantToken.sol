// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title A hostile payment token that calls back into a victim contract during every transfer.
/// @dev Tests use it to show the market's entry points cannot be re-entered mid-transfer.
contract ReentrantToken is ERC20 {
    address public victim; // not `target`: that name is taken by ethers' contract objects
    bytes public payload;
    bool public reentered;
    bytes public lastRevert;

    constructor() ERC20("Reentrant", "RE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms the token: the next transfer calls `victim_` with `payload_`.
    function arm(address victim_, bytes calldata payload_) external {
        victim = victim_;
        payload = payload_;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address t = victim;
        if (t != address(0)) {
            victim = address(0);
            (bool ok, bytes memory ret) = t.call(payload);
            reentered = ok;
            lastRevert = ret;
        }
    }
}
