/**
 * The runtime threads, main side (see the `thread` option of {@link OnnxRuntime} and
 * {@link IntKernelRuntime}): `worker_threads` threads that host the loaded jobs of both runtimes, so
 * that a chunk's computation (ONNX Runtime's `run`, an integer kernel's loops: each holds its thread for
 * the whole chunk) never holds the caller's. One by default; with {@link setRuntimeThreads}(n), up to n,
 * each load going to the thread with the fewest jobs, so that n jobs compute at once (a worker with
 * `concurrency` above 1 on a machine with cores to spare). This module starts them, speaks their protocol
 * ({@link ThreadRequest} / {@link ThreadReply}; the thread's side is runtimeThreadEntry.ts), carries
 * errors across with their class, and loads jobs on it: an ONNX model's bytes cross once per digest
 * (a program's with every load), a chunk's input and output through two buffers shared with the thread.
 * @internal
 */
import { Worker } from "node:worker_threads";
import { MeshworkEncodingError, MeshworkError, MeshworkValidationError } from "../../errors.js";
import { executableOf, type JobSpec, type RuntimeName } from "../../spec.js";
import type { IntKernelRuntime } from "./intKernel.js";
import type { OnnxLoadedJob, OnnxRuntime, OnnxRuntimeOptions } from "./onnx.js";
import type { LoadedJob, RuntimeCapabilities } from "./runtime.js";

/** The first line of an error's message (at most 200 characters), for one-line details. */
export function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0].slice(0, 200);
}

/** `details.reason` of the runtime thread's answer to a load by digest of a model it no longer keeps. @internal */
export const MODEL_NOT_KEPT = "model-not-kept";

/**
 * What the runtime thread builds its own runtime with (that runtime computes on the thread itself): the
 * ONNX runtime's options; the int-kernel runtime has none. @internal
 */
export type ThreadRuntimeOptions = Omit<OnnxRuntimeOptions, "thread">;

/** What a job loaded on the thread tells the main side about itself (an ONNX job: device, features, output type). @internal */
export type LoadedInfo = Partial<Pick<OnnxLoadedJob, "device" | "features" | "outputType">>;

/** A message to the runtime thread (runtimeThreadEntry.ts). @internal */
export type ThreadRequest =
  | { id: number; type: "capabilities"; runtime: RuntimeName; options: ThreadRuntimeOptions }
  | { id: number; type: "load"; options: ThreadRuntimeOptions; job: number; spec: JobSpec; executable?: ArrayBuffer }
  | { id: number; type: "run"; job: number; length: number; index: number; input: SharedArrayBuffer; output?: SharedArrayBuffer }
  | { id: number; type: "close"; job: number }
  | { id: number; type: "shutdown" };

/** The runtime thread's answer to request `id`. @internal */
export type ThreadReply = { id: number } & (
  | { ok: true; capabilities?: RuntimeCapabilities; loaded?: { info: LoadedInfo; kept: boolean }; length?: number; output?: SharedArrayBuffer }
  | { ok: false; error: SerializedError }
);

/** An error as it crosses from the runtime thread: its class by name, and what it carried. @internal */
export interface SerializedError {
  name: string;
  message: string;
  shortMessage?: string;
  details?: Record<string, unknown>;
  issues?: unknown[];
  stack?: string;
  cause?: string;
  /** An AggregateError's errors, each by its first line. */
  errors?: string[];
}

/** @internal */
export function serializeError(error: unknown): SerializedError {
  const e = error as Partial<MeshworkValidationError> & Error;
  const copy = <T>(value: T, fallback: T): T => {
    try {
      return structuredClone(value);
    } catch {
      return fallback;
    }
  };
  return {
    name: String(e?.name ?? "Error"),
    message: String(e?.message ?? error),
    shortMessage: e?.shortMessage,
    details: e?.details === undefined ? undefined : copy(e.details, { note: "details could not be copied from the runtime thread" }),
    issues: e?.issues === undefined ? undefined : copy(e.issues as unknown[], []),
    stack: e?.stack,
    cause: e?.cause === undefined ? undefined : firstLine(e.cause),
    errors: error instanceof AggregateError ? error.errors.map(firstLine) : undefined,
  };
}

