/**
 * `@meshwork/sdk`: the typed TypeScript SDK of Meshwork, an open market for GPU compute.
 *
 * Start with {@link Meshwork.connect}. See sdk/README.md for a quickstart per kind of user.
 * @packageDocumentation
 */
export { Meshwork, type ConnectOptions } from "./client.js";
export type { SendingOptions } from "./context.js";
export * from "./errors.js";
export * from "./addressBook.js";
export * from "./jobs.js";
export * from "./routing.js";
export * from "./providers.js";
export * from "./balances.js";
export * from "./governance.js";
export * from "./commons.js";
export * from "./results.js";
export * from "./blob.js";
export * from "./spec.js";
export * from "./encoding.js";
export * from "./merkle.js";
export * from "./params.js";
export * from "./stats.js";
