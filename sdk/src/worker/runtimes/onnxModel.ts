/**
 * A tiny ONNX model writer: dense layers (MatMul + Add, optionally Relu) encoded straight to the
 * protobuf wire format, with no protobuf dependency. It exists so tests, the demo and the ONNX runtime's
 * CUDA probe have real models without downloading any.
 *
 * The model ({@link buildDenseModel}) is a `ModelProto` with `ir_version` 8 and opset 17 of the default
 * domain; its graph has one float input `x` of shape `[N, inFeatures]` (`N` a symbolic batch dimension,
 * or a fixed size with `batch`) and one output `y` of shape `[N, outFeatures]` (float, or int32 when
 * `outputType` is `"int32"`: a final `Cast`, which truncates toward zero; `inputType: "int32"` makes `x`
 * int32, cast to float first). Weights and biases are float initializers stored as `raw_data`
 * (little-endian float32).
 *
 * Only the few wire-format pieces ONNX needs are implemented: varints (field tags, enums, int64 values),
 * length-delimited fields (strings, bytes, sub-messages) and packed repeated int64.
 */
import { MeshworkValidationError } from "../../errors.js";
import { concatBytes } from "../../encoding.js";

// ---------------------------------------------------------------------------------------------------------
// Protobuf wire format
// ---------------------------------------------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** A message under construction: the encoded fields, in order. */
type Fields = Uint8Array[];

const utf8 = new TextEncoder();

/** Base-128 varint of a non-negative integer (number up to 2^53, or any uint64 bigint; int64 wraps). */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function tag(field: number, wire: number): Uint8Array {
  return varint((field << 3) | wire);
}

/** A varint field (int32, int64, enum, bool). */
function fieldVarint(field: number, value: number | bigint): Uint8Array {
  return concatBytes([tag(field, WIRE_VARINT), varint(value)]);
}

/** A length-delimited field (bytes, string, embedded message). */
function fieldBytes(field: number, bytes: Uint8Array): Uint8Array {
  return concatBytes([tag(field, WIRE_LEN), varint(bytes.length), bytes]);
}

function fieldString(field: number, text: string): Uint8Array {
  return fieldBytes(field, utf8.encode(text));
}

function fieldMessage(field: number, fields: Fields): Uint8Array {
  return fieldBytes(field, concatBytes(fields));
}

/** A packed repeated varint field (e.g. `repeated int64 dims`). */
function fieldPacked(field: number, values: readonly (number | bigint)[]): Uint8Array {
  return fieldBytes(field, concatBytes(values.map((v) => varint(v))));
}

// ---------------------------------------------------------------------------------------------------------
// ONNX messages (onnx.proto3 field numbers)
// ---------------------------------------------------------------------------------------------------------

/** `TensorProto.DataType` values used here. */
export const ONNX_DATA_TYPES = { float32: 1, int32: 6 } as const;
const ATTRIBUTE_INT = 2; // AttributeProto.AttributeType.INT

/** ONNX IR version and default-domain opset the writer declares. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

/** TensorProto{dims=1, data_type=2, name=8, raw_data=9} of float32 values. */
function floatTensor(name: string, dims: readonly number[], values: Float32Array): Uint8Array[] {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return [fieldPacked(1, dims), fieldVarint(2, ONNX_DATA_TYPES.float32), fieldString(8, name), fieldBytes(9, raw)];
}

/** ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2: {dim=1: {dim_value=1 | dim_param=2}}}}}. */
function valueInfo(name: string, elemType: number, shape: readonly (number | string)[]): Uint8Array[] {
  const dims = shape.map((d) => fieldMessage(1, [typeof d === "string" ? fieldString(2, d) : fieldVarint(1, d)]));
  const tensorType = [fieldVarint(1, elemType), fieldMessage(2, dims)];
  return [fieldString(1, name), fieldMessage(2, [fieldMessage(1, tensorType)])];
}

