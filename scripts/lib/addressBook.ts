/**
 * The per-network address books in deployments/<network>.json that the SDK loads: chain id, contract
 * addresses, the block to read events from, and the governed parameters at deployment.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export type { AddressBook } from "../../sdk/src/addressBook.js";
import type { AddressBook } from "../../sdk/src/addressBook.js";

/** deployments/ in the repository, or MESHWORK_DEPLOYMENTS_DIR (tests write elsewhere). */
export function deploymentsDir(): string {
  return resolve(process.env.MESHWORK_DEPLOYMENTS_DIR ?? join(import.meta.dirname, "..", "..", "deployments"));
}

export function addressBookPath(network: string): string {
  return join(deploymentsDir(), `${network}.json`);
}

export function readAddressBook(network: string): AddressBook | undefined {
  const path = addressBookPath(network);
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as AddressBook) : undefined;
}

export class AddressBookConflictError extends Error {
  constructor(
    readonly path: string,
    readonly differences: string[],
  ) {
    super(
      `${path} already describes another deployment (${differences.join("; ")}). ` +
        "Move it away, or set MESHWORK_OVERWRITE=1 to replace it.",
    );
    this.name = "AddressBookConflictError";
  }
}

/**
 * Writes the address book, never silently replacing one that describes another deployment: same chain
 * and addresses are rewritten (the parameters may have been refreshed; `deployedAt` stays the first
 * one), anything else needs MESHWORK_OVERWRITE=1. Returns what happened.
 */
export function writeAddressBook(book: AddressBook): "created" | "updated" | "replaced" {
  const path = addressBookPath(book.network);
  const previous = readAddressBook(book.network);
  let outcome: "created" | "updated" | "replaced" = "created";
  if (previous) {
    const differences: string[] = [];
    if (previous.chainId !== book.chainId) differences.push(`chain id ${previous.chainId} -> ${book.chainId}`);
    for (const [name, address] of Object.entries(book.contracts)) {
      const before = (previous.contracts as Record<string, unknown>)[name];
      if (JSON.stringify(before) !== JSON.stringify(address)) differences.push(`${name} changed`);
    }
    if (differences.length > 0 && process.env.MESHWORK_OVERWRITE !== "1") throw new AddressBookConflictError(path, differences);
    outcome = differences.length > 0 ? "replaced" : "updated";
    // The same deployment, its parameters read again: it was deployed when the book first said.
    if (outcome === "updated" && previous.deployedAt) book = { ...book, deployedAt: previous.deployedAt };
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(book, null, 2) + "\n");
  return outcome;
}
