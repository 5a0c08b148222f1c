/**
 * The thread that computes chunks for {@link OnnxRuntime} and {@link IntKernelRuntime} (see their
 * `thread` option): the worker's main thread stays free to follow the chain, commit, reveal and serve
 * blobs while a chunk computes. It hosts in-thread runtimes (one per runtime and options), and the jobs
 * they load, by the ids the main thread gives them. Messages are {@link ThreadRequest}s; each gets one
 * {@link ThreadReply}.
 * @internal
 */
import { parentPort } from "node:worker_threads";
import { digestOf } from "../../blob.js";
import { MeshworkError } from "../../errors.js";
import { executableOf, type JobSpec, type RuntimeName } from "../../spec.js";
import { IntKernelRuntime } from "./intKernel.js";
import { OnnxRuntime } from "./onnx.js";
import type { LoadedJob, Runtime } from "./runtime.js";
import { MODEL_NOT_KEPT, serializeError, type LoadedInfo, type ThreadReply, type ThreadRequest, type ThreadRuntimeOptions } from "./runtimeThread.js";

if (!parentPort) throw new Error("runtimeThreadEntry is a worker thread's entry point");
const port = parentPort;
const runtimes = new Map<string, Runtime>();
const jobs = new Map<number, LoadedJob>();
/** Per job: where an input is copied to run it (ONNX Runtime takes no shared memory). */
const locals = new Map<number, ArrayBuffer>();

/**
 * The ONNX models last sent, by digest, most recent last: at most KEPT, BYTES_KEPT bytes in all. (An
 * int-kernel program is not kept: it is parsed on every load anyway, and would take a model's place.)
 */
const models = new Map<string, Uint8Array>();
const KEPT = 2;
const BYTES_KEPT = 1 << 30;

/**
 * The executable a load names: a kept model, or the bytes it brings — kept (once loaded) when they are
 * an ONNX model hashing to the spec's `model.digest` and fit BYTES_KEPT; other bytes are loaded as they
 * are, not kept.
 */
function executableFor(spec: JobSpec, sent: ArrayBuffer | undefined): { bytes: Uint8Array; kept: boolean } {
  const { digest } = executableOf(spec);
  if (!sent) {
    const kept = models.get(digest);
    if (!kept) throw new MeshworkError("the runtime thread no longer keeps this model", { details: { reason: MODEL_NOT_KEPT, digest } });
    models.delete(digest);
    models.set(digest, kept); // most recently used
    return { bytes: kept, kept: true };
  }
  const bytes = new Uint8Array(sent);
  return { bytes, kept: spec.runtime === "onnx" && bytes.length <= BYTES_KEPT && digestOf(bytes) === digest };
}

/** Keeps a model that loaded, dropping the least recently used beyond KEPT / BYTES_KEPT. */
function keep(digest: string, bytes: Uint8Array) {
  models.delete(digest);
  models.set(digest, bytes);
  let total = [...models.values()].reduce((n, m) => n + m.length, 0);
  for (const [d, m] of models) {
    if (d === digest || (models.size <= KEPT && total <= BYTES_KEPT)) break;
    models.delete(d);
    total -= m.length;
  }
}

function runtimeFor(name: RuntimeName, options: ThreadRuntimeOptions): Runtime {
  const key = name === "onnx" ? `onnx ${JSON.stringify(options)}` : name;
  let runtime = runtimes.get(key);
  if (!runtime) {
    runtime = name === "onnx" ? new OnnxRuntime({ ...options, thread: false }) : new IntKernelRuntime({ thread: false });
    runtimes.set(key, runtime);
  }
  return runtime;
}

function jobOf(id: number): LoadedJob {
  const job = jobs.get(id);
  if (!job) throw new Error(`no loaded job ${id} in the runtime thread`);
  return job;
}

/** What a loaded job says about itself besides its methods (an ONNX job: device, features, output type). */
function infoOf(job: LoadedJob): LoadedInfo {
  return Object.fromEntries(Object.entries(job).filter(([, value]) => typeof value !== "function"));
}

async function handle(request: ThreadRequest): Promise<ThreadReply> {
  switch (request.type) {
    case "capabilities":
      return { id: request.id, ok: true, capabilities: await runtimeFor(request.runtime, request.options).capabilities() };
    case "load": {
      const executable = executableFor(request.spec, request.executable);
      const job = await runtimeFor(request.spec.runtime, request.options).load(request.spec, executable.bytes);
      if (executable.kept) keep(executableOf(request.spec).digest, executable.bytes);
      jobs.set(request.job, job);
      return { id: request.id, ok: true, loaded: { info: infoOf(job), kept: executable.kept } };
    }
    case "run": {
      const job = jobOf(request.job);
      let local = locals.get(request.job);
      if (!local || local.byteLength < request.length) locals.set(request.job, (local = new ArrayBuffer(request.length)));
      const input = new Uint8Array(local, 0, request.length);
      input.set(new Uint8Array(request.input, 0, request.length)); // before any await: the main side waits
      const output = await job.run(input, request.index);
      const shared = request.output && request.output.byteLength >= output.length ? request.output : new SharedArrayBuffer(output.length);
      new Uint8Array(shared, 0, output.length).set(output);
      return { id: request.id, ok: true, length: output.length, output: shared };
    }
    case "close": {
      const job = jobs.get(request.job);
      jobs.delete(request.job);
      locals.delete(request.job);
      await job?.close();
      return { id: request.id, ok: true };
    }
    case "shutdown": {
      // Jobs closed (ONNX sessions released) after the chunk they may be computing; then the thread ends on its own.
      await Promise.allSettled([...jobs.values()].map((job) => job.close()));
      jobs.clear();
      locals.clear();
      port.close();
      return { id: request.id, ok: true };
    }
  }
}

function send(reply: ThreadReply) {
  try {
    port.postMessage(reply);
  } catch (error) {
    // Something in the reply cannot cross threads: answer with that error instead.
    port.postMessage({ id: reply.id, ok: false, error: serializeError(error) } satisfies ThreadReply);
  }
}

port.on("message", (request: ThreadRequest) => {
  if (request.type === "shutdown") port.removeAllListeners("message"); // nothing after it is run
  handle(request).then(
    (reply) => request.type !== "shutdown" && send(reply),
    (error) => send({ id: request.id, ok: false, error: serializeError(error) }),
  );
});