/** NodeProto{input=1, output=2, name=3, op_type=4, attribute=5, domain=7}. */
function node(opType: string, name: string, inputs: string[], outputs: string[], attributes: Uint8Array[][] = []): Uint8Array[] {
  return [
    ...inputs.map((i) => fieldString(1, i)),
    ...outputs.map((o) => fieldString(2, o)),
    fieldString(3, name),
    fieldString(4, opType),
    ...attributes.map((a) => fieldMessage(5, a)),
    fieldString(7, ""),
  ];
}

/** AttributeProto{name=1, i=3, type=20} of an int attribute. */
function intAttribute(name: string, value: number): Uint8Array[] {
  return [fieldString(1, name), fieldVarint(3, value), fieldVarint(20, ATTRIBUTE_INT)];
}

// ---------------------------------------------------------------------------------------------------------
// Dense models
// ---------------------------------------------------------------------------------------------------------

/** One dense layer: `y = x · W + b`, then Relu when `relu`. `weights` is `inFeatures × outFeatures`, row-major. */
export interface DenseLayer {
  inFeatures: number;
  outFeatures: number;
  weights: Float32Array;
  bias: Float32Array;
  relu?: boolean;
}

export interface DenseModelCommon {
  /** `"int32"` appends a Cast of the last layer's output to int32 (truncation toward zero). Default float32. */
  outputType?: "float32" | "int32";
  /** `"int32"` makes `x` an int32 input, cast to float first. Default float32. */
  inputType?: "float32" | "int32";
  /** The batch dimension of `x` and `y`: a symbolic name (default "N") or a fixed size. */
  batch?: string | number;
  /** ModelProto.producer_name (default "meshwork"). */
  producer?: string;
}

/** A single dense layer, or a stack of them (`layers`, each layer's `inFeatures` = the previous one's `outFeatures`). */
export type DenseModelOptions = (DenseLayer | { layers: DenseLayer[] }) & DenseModelCommon;

function invalid(message: string, path: (string | number)[] = []): MeshworkValidationError {
  return new MeshworkValidationError("dense model", [{ code: "custom", path, message, input: undefined }]);
}

