/**
 * Address books: `deployments/<network>.json`, written by `npm run deploy`, read by the SDK. One per
 * network: chain id, contract addresses, the first block to read events from, and the governed
 * parameters at deployment.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { getAddress, isAddress } from "ethers";
import { z } from "zod";
import { MeshworkConfigError, MeshworkValidationError } from "./errors.js";

const address = z.string().refine((a) => isAddress(a), "not an address").transform((a) => getAddress(a));

/** The zod schema of an address book; {@link AddressBook} is its type. */
export const AddressBookSchema = z.object({
  network: z.string().min(1),
  chainId: z.number().int().positive(),
  deploymentBlock: z.number().int().nonnegative(),
  blocks: z.record(z.string(), z.number().int().nonnegative()).default({}),
  contracts: z.object({
    mesh: address,
    registry: address,
    market: address,
    auditModule: address,
    timelock: address,
    governor: address,
    commons: address,
    /** Payment tokens by symbol, e.g. `{ tUSD: "0x..." }`. */
    paymentTokens: z.record(z.string(), address),
  }),
  parameters: z.record(z.string(), z.union([z.string(), z.number()])).default({}),
  ignitionDeploymentId: z.string().optional(),
  deployedAt: z.string().optional(),
});

export type AddressBook = z.infer<typeof AddressBookSchema>;

/** Validates an address book (from a file, a server or code). @throws {MeshworkValidationError} */
export function parseAddressBook(input: unknown): AddressBook {
  const parsed = AddressBookSchema.safeParse(input);
  if (!parsed.success) throw new MeshworkValidationError("address book", parsed.error.issues);
  return parsed.data;
}

/** `dir`, else MESHWORK_DEPLOYMENTS_DIR, else `deployments/` of the current working directory. */
export function deploymentsDir(dir?: string): string {
  return resolve(dir ?? process.env.MESHWORK_DEPLOYMENTS_DIR ?? join(process.cwd(), "deployments"));
}

/**
 * Reads `deployments/<network>.json` (Node only; in a browser pass `addresses` to `Meshwork.connect`).
 * @throws {MeshworkConfigError} when there is no address book for `network`.
 * @throws {MeshworkValidationError} when the file is not a valid address book.
 * @example
 * ```ts
 * const book = loadAddressBook("sepolia");
 * console.log(book.contracts.market);
 * ```
 */
export function loadAddressBook(network: string, dir?: string): AddressBook {
  const path = join(deploymentsDir(dir), `${network}.json`);
  if (!existsSync(path)) {
    throw new MeshworkConfigError(`no address book for network "${network}"`, { details: { path } });
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new MeshworkConfigError(`address book ${path} is not JSON`, { cause, details: { path } });
  }
  return parseAddressBook(json);
}
