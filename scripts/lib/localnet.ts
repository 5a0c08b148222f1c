/**
 * A local Meshwork network made of real processes: a `hardhat node` on 127.0.0.1 (its own process
 * group, so stopping it stops everything it started), the deploy script against it, and the node's
 * well-known development accounts. Used by `npm start` and by the tests that run the CLIs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { HDNodeWallet, Mnemonic } from "ethers";
import type { AddressBook } from "../../sdk/src/addressBook.js";

export const ROOT = resolve(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "node_modules", ".bin");
/** Children run under the Node that runs us (Node 22 from the bootstrap). */
export const CHILD_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
// Replacing another deployment's address book is only ever asked for explicitly (deployLocal).
delete CHILD_ENV.MESHWORK_OVERWRITE;

/** Hardhat's development mnemonic: the keys of the node's unlocked accounts (never use them elsewhere). */
const DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** The private key of development account `index`. */
/** What the local devnet (`npm start -- --keep`) wrote about itself (RPC, blob store, address books), if it ran here. */
export function devnetNetwork(): { rpcUrl?: string; blobs?: string; deploymentsDir?: string } {
  const path = join(process.env.MESHWORK_DEVNET_DIR ?? join(ROOT, ".meshwork", "devnet"), "network.json");
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : {};
}

export function devKey(index: number): string {
  return HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(DEV_MNEMONIC), `m/44'/60'/0'/0/${index}`).privateKey;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export async function rpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await response.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

export interface LocalNode {
  url: string;
  port: number;
  process: ChildProcess;
  /** The node's recent output (for error messages). */
  output(): string;
  stop(): Promise<void>;
}

/** Kills a process group, ignoring one that is gone. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Stops a process group: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopGroup(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<boolean>((done) => child.once("exit", () => done(true)));
  killGroup(child, "SIGTERM");
  const stopped = await Promise.race([exited, new Promise<boolean>((r) => setTimeout(() => r(false), graceMs))]);
  if (!stopped) killGroup(child, "SIGKILL");
}

/**
 * Starts `hardhat node` on 127.0.0.1 (a free port unless given) and waits until it answers.
 * `intervalMs` makes it mine a block every so often even without transactions (audit draws wait for the
 * block after a commit). `chainId` (default 31337) makes it look like another chain, e.g. a public one.
 */
export async function startLocalNode(options: { port?: number; intervalMs?: number; chainId?: number } = {}): Promise<LocalNode> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const chainId = options.chainId ?? 31337;
  const args = ["node", "--hostname", "127.0.0.1", "--port", String(port), ...(options.chainId ? ["--chain-id", String(chainId)] : [])];
  const child = spawn(join(BIN, "hardhat"), args, {
    cwd: ROOT,
    env: CHILD_ENV,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output = (output + d).slice(-10_000)));
  child.stderr!.on("data", (d) => (output = (output + d).slice(-10_000)));
  const killNow = () => killGroup(child, "SIGKILL");
  process.once("exit", killNow);
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hardhat node exited (${child.exitCode}):\n${output}`);
    try {
      if ((await rpc(url, "eth_chainId")) === `0x${chainId.toString(16)}`) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      killNow();
      throw new Error(`hardhat node did not answer within 90 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (options.intervalMs) await rpc(url, "evm_setIntervalMining", [options.intervalMs]);
  return {
    url,
    port,
    process: child,
    output: () => output,
    async stop() {
      await stopGroup(child);
      process.removeListener("exit", killNow);
    },
  };
}

/** Runs a repository script with Node (tsx for TypeScript) to completion. */
export function runScript(
  bin: "hardhat" | "tsx",
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done, reject) => {
    const child = spawn(join(BIN, bin), args, { cwd: ROOT, env: { ...CHILD_ENV, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${bin} ${args.join(" ")} timed out:\n${output}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

/** Deploys Meshwork (devnet module) to the node at `url`, writing `<deploymentsDir>/localhost.json`. */
export async function deployLocal(url: string, deploymentsDir: string): Promise<AddressBook> {
  const result = await runScript(
    "hardhat",
    ["run", "scripts/deploy.ts", "--network", "localhost"],
    { MESHWORK_RPC_URL: url, MESHWORK_DEPLOYMENTS_DIR: deploymentsDir, MESHWORK_OVERWRITE: "1" },
    240_000,
  );
  const path = join(deploymentsDir, "localhost.json");
  if (result.code !== 0 || !existsSync(path)) throw new Error(`deploy failed (exit ${result.code}):\n${result.output}`);
  return JSON.parse(readFileSync(path, "utf8")) as AddressBook;
}
