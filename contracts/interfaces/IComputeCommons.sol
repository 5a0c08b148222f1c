// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IJobMarket} from "./IJobMarket.sol";
import {IJobMarketTypes} from "./IJobMarketTypes.sol";

/// @title Meshwork compute commons: reserved, funded capacity for newcomers
/// @notice Governance funds programmes ("students 2027", "civic projects") from the treasury and
/// approves grantees with an allowance; a grantee's jobs are paid from it. The commons is the consumer
/// of those jobs on the market, so refunds come back here and are returned to the programme. Providers
/// opt in to a commons discount by posting a commons price (`ProviderRegistry.commonsPriceKey`).
/// Every programme's budget, spend and jobs are public, on-chain and in events. A grantee is trusted with
/// its allowance as with cash: it chooses each job's price and work units, and nothing stops it from
/// claiming its own untargeted job as a provider; governance sizes allowances accordingly.
interface IComputeCommons {
    /// @param name Public name.
    /// @param token Payment token of the programme's jobs.
    /// @param budget Total granted so far (tUSD units); `spent` of it is committed to jobs.
    /// @param start First time a grantee may post a job; `end` the last.
    /// @param jobs Number of jobs posted.
    struct Programme {
        string name;
        IERC20 token;
        uint128 budget;
        uint128 spent;
        uint40 start;
        uint40 end;
        uint32 jobs;
    }

    event ProgrammeCreated(uint256 indexed programmeId, string name, IERC20 indexed token, uint256 budget, uint256 start, uint256 end);
    event ProgrammeFunded(uint256 indexed programmeId, uint256 amount, uint256 newBudget);
    event BudgetReclaimed(uint256 indexed programmeId, uint256 amount, uint256 newBudget);
    event GranteeApproved(uint256 indexed programmeId, address indexed grantee, uint256 allowance);
    event CommonsJobCreated(uint256 indexed programmeId, address indexed grantee, bytes32 indexed jobId, uint256 price);
    event CommonsJobCancelled(uint256 indexed programmeId, bytes32 indexed jobId);
    /// @notice A finished commons job stopped being outstanding; `returned` is the price given back to its
    /// programme (the whole price when refunded, cancelled or slashed; 0 when settled), and to the
    /// grantee's allowance unless governance set that allowance after the job was posted.
    event CommonsJobClosed(uint256 indexed programmeId, bytes32 indexed jobId, uint256 returned);
    event UnallocatedWithdrawn(IERC20 indexed token, address indexed to, uint256 amount);

    error CommonsUnknownProgramme(uint256 programmeId);
    error CommonsOutsidePeriod(uint256 programmeId, uint256 start, uint256 end);
    error CommonsAllowanceExceeded(uint256 programmeId, address grantee, uint256 allowance, uint256 price);
    error CommonsBudgetExceeded(uint256 programmeId, uint256 available, uint256 price);
    error CommonsInsufficientFunds(IERC20 token, uint256 unallocated, uint256 needed);
    error CommonsNotGrantee(bytes32 jobId, address caller);
    error CommonsUnknownJob(bytes32 jobId);
    error CommonsJobAlreadyClosed(bytes32 jobId);
    error CommonsJobNotFinished(bytes32 jobId, IJobMarketTypes.JobState state);
    error CommonsInvalidPeriod(uint256 start, uint256 end);
    error CommonsZeroAddress();
    error CommonsWrongToken(uint256 programmeId, IERC20 token);
    error CommonsTargetedJob(uint256 programmeId, address targetProvider);

    /* GOVERNANCE (owner: the timelock) */

    /// @notice Creates a programme funded with `budget` of `token` the commons holds unallocated (sent by
    /// the treasury, e.g. `JobMarket.withdrawTreasury(token, commons, budget)` in the same proposal).
    /// @return programmeId 1, 2, ...
    function createProgramme(string calldata name, IERC20 token, uint256 budget, uint256 start, uint256 end)
        external
        returns (uint256 programmeId);

    /// @notice Adds `amount` of unallocated funds to a programme's budget.
    function fundProgramme(uint256 programmeId, uint256 amount) external;

    /// @notice Takes `amount` of a programme's remaining budget (budget - spent) back into the unallocated
    /// funds: what an ended programme left, or a running one no longer needs. Refunds of its jobs closed
    /// later still return to the programme's budget, to be reclaimed in turn.
    function reclaimBudget(uint256 programmeId, uint256 amount) external;

    /// @notice Sets a grantee's remaining allowance in a programme (0 revokes it; at most 2^224 - 1,
    /// `SafeCastOverflowedUintDowncast` beyond). The allowance is then
    /// exactly `allowance`: refunds of jobs the grantee posted before return to the programme's budget,
    /// not to the allowance (governance may also cancel those jobs while unclaimed, `cancelJob`).
    function approveGrantee(uint256 programmeId, address grantee, uint256 allowance) external;

    /// @notice Sends unallocated funds (returned fraud shares, reclaimed budgets) wherever governance decides.
    function withdrawUnallocated(IERC20 token, address to, uint256 amount) external;

    /* GRANTEES */

    /// @notice Posts a commons job paid from the programme and the caller's allowance. The commons is the
    /// job's consumer; the requirements are marked as a commons job (providers' commons prices apply).
    /// The job must be open to every provider (`targetProvider` 0): public money is not handed to a
    /// provider of the grantee's choosing.
    /// @return jobId The market's job id.
    function createJob(uint256 programmeId, IJobMarketTypes.JobRequest calldata request, string calldata specURI)
        external
        returns (bytes32 jobId);

    /// @notice The grantee, or governance (the owner), withdraws an unclaimed commons job; the price
    /// returns to the programme (and to the allowance, as for {closeJob}). Called by governance for a job
    /// no longer open (claimed, finished or already cancelled), it does nothing instead of reverting, so
    /// that a proposal bundling a revocation with cancellations cannot be made to fail by a claim.
    function cancelJob(IJobMarketTypes.Job calldata job) external;

    /// @notice Anyone, once per job: closes a finished commons job. A refunded, cancelled or slashed job's
    /// price returns to its programme's budget and, unless governance set the grantee's allowance since the
    /// job was posted, to that allowance; a settled job's price stays spent. Until a job is closed its price
    /// counts as outstanding and is kept out of `unallocated`.
    function closeJob(IJobMarketTypes.Job calldata job) external;

    /* VIEWS */

    function market() external view returns (IJobMarket);
    function programmeCount() external view returns (uint256);
    function programme(uint256 programmeId) external view returns (Programme memory);
    function allowanceOf(uint256 programmeId, address grantee) external view returns (uint256);
    /// @notice The programme and grantee of a commons job (0 when not a commons job).
    function jobOf(bytes32 jobId) external view returns (uint256 programmeId, address grantee);
    /// @notice The programmes' remaining budgets in `token` (budget - spent, summed).
    function allocated(IERC20 token) external view returns (uint256);
    /// @notice Prices of commons jobs in `token` not yet closed (escrowed, or finished — refunded or
    /// settled — and not yet closed).
    function outstanding(IERC20 token) external view returns (uint256);
    /// @notice Funds of `token` governance may allocate or withdraw: everything that reached the commons'
    /// wallet (treasury payments, donations) or was reclaimed from a programme, and was not allocated or
    /// withdrawn since, plus penalty shares the market credited it once they cannot be a refund owed to a
    /// programme (holdings beyond allocated, free funds and the price of every commons job not yet closed:
    /// escrowed, or finished, settled ones included, and not yet closed).
    function unallocated(IERC20 token) external view returns (uint256);
}
