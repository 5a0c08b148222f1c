/** What the CLIs share: how an error becomes the one line they print, and running a commander program. */
import type { Command } from "commander";
import { MeshworkContractError, MeshworkError } from "../../sdk/src/errors.js";

/** One line: a revert as `ErrorName(args…)`, an SDK error as its short message. */
export function errorLine(error: unknown): string {
  if (error instanceof MeshworkContractError) return `${error.errorName}(${[...error.args].map(String).join(", ")})`;
  if (error instanceof MeshworkError) return error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}

/**
 * A URL to print: its scheme, host and port; anything else — user and password, path, query,
 * fragment, where RPC providers put API keys — as "/…". `http://127.0.0.1:8545` stays as it is,
 * `https://user:secret@rpc.example/v2/KEY?x=1` prints as `https://rpc.example/…`.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "(not a URL)";
  }
  const hidden = parsed.username || parsed.password || parsed.pathname.replace(/^\/$/, "") || parsed.search || parsed.hash;
  return `${parsed.protocol}//${parsed.host}${hidden ? "/…" : ""}`;
}

/** Parses argv and runs the command; an error prints `error: <line>` and sets a non-zero exit code. */
export async function runCli(program: Command, cleanup: () => void): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    console.error(`error: ${errorLine(error)}`);
    process.exitCode = 1;
  } finally {
    cleanup();
  }
}