const REVIVED: Record<string, new (...args: never[]) => MeshworkError> = {
  MeshworkError,
  MeshworkValidationError,
  MeshworkEncodingError,
};

/** JavaScript's own error classes, revived as themselves (`instanceof RangeError` holds across the thread). */
const NATIVE: Record<string, ErrorConstructor> = { RangeError, TypeError, SyntaxError, ReferenceError, EvalError, URIError };

/**
 * The error the runtime thread threw, as the same class (another Meshwork error as MeshworkError, a
 * JavaScript one as itself, any other as Error) with the same name, message, details, issues and stack;
 * its cause, and an AggregateError's errors, as plain Errors. @internal
 */
export function reviveError(e: SerializedError): Error {
  const own = <T>(table: Record<string, T>): T | undefined => (Object.hasOwn(table, e.name) ? table[e.name] : undefined); // not "toString"
  const kind = own(REVIVED) ?? (e.name.startsWith("Meshwork") ? MeshworkError : undefined);
  const error: Error = kind
    ? Object.create(kind.prototype)
    : e.errors
      ? new AggregateError(e.errors.map((m) => new Error(m)), e.message)
      : new (own(NATIVE) ?? Error)(e.message);
  const hidden = (key: string, value: unknown) => Object.defineProperty(error, key, { value, writable: true, configurable: true, enumerable: false });
  hidden("message", e.message);
  hidden("stack", e.stack);
  // Own fields, as the constructors set them.
  Object.assign(error, {
    name: e.name,
    ...(kind ? { shortMessage: e.shortMessage ?? e.message, details: e.details ?? {} } : {}),
    ...(e.issues ? { issues: e.issues } : {}),
    ...(e.cause ? { cause: new Error(e.cause) } : {}),
  });
  return error;
}

/** One runtime thread: started on first use, started again after it exits. */
class RuntimeThread {
  #thread?: Worker;
  /** The jobs loading or loaded on the current start of the thread, and not closed: the pool gives a load to the thread with fewest. */
  readonly jobs = new Set<number>();
  #generation = 0;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve: (reply: ThreadReply & { ok: true }) => void; reject: (error: Error) => void }>();

  /** Which start of the thread a loaded job lives in (a job does not survive its thread). */
  get generation(): number {
    return this.#generation;
  }

  /** The model digests the current thread keeps (it may have dropped some since: it says so). */
  readonly models = new Set<string>();

