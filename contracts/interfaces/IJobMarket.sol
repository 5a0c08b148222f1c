// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobAudits} from "./IJobAudits.sol";
import {IJobMarketCore} from "./IJobMarketCore.sol";
import {IMarketAdmin} from "./IMarketAdmin.sol";

/// @title Meshwork job market, as users call it
/// @notice One address: the lifecycle core (`IJobMarketCore`) and, forwarded to the audit module that
/// shares its storage, the verification layer (`IJobAudits`) and administration (`IMarketAdmin`: guardian
/// pause, compute commons). Types, events and errors are in `IJobMarketTypes`. SDKs and integrators use
/// this interface's ABI.
interface IJobMarket is IJobMarketCore, IJobAudits, IMarketAdmin {
    /* Errors of the OpenZeppelin building blocks the market can revert with, so clients decode them too. */

    error OwnableUnauthorizedAccount(address account);
    error OwnableInvalidOwner(address owner);
    error ReentrancyGuardReentrantCall();
    error SafeERC20FailedOperation(address token);
    error SafeCastOverflowedUintDowncast(uint8 bits, uint256 value);
}
