/**
 * Every error the SDK throws is a {@link MeshworkError}. Catch the base class, narrow with `instanceof`
 * or by `name`, and use `walk()` to find a cause of a given kind.
 *
 * @example
 * ```ts
 * try {
 *   await mw.jobs.create(spec, { price: 10_000_000n });
 * } catch (e) {
 *   const revert = e instanceof MeshworkError ? e.walk(MeshworkContractError) : undefined;
 *   if (revert?.errorName === "JobMarketInsufficientBalance") console.log(revert.args);
 * }
 * ```
 */
import type { Interface, Result } from "ethers";
import type { ZodIssue } from "zod";

export interface MeshworkErrorOptions {
  /** Structured facts about the failure (addresses, ids, amounts). */
  details?: Record<string, unknown>;
  /** The underlying error (an ethers error, a fetch failure, a zod error ...). */
  cause?: unknown;
}

/** The base of every SDK error. */
export class MeshworkError extends Error {
  override name = "MeshworkError";
  /** One line, without the details: what a UI shows. */
  readonly shortMessage: string;
  readonly details: Record<string, unknown>;
  override readonly cause?: unknown;

  constructor(shortMessage: string, options: MeshworkErrorOptions = {}) {
    const details = options.details ?? {};
    const facts = Object.entries(details).map(([k, v]) => `${k}: ${format(v)}`);
    super(facts.length ? `${shortMessage}\n  ${facts.join("\n  ")}` : shortMessage, { cause: options.cause });
    this.shortMessage = shortMessage;
    this.details = details;
    this.cause = options.cause;
  }

  /**
   * Walks this error and its causes, returning the first one that is an instance of `kind` (or the
   * deepest cause when no kind is given).
   */
  walk(): unknown;
  walk<T extends Error>(kind: abstract new (...args: any[]) => T): T | undefined;
  walk<T extends Error>(kind?: abstract new (...args: any[]) => T): unknown {
    let current: unknown = this;
    let last: unknown = this;
    const seen = new Set<unknown>();
    while (current !== undefined && current !== null && !seen.has(current)) {
      seen.add(current);
      if (kind && current instanceof kind) return current;
      last = current;
      current = (current as { cause?: unknown }).cause;
    }
    return kind ? undefined : last;
  }
}

/** Input failed validation: `issues` are zod's, with the path of each bad field. */
export class MeshworkValidationError extends MeshworkError {
  override name = "MeshworkValidationError";
  constructor(
    what: string,
    readonly issues: ZodIssue[],
    options: MeshworkErrorOptions = {},
  ) {
    super(`invalid ${what}: ${issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`, {
      ...options,
      details: { ...options.details, issues: issues.length },
    });
  }
}

/** A contract reverted with one of Meshwork's custom errors (or a standard one). */
export class MeshworkContractError extends MeshworkError {
  override name = "MeshworkContractError";
  constructor(
    /** The contract that defines the error ("JobMarket", "ProviderRegistry", ...). */
    readonly contract: string,
    /** The custom error's name, e.g. "JobMarketUnexpectedState". */
    readonly errorName: string,
    /** The error's arguments, by position and by name. */
    readonly args: Result,
    options: MeshworkErrorOptions = {},
  ) {
    super(`${contract} reverted with ${errorName}(${[...args].map(format).join(", ")})`, options);
  }

  /** The argument named `name`. */
  arg<T = unknown>(name: string): T {
    return this.args.getValue(name) as T;
  }
}

/** The provider is on another chain than the address book says. */
export class MeshworkChainMismatchError extends MeshworkError {
  override name = "MeshworkChainMismatchError";
  constructor(
    readonly expected: bigint,
    readonly actual: bigint,
    options: MeshworkErrorOptions = {},
  ) {
    super(`connected to chain ${actual}, but the address book is for chain ${expected}`, options);
  }
}

/**
 * A setting that cannot be used: no address book for that network, or one that is incomplete; a config
 * or keystore that cannot be read; a port a server cannot listen on.
 */
