// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title MESH, Meshwork's staking and governance token
/// @notice Fixed supply minted once at deployment. Permit (ERC-2612) for one-transaction staking, votes
/// with a timestamp clock (ERC-6372) so governance periods are in seconds on every chain.
contract MeshToken is ERC20, ERC20Permit, ERC20Votes {
    /// @param recipient Receives the whole supply (the deployer, or `MESH_RECIPIENT`): distributing it is
    /// the recipient's task after deployment (docs/governance.md), and until then it holds every vote.
    /// @param supply Total supply in wei (18 decimals).
    constructor(address recipient, uint256 supply) ERC20("Meshwork", "MESH") ERC20Permit("Meshwork") {
        _mint(recipient, supply);
    }

    /// @notice ERC-6372 clock: block timestamps.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice ERC-6372 clock description.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