  #start(): Worker {
    if (this.#thread) return this.#thread;
    // From TypeScript sources (tests, `tsx` scripts) the thread needs a TypeScript loader too.
    const fromSource = import.meta.url.endsWith(".ts");
    const hasLoader = process.execArgv.some((a) => /[\\/]tsx[\\/]/.test(a));
    const thread = new Worker(new URL(fromSource ? "./runtimeThreadEntry.ts" : "./runtimeThreadEntry.js", import.meta.url), {
      // Only the loader: not every flag of this process is allowed in a worker.
      execArgv: fromSource && !hasLoader ? ["--import", import.meta.resolve("tsx")] : undefined,
    });
    this.#generation++;
    thread.unref();
    thread.on("message", (reply: ThreadReply) => {
      const waiting = this.#pending.get(reply.id);
      if (!waiting) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0 && this.#stopping !== thread) thread.unref();
      if (reply.ok) waiting.resolve(reply);
      else waiting.reject(reviveError(reply.error));
    });
    let failure: Error | undefined;
    thread.on("error", (error) => (failure = error));
    // A reply that cannot be read: which request it answered is unknown, so every one waiting fails
    // (a worker retries on its next tick).
    thread.on("messageerror", (error) => this.#failPending(new MeshworkError("a reply from the runtime thread could not be read", { cause: error })));
    thread.on("exit", (code) => {
      const why = this.#stopping === thread ? "the runtime thread was stopped" : "the runtime thread exited";
      this.#gone(thread, new MeshworkError(why, { cause: failure, details: { code } }));
    });
    this.#thread = thread;
    return thread;
  }

  #failPending(error: MeshworkError) {
    for (const waiting of this.#pending.values()) waiting.reject(error);
    this.#pending.clear();
    if (this.#thread && this.#stopping !== this.#thread) this.#thread.unref();
  }

  /** Forgets `thread` (once): its jobs are gone, and whatever waits on it fails with `error`. */
  #gone(thread: Worker, error: MeshworkError) {
    if (this.#thread !== thread) return;
    this.#failPending(error);
    this.#thread = undefined;
    this.#generation++;
    this.models.clear();
    this.jobs.clear();
  }

  #stopping?: Worker;

  /**
   * Asks the thread to close its jobs and exit, and waits for it. Never `terminate()`: a thread
   * stopped inside ONNX Runtime's `run` aborts the whole process (the native call throws on the way
   * out). A chunk computing finishes first; requests sent after this fail.
   */
  async stop(): Promise<void> {
    const thread = this.#thread;
    if (!thread) return;
    this.#stopping = thread;
    const exited = new Promise((resolve) => thread.once("exit", resolve));
    thread.ref();
    thread.postMessage({ id: this.#nextId++, type: "shutdown" } satisfies ThreadRequest);
    await exited;
  }

  request(message: DistributiveOmit<ThreadRequest, "id">, transfer: ArrayBuffer[] = []): Promise<ThreadReply & { ok: true }> {
    const thread = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      try {
        thread.postMessage({ ...message, id }, transfer);
      } catch (error) {
        reject(new MeshworkError("cannot send a request to the runtime thread", { cause: error, details: { type: message.type } }));
        return;
      }
      if (this.#pending.size === 0) thread.ref(); // an answer is awaited: keep the process alive
      this.#pending.set(id, { resolve, reject });
    });
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** The process's runtime threads; the first also answers capability probes. */
const threads: RuntimeThread[] = [];
let threadCount = 1;

/** The first runtime thread (the one capability probes go to). */
export function runtimeThread(): RuntimeThread {
  return (threads[0] ??= new RuntimeThread());
}

/**
 * How many runtime threads later loads spread over (default 1): each load goes to the one with the
 * fewest jobs, so up to `count` chunks compute at once. A job stays on its thread; lowering the count
 * moves no job (threads beyond it take no new ones, and end with {@link stopRuntimeThread}).
 * @throws {RangeError} unless `count` is an integer from 1 to 64.
 */
export function setRuntimeThreads(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new RangeError(`runtime threads: an integer from 1 to 64, not ${count}`);
  threadCount = count;
}

/** The thread a new job loads on: of the first `threadCount`, the one with the fewest jobs (the lowest on a tie). */
function threadForLoad(): RuntimeThread {
  runtimeThread();
  while (threads.length < threadCount) threads.push(new RuntimeThread());
  return threads.slice(0, threadCount).reduce((best, t) => (t.jobs.size < best.jobs.size ? t : best));
}

/** How many jobs each runtime thread holds, in thread order (threads beyond the count included). @internal */
export function runtimeThreadJobs(): number[] {
  return threads.map((t) => t.jobs.size);
}

/**
 * Stops the process's runtime threads, freeing their jobs (a thread never keeps a process alive, so
 * this is only for freeing memory): a chunk computing finishes first. Jobs loaded on them fail from
 * then on; the next load starts a new thread.
 */
export async function stopRuntimeThread(): Promise<void> {
  await Promise.all(threads.map((t) => t.stop()));
}

/** @deprecated The thread runs int-kernel jobs too: {@link stopRuntimeThread}. */
export const stopOnnxThread = stopRuntimeThread;

/**
 * A runtime's capabilities as its twin on the runtime thread reports them. Where the thread cannot be
 * used (TypeScript sources under a Node without loader support in workers, …), `probeHere()`'s, saying
 * why, with `inline` set: that runtime then computes on the caller's thread, as with `thread: false`.
 */
export async function probeOnThread(
  runtime: RuntimeName,
  options: ThreadRuntimeOptions,
  probeHere: () => Promise<RuntimeCapabilities>,
): Promise<{ capabilities: RuntimeCapabilities; inline: boolean }> {
  try {
    const reply = await runtimeThread().request({ type: "capabilities", runtime, options });
    return { capabilities: reply.capabilities!, inline: false };
  } catch (error) {
    const caps = await probeHere();
    const why = firstLine((error as MeshworkError)?.cause ?? error);
    return { capabilities: { ...caps, detail: `${caps.detail}; on the caller's thread (the runtime thread is unusable: ${why})` }, inline: true };
  }
}

let nextJob = 0;

/**
 * Loads a job on the runtime thread; its runs and close go there too. `executable` must be the bytes
 * the spec's model or program digest names: the thread keeps a model under it, and a later load of
 * that digest sends the digest alone.
 */
export async function loadOnThread(options: ThreadRuntimeOptions, spec: JobSpec, executable: Uint8Array): Promise<LoadedJob & LoadedInfo> {
  const thread = threadForLoad();
  const job = nextJob++;
  thread.jobs.add(job); // counted from now, so that loads at once spread over the threads
  try {
    return await loadJob(thread, job, options, spec, executable);
  } catch (error) {
    thread.jobs.delete(job);
    throw error;
  }
}

async function loadJob(thread: RuntimeThread, job: number, options: ThreadRuntimeOptions, spec: JobSpec, executable: Uint8Array): Promise<LoadedJob & LoadedInfo> {
  const { digest } = executableOf(spec);
  const load = (withBytes: boolean) => {
    const bytes = withBytes ? (executable.slice().buffer as ArrayBuffer) : undefined; // the caller keeps its bytes
    return thread.request({ type: "load", options, job, spec, executable: bytes }, bytes ? [bytes] : []);
  };
  const byDigest = async () => {
    if (!thread.models.has(digest)) return undefined;
    try {
      return await load(false); // the thread keeps the model: only the digest crosses
    } catch (error) {
      if (!(error instanceof MeshworkError && error.details.reason === MODEL_NOT_KEPT)) throw error;
      thread.models.delete(digest);
      return undefined;
    }
  };
  const reply = (await byDigest()) ?? (await load(true));
  if (reply.loaded!.kept) thread.models.add(digest);
  const generation = thread.generation;
  let closed = false;
  // The job's buffers shared with the thread: inputs are copied into one, outputs out of the other.
  let inputs: SharedArrayBuffer | undefined;
  let outputs: SharedArrayBuffer | undefined;
  let queue: Promise<unknown> = Promise.resolve(); // one chunk at a time: the buffers are the job's
  const alive = (index?: number) => {
    if (closed) throw new MeshworkError(`the ${spec.runtime} job was closed`, { details: { chunk: index } });
    if (thread.generation !== generation) throw new MeshworkError("the runtime thread exited since the job was loaded: load it again", { details: { chunk: index } });
  };
  return {
    run(input: Uint8Array, index: number): Promise<Uint8Array> {
      const next = queue.then(async () => {
        alive(index);
        if (!inputs || inputs.byteLength < input.length) inputs = new SharedArrayBuffer(input.length);
        new Uint8Array(inputs, 0, input.length).set(input);
        // Both buffers go with every run (shared, not copied): neither side relies on an earlier message.
        const done = await thread.request({ type: "run", job, length: input.length, index, input: inputs, output: outputs });
        outputs = done.output!; // the same one, or a bigger one the thread made
        return new Uint8Array(outputs, 0, done.length!).slice();
      });
      queue = next.catch(() => undefined);
      return next;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      inputs = outputs = undefined;
      if (thread.generation !== generation) return;
      thread.jobs.delete(job);
      await thread.request({ type: "close", job });
    },
    ...reply.loaded!.info,
  };
}
