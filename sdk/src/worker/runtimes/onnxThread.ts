/**
 * The thread that runs ONNX sessions for {@link OnnxRuntime} (see its `thread` option): the worker's
 * main thread stays free to follow the chain, commit, reveal and serve blobs while a chunk computes.
 * It hosts in-thread `OnnxRuntime`s (one per options), and the jobs they load, by the ids the main
 * thread gives them. Messages are {@link ThreadRequest}s; each gets one {@link ThreadReply}.
 * @internal
 */
import { parentPort } from "node:worker_threads";
import { digestOf } from "../../blob.js";
import { MeshworkError } from "../../errors.js";
import type { JobSpec } from "../../spec.js";
import { OnnxRuntime, type OnnxLoadedJob, type OnnxRuntimeOptions } from "./onnx.js";
import { MODEL_NOT_KEPT, serializeError, type ThreadReply, type ThreadRequest } from "./runtimeThread.js";

if (!parentPort) throw new Error("onnxThread is a worker thread's entry point");
const port = parentPort;
const runtimes = new Map<string, OnnxRuntime>();
const jobs = new Map<number, OnnxLoadedJob>();
/** Per job: where an input is copied to run it (ONNX Runtime takes no shared memory). */
const locals = new Map<number, ArrayBuffer>();

/** The models last sent, by digest, most recent last: at most MODELS_KEPT, MODEL_BYTES_KEPT bytes in all. */
const models = new Map<string, Uint8Array>();
const MODELS_KEPT = 2;
const MODEL_BYTES_KEPT = 1 << 30;

/**
 * The model a load names: a kept one, or the bytes it brings, to be kept (once loaded) when they hash
 * to the spec's `model.digest` and fit MODEL_BYTES_KEPT (other bytes are loaded as they are, not kept).
 */
function modelFor(spec: JobSpec, executable: ArrayBuffer | undefined): { bytes: Uint8Array; kept: boolean } {
  const digest = spec.runtime === "onnx" ? spec.model.digest : "";
  if (!executable) {
    const kept = models.get(digest);
    if (!kept) throw new MeshworkError("the runtime thread no longer keeps this model", { details: { reason: MODEL_NOT_KEPT, digest } });
    models.delete(digest);
    models.set(digest, kept); // most recently used
    return { bytes: kept, kept: true };
  }
  const bytes = new Uint8Array(executable);
  return { bytes, kept: bytes.length <= MODEL_BYTES_KEPT && digestOf(bytes) === digest };
}

/** Keeps a model that loaded, dropping the least recently used beyond MODELS_KEPT / MODEL_BYTES_KEPT. */
function keep(digest: string, bytes: Uint8Array) {
  models.delete(digest);
  models.set(digest, bytes);
  let total = [...models.values()].reduce((n, m) => n + m.length, 0);
  for (const [d, m] of models) {
    if (d === digest || (models.size <= MODELS_KEPT && total <= MODEL_BYTES_KEPT)) break;
    models.delete(d);
    total -= m.length;
  }
}

function runtimeFor(options: OnnxRuntimeOptions): OnnxRuntime {
  const key = JSON.stringify(options);
  let runtime = runtimes.get(key);
  if (!runtime) runtimes.set(key, (runtime = new OnnxRuntime({ ...options, thread: false })));
  return runtime;
}

function jobOf(id: number): OnnxLoadedJob {
  const job = jobs.get(id);
  if (!job) throw new Error(`no loaded onnx job ${id} in the runtime thread`);
  return job;
}

async function handle(request: ThreadRequest): Promise<ThreadReply> {
  switch (request.type) {
    case "capabilities":
      return { id: request.id, ok: true, capabilities: await runtimeFor(request.options).capabilities() };
    case "load": {
      const model = modelFor(request.spec, request.executable);
      const job = await runtimeFor(request.options).load(request.spec, model.bytes);
      if (model.kept && request.spec.runtime === "onnx") keep(request.spec.model.digest, model.bytes);
      jobs.set(request.job, job);
      return { id: request.id, ok: true, loaded: { device: job.device, features: job.features, outputType: job.outputType, kept: model.kept } };
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
      // Sessions released after the chunk they may be computing; then the thread ends on its own.
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
