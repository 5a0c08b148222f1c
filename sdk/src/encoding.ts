/**
 * Canonical output bytes (PROTOCOL.md §5) and the chunking rule shared by consumers, workers and
 * auditors.
 *
 * - `int32-le`: each value a two's-complement 32-bit integer, little-endian, no padding.
 * - `fixed-point` at `scaleBits` k: each float x becomes the int32 `roundHalfEven(x · 2^k)`, then as
 *   above. Multiplying by a power of two is exact in float64, so the only rounding is the documented
 *   one, and replicas whose floats differ by less than half a grid step (2^-k) mostly agree bit for bit.
 *   NaN, ±Infinity and values outside the int32 range are errors, never clamped: a clamp would hide a
 *   broken run behind a valid-looking hash.
 * - `bytes`: the runtime's bytes as they are.
 *
 * **Chunking rule** ({@link splitChunks}): a blob of `len` bytes split into N chunks, in units of
 * `elementBytes` (so no element straddles two chunks): with `units = len / elementBytes`,
 * `q = floor(units / N)`, `r = units mod N`, chunk i has `q + 1` units when `i < r`, else `q` units, in
 * order. So sizes differ by at most one element, the first `r` chunks are the larger ones, and chunks are
 * empty when N > units. Chunk i starts at `(i · q + min(i, r)) · elementBytes` ({@link chunkRange}), so an
 * auditor can locate a chunk without splitting the rest.
 *
 * The rule applies to **inputs** given as one blob. An **output** chunk i is the canonical encoding of
 * what the runtime produces from input chunk i (not a re-split of the concatenated output), so an
 * auditor re-running chunk i alone gets the same leaf.
 */
import { MeshworkEncodingError } from "./errors.js";

export { MeshworkEncodingError };

export const INT32_MIN = -0x8000_0000;
export const INT32_MAX = 0x7fff_ffff;
/** Largest fixed-point scale: at 2^31 only values in [-1, 1) fit. */
export const MAX_SCALE_BITS = 31;
/** The fixed-point scale used when none is given: int32 at a grid of 2^-16. */
export const DEFAULT_SCALE_BITS = 16;

function checkScale(scaleBits: number) {
  if (!Number.isInteger(scaleBits) || scaleBits < 0 || scaleBits > MAX_SCALE_BITS) {
    throw new MeshworkEncodingError(`scaleBits must be an integer in 0..${MAX_SCALE_BITS}`, { details: { scaleBits } });
  }
}

/**
 * Rounds to the nearest integer, ties to the even one (IEEE 754 roundTiesToEven; what numpy and
 * C's `nearbyint` do by default). `Math.round` is not used: it rounds ties up (-2.5 → -2, 2.5 → 3).
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact: f and x are within one unit of each other
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Little-endian int32 bytes of `values`, which must be integers in the int32 range. */
export function encodeInt32LE(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) {
      throw new MeshworkEncodingError("value is not an int32", { details: { index: i, value: v } });
    }
    view.setInt32(i * 4, v, true);
  }
  return out;
}

/** The int32 values of little-endian bytes (length a multiple of 4). */
export function decodeInt32LE(bytes: Uint8Array): Int32Array {
  if (bytes.length % 4 !== 0) throw new MeshworkEncodingError("int32 data must be a multiple of 4 bytes", { details: { length: bytes.length } });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt32(i * 4, true);
  return out;
}

/**
 * The int32 grid values of `values` at scale 2^-`scaleBits`: `roundHalfEven(x · 2^scaleBits)`. Throws
 * {@link MeshworkEncodingError} for NaN, ±Infinity and results outside the int32 range.
 */