/** The layers of `options`, checked: positive integer sizes, matching shapes, finite values. */
export function denseLayers(options: DenseModelOptions): DenseLayer[] {
  const layers = "layers" in options ? options.layers : [options];
  if (!Array.isArray(layers) || layers.length === 0) throw invalid("at least one layer is needed", ["layers"]);
  layers.forEach((layer, i) => {
    const { inFeatures, outFeatures, weights, bias } = layer;
    for (const [key, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw invalid(`${key} must be a positive integer`, ["layers", i, key]);
    }
    if (!(weights instanceof Float32Array) || weights.length !== inFeatures * outFeatures) {
      throw invalid(`weights must be a Float32Array of inFeatures × outFeatures = ${inFeatures * outFeatures} values`, ["layers", i, "weights"]);
    }
    if (!(bias instanceof Float32Array) || bias.length !== outFeatures) {
      throw invalid(`bias must be a Float32Array of outFeatures = ${outFeatures} values`, ["layers", i, "bias"]);
    }
    if (i > 0 && inFeatures !== layers[i - 1].outFeatures) {
      throw invalid(`inFeatures ${inFeatures} does not match the previous layer's outFeatures ${layers[i - 1].outFeatures}`, ["layers", i, "inFeatures"]);
    }
    if (!weights.every(Number.isFinite) || !bias.every(Number.isFinite)) throw invalid("weights and bias must be finite", ["layers", i]);
  });
  return layers;
}

/**
 * Encodes a dense network as an ONNX `ModelProto` (see the module comment): input `x` `[N, inFeatures]`
 * float32, output `y` `[N, outFeatures]`.
 *
 * @example
 * ```ts
 * const model = buildDenseModel({ inFeatures: 4, outFeatures: 2, weights: new Float32Array(8).fill(0.5), bias: new Float32Array(2), relu: true });
 * const session = await InferenceSession.create(model);
 * ```
 */
export function buildDenseModel(options: DenseModelOptions): Uint8Array {
  const layers = denseLayers(options);
  const outputType = options.outputType ?? "float32";
  const inputType = options.inputType ?? "float32";
  const batch = options.batch ?? "N";
  if (outputType !== "float32" && outputType !== "int32") throw invalid(`unknown outputType ${String(outputType)}`, ["outputType"]);
  if (inputType !== "float32" && inputType !== "int32") throw invalid(`unknown inputType ${String(inputType)}`, ["inputType"]);
  if (typeof batch === "number" ? !Number.isSafeInteger(batch) || batch < 1 : !/^[A-Za-z_][A-Za-z0-9_]*$/.test(batch)) {
    throw invalid("batch must be a positive integer or an identifier", ["batch"]);
  }

  const nodes: Uint8Array[][] = [];
  const initializers: Uint8Array[][] = [];
  let current = "x";
  if (inputType === "int32") {
    nodes.push(node("Cast", "Cast_in", ["x"], ["x_float"], [intAttribute("to", ONNX_DATA_TYPES.float32)]));
    current = "x_float";
  }
  layers.forEach((layer, i) => {
    const last = i === layers.length - 1;
    const w = `W${i}`;
    const b = `B${i}`;
    initializers.push(floatTensor(w, [layer.inFeatures, layer.outFeatures], layer.weights));
    initializers.push(floatTensor(b, [layer.outFeatures], layer.bias));
    const mm = `matmul${i}`;
    nodes.push(node("MatMul", `MatMul_${i}`, [current, w], [mm]));
    const named = (n: string) => (last && outputType === "float32" ? "y" : n);
    const add = layer.relu ? `add${i}` : named(`add${i}`);
    nodes.push(node("Add", `Add_${i}`, [mm, b], [add]));
    current = add;
    if (layer.relu) {
      const relu = named(`relu${i}`);
      nodes.push(node("Relu", `Relu_${i}`, [add], [relu]));
      current = relu;
    }
  });
  if (outputType === "int32") nodes.push(node("Cast", "Cast_out", [current], ["y"], [intAttribute("to", ONNX_DATA_TYPES.int32)]));

  const inFeatures = layers[0].inFeatures;
  const outFeatures = layers[layers.length - 1].outFeatures;
  const graph: Fields = [
    ...nodes.map((n) => fieldMessage(1, n)), // node = 1
    fieldString(2, "meshwork_dense"), // name = 2
    ...initializers.map((t) => fieldMessage(5, t)), // initializer = 5
    fieldMessage(11, valueInfo("x", ONNX_DATA_TYPES[inputType], [batch, inFeatures])), // input = 11
    fieldMessage(12, valueInfo("y", ONNX_DATA_TYPES[outputType], [batch, outFeatures])), // output = 12
  ];
  // ModelProto{ir_version=1, producer_name=2, producer_version=3, graph=7, opset_import=8: {domain=1, version=2}}
  return concatBytes([
    fieldVarint(1, ONNX_IR_VERSION),
    fieldString(2, options.producer ?? "meshwork"),
    fieldString(3, "1"),
    fieldMessage(7, graph),
    fieldMessage(8, [fieldString(1, ""), fieldVarint(2, ONNX_OPSET)]),
  ]);
}

/**
 * The reference output of a dense network on `rows` rows of `x` (row-major, `rows × inFeatures`),
 * computed in float64: what the ONNX run should approximate (within float32 rounding). With
 * `outputType: "int32"` the result is truncated toward zero like the model's Cast.
 */
export function evalDenseModel(options: DenseModelOptions, x: ArrayLike<number>, rows: number): Float64Array {
  const layers = denseLayers(options);
  if (x.length !== rows * layers[0].inFeatures) throw invalid(`x has ${x.length} values, not rows × inFeatures = ${rows * layers[0].inFeatures}`, ["x"]);
  let h = Float64Array.from(x);
  for (const { inFeatures, outFeatures, weights, bias, relu } of layers) {
    const next = new Float64Array(rows * outFeatures);
    for (let m = 0; m < rows; m++) {
      for (let j = 0; j < outFeatures; j++) {
        let s = 0;
        for (let k = 0; k < inFeatures; k++) s += h[m * inFeatures + k] * weights[k * outFeatures + j];
        s += bias[j];
        next[m * outFeatures + j] = relu && s < 0 ? 0 : s;
      }
    }
    h = next;
  }
  if (options.outputType === "int32") h = h.map(Math.trunc);
  return h;
}
