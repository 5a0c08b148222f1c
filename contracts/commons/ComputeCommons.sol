// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IComputeCommons} from "../interfaces/IComputeCommons.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {IJobMarketTypes} from "../interfaces/IJobMarketTypes.sol";

/// @title ComputeCommons
/// @notice See {IComputeCommons}. Owned by the governance timelock.
/// @dev Budget conservation, per token: holdings (market balance plus wallet) = allocated + free +
/// refunds not yet closed + extras (penalty shares the market credited the commons as a job's consumer).
/// The commons cannot see a refund arrive, so it books funds it can see: `free` grows by what reaches its
/// wallet (treasury payments, donations; the market never pays into it unasked), and shrinks as governance
/// allocates or withdraws. Extras are only counted once they are provable: holdings beyond allocated, free
/// and every open job's price (`outstanding`). A refunded price is therefore never withdrawn or reallocated
/// before `closeJob` gives it back to its programme.
contract ComputeCommons is IComputeCommons, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    struct CommonsJob {
        uint32 programmeId;
        address grantee;
        bool closed;
        /// @dev The grant's epoch when the job was posted: a refund goes back to the allowance only while
        /// governance has not set the allowance since.
        uint32 grantEpoch;
    }

    /// @dev A grantee's remaining allowance in a programme, and how many times governance set it.
    struct Grant {
        uint224 allowance;
        uint32 epoch;
    }

    IJobMarket private immutable _market;
    uint256 private _programmeCount;
    mapping(uint256 programmeId => Programme) private _programmes;
    mapping(uint256 programmeId => mapping(address grantee => Grant)) private _grants;
    mapping(bytes32 jobId => CommonsJob) private _jobs;
    mapping(IERC20 token => uint256) private _allocated;
    mapping(IERC20 token => uint256) private _outstanding;
    mapping(IERC20 token => uint256) private _free;
    /// @dev The wallet balance after the commons' own last move: anything above it arrived as funding.
    mapping(IERC20 token => uint256) private _walletSeen;

    constructor(IJobMarket market_, address owner_) Ownable(owner_) {
        if (address(market_) == address(0)) revert CommonsZeroAddress();
        _market = market_;
    }

    /* GOVERNANCE */

    /// @inheritdoc IComputeCommons
    function createProgramme(string calldata name, IERC20 token, uint256 budget, uint256 start, uint256 end)
        external
        onlyOwner
        returns (uint256 programmeId)
    {
        if (address(token) == address(0)) revert CommonsZeroAddress();
        if (end <= start) revert CommonsInvalidPeriod(start, end);
        _allocate(token, budget);
        programmeId = ++_programmeCount;
        _programmes[programmeId] = Programme(name, token, budget.toUint128(), 0, start.toUint40(), end.toUint40(), 0);
        token.forceApprove(address(_market), type(uint256).max);
        emit ProgrammeCreated(programmeId, name, token, budget, start, end);
    }

    /// @inheritdoc IComputeCommons
    function fundProgramme(uint256 programmeId, uint256 amount) external onlyOwner {
        Programme storage p = _programme(programmeId);
        _allocate(p.token, amount);
        p.budget += amount.toUint128();
        emit ProgrammeFunded(programmeId, amount, p.budget);
    }

    /// @inheritdoc IComputeCommons
    function reclaimBudget(uint256 programmeId, uint256 amount) external onlyOwner {
        Programme storage p = _programme(programmeId);
        uint256 available = p.budget - p.spent;
        if (amount > available) revert CommonsBudgetExceeded(programmeId, available, amount);
        p.budget -= uint128(amount);
        _allocated[p.token] -= amount;
        _free[p.token] = _syncWallet(p.token) + amount;
        emit BudgetReclaimed(programmeId, amount, p.budget);
    }

    /// @inheritdoc IComputeCommons
    function approveGrantee(uint256 programmeId, address grantee, uint256 allowance) external onlyOwner {
        _programme(programmeId);
        if (grantee == address(0)) revert CommonsZeroAddress();
        Grant storage grant = _grants[programmeId][grantee];
        grant.allowance = allowance.toUint224();
        // Wraps after 2^32 approvals of one grantee: only then could a refund reach a newer allowance.
        unchecked {
            ++grant.epoch;
        }
        emit GranteeApproved(programmeId, grantee, allowance);
    }

    /// @inheritdoc IComputeCommons
    function withdrawUnallocated(IERC20 token, address to, uint256 amount) external onlyOwner nonReentrant {
        if (to == address(0)) revert CommonsZeroAddress();
        _spendUnallocated(token, amount);
        uint256 inWallet = token.balanceOf(address(this));
        if (inWallet < amount) _market.withdraw(token, amount - inWallet, address(this));
        emit UnallocatedWithdrawn(token, to, amount);
        token.safeTransfer(to, amount);
        _walletSeen[token] = token.balanceOf(address(this));
    }

    /* GRANTEES */

    /// @inheritdoc IComputeCommons
    function createJob(uint256 programmeId, IJobMarketTypes.JobRequest calldata request, string calldata specURI)
        external
        nonReentrant
        returns (bytes32 jobId)
    {
        Programme storage p = _programme(programmeId);
        if (block.timestamp < p.start || block.timestamp > p.end) {
            revert CommonsOutsidePeriod(programmeId, p.start, p.end);
        }
        if (request.paymentToken != p.token) revert CommonsWrongToken(programmeId, request.paymentToken);
        if (request.targetProvider != address(0)) revert CommonsTargetedJob(programmeId, request.targetProvider);
        uint256 price = request.price;
        Grant storage grant = _grants[programmeId][msg.sender];
        uint256 allowance = grant.allowance;
        if (price > allowance) revert CommonsAllowanceExceeded(programmeId, msg.sender, allowance, price);
        uint256 available = p.budget - p.spent;
        if (price > available) revert CommonsBudgetExceeded(programmeId, available, price);

        grant.allowance = uint224(allowance - price);
        p.spent += uint128(price);
        ++p.jobs;
        _allocated[p.token] -= price;
        _outstanding[p.token] += price;
        _syncWallet(p.token);
        IJobMarketTypes.JobRequest memory commonsRequest = request;
        commonsRequest.requirements = request.requirements.asCommons();
        jobId = _market.createJob(commonsRequest, specURI);
        _walletSeen[p.token] = p.token.balanceOf(address(this));
        _jobs[jobId] = CommonsJob(uint32(programmeId), msg.sender, false, grant.epoch);
        emit CommonsJobCreated(programmeId, msg.sender, jobId, price);
    }

    /// @inheritdoc IComputeCommons
    function cancelJob(IJobMarketTypes.Job calldata job) external nonReentrant {
        bytes32 jobId = _market.hashJob(job);
        CommonsJob memory j = _jobs[jobId];
        if (msg.sender != j.grantee) {
            if (msg.sender != owner() || j.grantee == address(0)) revert CommonsNotGrantee(jobId, msg.sender);
            // Governance: a job no longer open (claimed, or cancelled by its grantee meanwhile) is left as
            // it is, so that a proposal bundling a revocation with cancellations cannot be made to fail.
            if (_market.jobState(jobId) != IJobMarketTypes.JobState.Open) return;
        }
        _market.cancel(job);
        emit CommonsJobCancelled(j.programmeId, jobId);
        _close(jobId, job, true);
    }

    /// @inheritdoc IComputeCommons
    function closeJob(IJobMarketTypes.Job calldata job) external {
        bytes32 jobId = _market.hashJob(job);
        IJobMarketTypes.JobState state = _market.jobState(jobId);
        bool refunded = state == IJobMarketTypes.JobState.Refunded || state == IJobMarketTypes.JobState.Cancelled
            || state == IJobMarketTypes.JobState.Slashed;
        if (!refunded && state != IJobMarketTypes.JobState.Settled) revert CommonsJobNotFinished(jobId, state);
        _close(jobId, job, refunded);
    }

    /* VIEWS */

    /// @inheritdoc IComputeCommons
    function market() external view returns (IJobMarket) {
        return _market;
    }

    /// @inheritdoc IComputeCommons
    function programmeCount() external view returns (uint256) {
        return _programmeCount;
    }

    /// @inheritdoc IComputeCommons
    function programme(uint256 programmeId) external view returns (Programme memory) {
        return _programme(programmeId);
    }

    /// @inheritdoc IComputeCommons
    function allowanceOf(uint256 programmeId, address grantee) external view returns (uint256) {
        return _grants[programmeId][grantee].allowance;
    }

    /// @inheritdoc IComputeCommons
    function jobOf(bytes32 jobId) external view returns (uint256 programmeId, address grantee) {
        CommonsJob memory j = _jobs[jobId];
        return (j.programmeId, j.grantee);
    }

    /// @inheritdoc IComputeCommons
    function allocated(IERC20 token) external view returns (uint256) {
        return _allocated[token];
    }

    /// @inheritdoc IComputeCommons
    function outstanding(IERC20 token) external view returns (uint256) {
        return _outstanding[token];
    }

    /// @inheritdoc IComputeCommons
    function unallocated(IERC20 token) public view returns (uint256) {
        uint256 inWallet = token.balanceOf(address(this));
        uint256 free = _free[token] + _arrived(token, inWallet);
        return free + _extras(token, inWallet, free);
    }

    /* INTERNAL */

    function _programme(uint256 programmeId) private view returns (Programme storage p) {
        p = _programmes[programmeId];
        if (address(p.token) == address(0)) revert CommonsUnknownProgramme(programmeId);
    }

    function _allocate(IERC20 token, uint256 amount) private {
        _spendUnallocated(token, amount);
        _allocated[token] += amount;
    }

    /// @dev Takes `amount` from the unallocated funds: booked free funds first, then provable extras.
    function _spendUnallocated(IERC20 token, uint256 amount) private {
        uint256 free = _syncWallet(token);
        uint256 available = free + _extras(token, token.balanceOf(address(this)), free);
        if (amount > available) revert CommonsInsufficientFunds(token, available, amount);
        _free[token] = amount < free ? free - amount : 0;
    }

    /// @dev Books what reached the wallet since the commons' last move as free funds.
    function _syncWallet(IERC20 token) private returns (uint256 free) {
        uint256 inWallet = token.balanceOf(address(this));
        free = _free[token] + _arrived(token, inWallet);
        _free[token] = free;
        _walletSeen[token] = inWallet;
    }

    function _arrived(IERC20 token, uint256 inWallet) private view returns (uint256) {
        uint256 seen = _walletSeen[token];
        return inWallet > seen ? inWallet - seen : 0;
    }

    /// @dev Holdings beyond everything booked and every open job's price: penalty shares that cannot be
    /// a refund still owed to a programme.
    function _extras(IERC20 token, uint256 inWallet, uint256 free) private view returns (uint256) {
        uint256 holdings = _market.balanceOf(token, address(this)) + inWallet;
        uint256 reserved = _allocated[token] + free + _outstanding[token];
        return holdings > reserved ? holdings - reserved : 0;
    }

    /// @dev Closes a commons job once. When `refunded`, its price is back in the commons' market balance:
    /// give it back to the programme, and to the grantee's allowance unless governance set it since.
    function _close(bytes32 jobId, IJobMarketTypes.Job calldata job, bool refunded) private {
        CommonsJob storage j = _jobs[jobId];
        if (j.grantee == address(0)) revert CommonsUnknownJob(jobId);
        if (j.closed) revert CommonsJobAlreadyClosed(jobId);
        j.closed = true;
        uint256 price = job.request.price;
        Programme storage p = _programmes[j.programmeId];
        _outstanding[p.token] -= price;
        uint256 returned;
        if (refunded) {
            returned = price;
            p.spent -= uint128(price);
            _allocated[p.token] += price;
            Grant storage grant = _grants[j.programmeId][j.grantee];
            if (grant.epoch == j.grantEpoch) grant.allowance += uint224(price);
        }
        emit CommonsJobClosed(j.programmeId, jobId, returned);
    }
}