export class MeshworkConfigError extends MeshworkError {
  override name = "MeshworkConfigError";
}

/** The RPC failed (dropped connection, timeout, server error) rather than the contract. */
export class MeshworkRpcError extends MeshworkError {
  override name = "MeshworkRpcError";
}

/** A job's result does not match what its provider committed to: `chunk` is the first bad one. */
export class MeshworkVerificationError extends MeshworkError {
  override name = "MeshworkVerificationError";
  constructor(
    shortMessage: string,
    readonly jobId: string,
    readonly chunk: number | undefined,
    options: MeshworkErrorOptions = {},
  ) {
    super(shortMessage, { ...options, details: { jobId, ...(chunk === undefined ? {} : { chunk }), ...options.details } });
  }
}

/** A blob was missing, or its bytes did not hash to the digest asked for. */
export class MeshworkBlobError extends MeshworkError {
  override name = "MeshworkBlobError";
}

/**
 * A value cannot be encoded canonically (NaN, infinite, out of the int32 range, not an integer), or
 * bytes cannot be decoded (length not a multiple of 4). `details.index` is the offending element.
 */
export class MeshworkEncodingError extends MeshworkError {
  override name = "MeshworkEncodingError";
}

/** Waiting for something took longer than allowed. */
export class MeshworkTimeoutError extends MeshworkError {
  override name = "MeshworkTimeoutError";
}

/** The job ended without a result (refunded, cancelled, slashed), so the caller's wait failed. */
export class MeshworkJobFailedError extends MeshworkError {
  override name = "MeshworkJobFailedError";
  constructor(
    readonly jobId: string,
    readonly reason: string,
    options: MeshworkErrorOptions = {},
  ) {
    super(`job ${jobId} failed: ${reason}`, { ...options, details: { jobId, reason, ...options.details } });
  }
}

/** The caller cannot pay: its market balance plus wallet hold less than needed. Nothing was sent. */
export class MeshworkInsufficientFundsError extends MeshworkError {
  override name = "MeshworkInsufficientFundsError";
  constructor(
    readonly token: string,
    readonly needed: bigint,
    readonly available: bigint,
  ) {
    super(`insufficient funds: ${needed} needed, ${available} available (market balance + wallet)`, { details: { token, needed, available } });
  }
}

/** Nothing eligible to route a job to, within the consumer's caps. */
export class MeshworkRoutingError extends MeshworkError {
  override name = "MeshworkRoutingError";
}

/** The revert data of an ethers error, wherever ethers put it. */
function revertData(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  let current: any = error;
  while (current && typeof current === "object" && !seen.has(current)) {
    seen.add(current);
    const data = current.data ?? current.error?.data ?? current.info?.error?.data;
    if (typeof data === "string" && data.startsWith("0x") && data.length >= 10) return data;
    if (typeof data?.data === "string") return data.data;
    current = current.cause ?? current.error;
  }
  return undefined;
}

/** ethers' codes for a transport failure. */
const RPC_CODES = new Set(["NETWORK_ERROR", "SERVER_ERROR", "TIMEOUT", "UNKNOWN_ERROR"]);
/** Node's codes for a connection that could not be made or was lost. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]);

type Cause = { code?: unknown; message?: unknown; name?: unknown; cause?: unknown; error?: unknown; errors?: unknown };

/** Whether `test` holds for the error or anywhere in its causes (`cause`, ethers' `error`, an AggregateError's `errors`). */
function anyCause(error: unknown, test: (e: Cause) => boolean): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0) {
    const current = pending.pop() as Cause | null;
    if (!current || typeof current !== "object" || seen.has(current)) continue;
    seen.add(current);
    if (test(current)) return true;
    pending.push(current.cause, current.error, ...(Array.isArray(current.errors) ? current.errors : []));
  }
  return false;
}