export function toFixedPoint(values: ArrayLike<number>, scaleBits = DEFAULT_SCALE_BITS): Int32Array {
  checkScale(scaleBits);
  const scale = 2 ** scaleBits;
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw new MeshworkEncodingError("cannot encode a non-finite value as fixed point", { details: { index: i, value: String(x), scaleBits } });
    }
    const q = roundHalfEven(x * scale);
    if (q < INT32_MIN || q > INT32_MAX) {
      throw new MeshworkEncodingError("fixed-point overflow: the value does not fit in int32 at this scale", {
        details: { index: i, value: x, scaleBits, min: INT32_MIN / scale, max: INT32_MAX / scale },
      });
    }
    out[i] = q;
  }
  return out;
}

/** Canonical `fixed-point` bytes: little-endian int32 of `roundHalfEven(x · 2^scaleBits)` for each value. */
export function encodeFixedPoint(values: ArrayLike<number>, scaleBits = DEFAULT_SCALE_BITS): Uint8Array {
  return encodeInt32LE(toFixedPoint(values, scaleBits));
}

/** The floats that `fixed-point` bytes stand for: each int32 divided by 2^scaleBits (exact in float64). */
export function decodeFixedPoint(bytes: Uint8Array, scaleBits = DEFAULT_SCALE_BITS): Float64Array {
  checkScale(scaleBits);
  const ints = decodeInt32LE(bytes);
  const scale = 2 ** scaleBits;
  const out = new Float64Array(ints.length);
  for (let i = 0; i < ints.length; i++) out[i] = ints[i] / scale;
  return out;
}

export interface ChunkOptions {
  /** Size of one element in bytes (default 1): chunk boundaries fall between elements. */
  elementBytes?: number;
}

/** Byte range of one chunk under the chunking rule (see the module comment). */
export interface ChunkRange {
  offset: number;
  length: number;
}

function checkSplit(size: number, chunks: number, elementBytes: number) {
  if (!Number.isInteger(chunks) || chunks < 1) throw new MeshworkEncodingError("chunks must be a positive integer", { details: { chunks } });
  if (!Number.isInteger(elementBytes) || elementBytes < 1) {
    throw new MeshworkEncodingError("elementBytes must be a positive integer", { details: { elementBytes } });
  }
  if (!Number.isSafeInteger(size) || size < 0 || size % elementBytes !== 0) {
    throw new MeshworkEncodingError("size must be a whole number of elements", { details: { size, elementBytes } });
  }
}

/** Offset and length of chunk `index` of a blob of `size` bytes split into `chunks` chunks. */
export function chunkRange(size: number, chunks: number, index: number, options: ChunkOptions = {}): ChunkRange {
  const elementBytes = options.elementBytes ?? 1;
  checkSplit(size, chunks, elementBytes);
  if (!Number.isInteger(index) || index < 0 || index >= chunks) {
    throw new MeshworkEncodingError(`chunk index outside 0..${chunks - 1}`, { details: { index, chunks } });
  }
  const units = size / elementBytes;
  const q = Math.floor(units / chunks);
  const r = units % chunks;
  return { offset: (index * q + Math.min(index, r)) * elementBytes, length: (index < r ? q + 1 : q) * elementBytes };
}

/** All chunk ranges of a blob of `size` bytes, in order. */
export function chunkRanges(size: number, chunks: number, options: ChunkOptions = {}): ChunkRange[] {
  const elementBytes = options.elementBytes ?? 1;
  checkSplit(size, chunks, elementBytes);
  return Array.from({ length: chunks }, (_, i) => chunkRange(size, chunks, i, options));
}

/**
 * Splits `bytes` into exactly `chunks` chunks as equal as possible (the first `len mod N` chunks get one
 * extra element; chunks are empty when N exceeds the element count). The chunks are views of `bytes`,
 * not copies.
 */
export function splitChunks(bytes: Uint8Array, chunks: number, options: ChunkOptions = {}): Uint8Array[] {
  return chunkRanges(bytes.length, chunks, options).map(({ offset, length }) => bytes.subarray(offset, offset + length));
}

/** The byte strings one after another, in one new array (the only part when there is one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
