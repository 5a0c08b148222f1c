/**
 * `@meshwork/sdk/worker`: the provider worker as a library, for operators who embed it (the CLI in
 * scripts/worker.ts is a thin shell around it). Kept out of the main entry point so dApps never load
 * the worker's native dependencies (node:sqlite, onnxruntime-node).
 * @packageDocumentation
 */
export { Worker, JobRejectedError, MAX_OFFER_SEC, MAX_QUOTES_AT_ONCE, type CheatMode, type WorkerOptions } from "./worker.js";
export { WorkerState, type JobRow, type Phase, type Role } from "./state.js";
export { WorkerMetrics } from "./metrics.js";
export { BlobBudget, type BlobBudgetOptions, type Reservation } from "./blobBudget.js";
export { WorkerConfigSchema, parseWorkerConfig, runtimeThreadsOf, type WorkerConfig, type WorkerConfigInput } from "./config.js";
export { CachingBlobStore, loadWorkerConfig, openKeystore, startProviderNode, type ProviderNode } from "./node.js";
export { detectHardware, parseNvidiaSmi } from "./hardware.js";
export * from "./runtimes/index.js";
export { SESSION_FAILED, type LoadedJob, type Runtime, type RuntimeCapabilities } from "./runtimes/runtime.js";