/**
 * Whether an error came from the transport, not the chain's answer: an ethers transport code, a
 * socket error, or undici's "fetch failed", on the error or anywhere in its causes.
 */
function isRpcFailure(error: unknown): boolean {
  return anyCause(
    error,
    (e) => (typeof e.code === "string" && (RPC_CODES.has(e.code) || SOCKET_CODES.has(e.code))) || (e.name === "TypeError" && e.message === "fetch failed"),
  );
}

/**
 * Whether a query was refused for what it asked, rather than lost or throttled: the node answered with
 * a JSON-RPC error object (its code a number, on the error or in its causes; ethers wraps one it does
 * not know as UNKNOWN_ERROR), or the endpoint with an HTTP 4xx (some answer a range over their cap
 * with 413), or its words say a limit was hit — unless anything says it was throttled or not
 * authorised (401, 403, 404, 429, a rate, a quota, credits). A refused log query may go through over
 * fewer blocks; a lost or throttled one would not. @internal
 */
export function isRangeRefusal(error: unknown): boolean {
  let refused = false;
  let throttled = false;
  anyCause(error, (e) => {
    const info = (e as { info?: { responseStatus?: unknown; responseBody?: unknown } }).info;
    const status = Number(String(info?.responseStatus ?? "").split(" ")[0]);
    const words = `${typeof e.message === "string" ? e.message : ""} ${typeof info?.responseBody === "string" ? info.responseBody : ""}`;
    if ([401, 403, 404, 429].includes(status) || THROTTLE_WORDS.test(words)) throttled = true;
    if (typeof e.code === "number" || (status >= 400 && status < 500) || LIMIT_WORDS.test(words)) refused = true;
    return false; // every cause is looked at
  });
  return refused && !throttled;
}
const LIMIT_WORDS = /block range|range (limit|too)|exceed|too (many|large)|max(imum)? (block|range|results)|response size|more than \d+ results/i;
const THROTTLE_WORDS = /\brate\b|rate[- ]?limit|too many requests|quota|credits|capacity|daily|unauthori[sz]ed|forbidden|api key/i;

/** Whether the node refused a transaction its sender cannot pay gas for (ethers' code, or a node's own words). @internal */
export function isOutOfGasMoney(error: unknown): boolean {
  return anyCause(error, (e) => e.code === "INSUFFICIENT_FUNDS" || (typeof e.message === "string" && /insufficient funds|doesn't have enough funds/i.test(e.message)));
}

/**
 * Maps whatever a contract call threw to a typed SDK error: a custom error of one of `contracts` (name →
 * interface) becomes a {@link MeshworkContractError}; a transport failure a {@link MeshworkRpcError};
 * an SDK error passes through; anything else is wrapped in a {@link MeshworkError}.
 */
export function toMeshworkError(error: unknown, contracts: Record<string, Interface>, action: string): MeshworkError {
  if (error instanceof MeshworkError) return error;
  const data = revertData(error);
  if (data) {
    for (const [contract, iface] of Object.entries(contracts)) {
      let parsed;
      try {
        parsed = iface.parseError(data);
      } catch {
        parsed = null;
      }
      if (parsed) return new MeshworkContractError(contract, parsed.name, parsed.args, { cause: error, details: { action } });
    }
    return new MeshworkError(`${action} reverted with unknown data ${data.slice(0, 10)}`, { cause: error, details: { data } });
  }
  if (isOutOfGasMoney(error)) {
    return new MeshworkError(`${action}: the account cannot pay for gas: send it some of the chain's native currency`, { cause: error, details: { reason: "gas-funds" } });
  }
  if (isRpcFailure(error)) return new MeshworkRpcError(`${action}: the RPC failed`, { cause: error });
  const message = error instanceof Error ? (error as { shortMessage?: string }).shortMessage ?? error.message : String(error);
  return new MeshworkError(`${action} failed: ${message}`, { cause: error });
}

function format(value: unknown): string {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  } catch {
    return String(value);
  }
}
