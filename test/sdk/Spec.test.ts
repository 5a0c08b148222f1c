/**
 * The job spec (sdk/src/spec.ts): validation with zod paths, RFC 8785 canonical JSON, the spec hash;
 * and the canonical output encodings and chunking rule (sdk/src/encoding.ts).
 */
import { expect } from "chai";
import { MemoryBlobStore, digestOf } from "../../sdk/src/blob.js";
import {
  INT32_MAX,
  INT32_MIN,
  MeshworkEncodingError,
  chunkRange,
  chunkRanges,
  decodeFixedPoint,
  decodeInt32LE,
  encodeFixedPoint,
  encodeInt32LE,
  roundHalfEven,
  splitChunks,
  toFixedPoint,
} from "../../sdk/src/encoding.js";
import { MeshworkError, MeshworkValidationError } from "../../sdk/src/errors.js";
import {
  MAX_CHUNKS,
  MAX_SPEC_BYTES,
  RUNTIME_IDS,
  canonicalJson,
  executableOf,
  getJobSpec,
  jcs,
  parseJobSpec,
  parseJobSpecBytes,
  putJobSpec,
  runtimeId,
  runtimeName,
  specBytes,
  specHash,
  type JobSpecInput,
} from "../../sdk/src/spec.js";
import { RUNTIME_INT, RUNTIME_ONNX } from "../helpers/system.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const D1 = digestOf(utf8("program"));
const D2 = digestOf(utf8("input"));
const D3 = digestOf(utf8("model"));

function intSpec(): any {
  return {
    version: 1,
    runtime: "int-kernel",
    program: { digest: D1, size: 7, uri: "http://127.0.0.1:8080/blobs/" + D1 },
    inputs: { kind: "blob", blob: { digest: D2, size: 4096 }, elementBytes: 4 },
    chunking: { chunks: 16 },
    output: { encoding: "int32-le", canonicalisation: "exact" },
  };
}

function onnxSpec(): any {
  return {
    version: 1,
    runtime: "onnx",
    model: { digest: D3, size: 5, uri: "ipfs://bafkreigh2akiscaildc" },
    inputs: { kind: "chunks", chunks: [{ digest: D2, size: 5 }, { digest: D1, size: 7 }] },
    chunking: { chunks: 2 },
    output: { encoding: "fixed-point", scaleBits: 16, canonicalisation: "tolerance" },
    encryptTo: { scheme: "x25519-aes-256-gcm", publicKey: "0x" + "11".repeat(32) },
    metadata: { name: "resnet tile", priority: 2, public: true },
  };
}

/** The issues of the validation error `input` raises, as [path, message]. */
function issuesOf(input: unknown): [string, string][] {
  try {
    parseJobSpec(input);
  } catch (e) {
    expect(e).to.be.instanceOf(MeshworkValidationError).and.instanceOf(MeshworkError);
    return (e as MeshworkValidationError).issues.map((i) => [i.path.join("."), i.message]);
  }
  return expect.fail("the spec was accepted");
}

/** Reorders an object's keys (recursively), to show that key order never matters. */
function reversed(value: any): any {
  if (Array.isArray(value)) return value.map(reversed);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]));
  return value;
}

/** The float64 whose IEEE 754 bits are `hex`. */
function f64(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt("0x" + hex));
  return view.getFloat64(0);
}

describe("job spec", () => {
  describe("validation", () => {
    it("accepts both runtimes and both input layouts", () => {
      const a = parseJobSpec(intSpec());
      expect(a.runtime).to.equal("int-kernel");
      expect(executableOf(a)).to.deep.equal(intSpec().program);
      const b = parseJobSpec(onnxSpec());
      expect(executableOf(b).digest).to.equal(D3);
      expect(b.inputs.kind === "chunks" && b.inputs.chunks).to.have.length(2);
    });

    it("normalises digests and keys, and fills in defaults", () => {
      const s = intSpec();
      s.program.digest = D1.slice(2).toUpperCase();
      delete s.inputs.elementBytes;
      s.inputs.blob.size = 4095;
      const parsed = parseJobSpec(s);
      expect(parsed.runtime === "int-kernel" && parsed.program.digest).to.equal(D1);
      expect(parsed.inputs).to.deep.equal({ kind: "blob", blob: { digest: D2, size: 4095 }, elementBytes: 1 });
      const o = onnxSpec();
      o.encryptTo.publicKey = "AB".repeat(32);
      expect(parseJobSpec(o).encryptTo?.publicKey).to.equal("0x" + "ab".repeat(32));
    });

    it("rejects unknown keys at every level (typos do not pass silently)", () => {
      expect(issuesOf({ ...intSpec(), chunkng: { chunks: 4 } })).to.deep.equal([["", 'Unrecognized key: "chunkng"']]);
      const s = intSpec();
      s.output.scalebits = 16;
      expect(issuesOf(s)[0][0]).to.equal("output");
      const t = intSpec();
      t.program.sha256 = D1;
      expect(issuesOf(t)[0]).to.deep.equal(["program", 'Unrecognized key: "sha256"']);
      // A field of the other runtime.
      const u = onnxSpec();
      u.program = u.model;
      expect(issuesOf(u).map((i) => i[0])).to.include("");
    });

    it("reports each bad field with its zod path", () => {
      const s = intSpec();
      s.version = 2;
      s.program.digest = "0x1234";
      s.program.size = -1;
      s.program.uri = "ftp://example.com/x";
      s.chunking.chunks = 0;
      expect(issuesOf(s).map((i) => i[0])).to.have.members(["version", "program.digest", "program.size", "program.uri", "chunking.chunks"]);

      const o = onnxSpec();
      o.inputs.chunks[1].digest = "nope";
      expect(issuesOf(o)).to.deep.equal([["inputs.chunks.1.digest", "expected a SHA-256 digest: 64 hex digits, optionally 0x-prefixed"]]);

      expect(issuesOf({ ...intSpec(), runtime: "onxx" })[0][0]).to.equal("runtime");
      expect(issuesOf({ ...intSpec(), inputs: { kind: "urls" } })[0][0]).to.equal("inputs.kind");
      expect(issuesOf({ ...intSpec(), inputs: { ...intSpec().inputs, elementBytes: 3 } })).to.deep.equal([
        ["inputs.elementBytes", "elementBytes must be 1, 2, 4 or 8"],
      ]);
      for (const uri of ["blob:", "blob:0x12", "http://", "file:///etc/passwd", "ipfs://"]) {
        expect(issuesOf({ ...intSpec(), program: { digest: D1, size: 7, uri } }), uri).to.deep.equal([
          ["program.uri", "expected an http(s)://, ipfs:// or blob:0x<sha256> URI"],
        ]);
      }
      for (const uri of ["blob:" + D1, "https://blobs.example/b/" + D1, "ipfs://bafkreigh2akiscaildc"]) {
        expect(parseJobSpec({ ...intSpec(), program: { digest: D1, size: 7, uri } }).runtime, uri).to.equal("int-kernel");
      }
      expect(issuesOf("{}")).to.deep.equal([["", "Invalid input: expected object, received string"]]);
    });

    it("checks that the parts agree", () => {
      const fixedNoScale = intSpec();
      fixedNoScale.output = { encoding: "fixed-point", canonicalisation: "exact" };
      expect(issuesOf(fixedNoScale)).to.deep.equal([["output.scaleBits", "fixed-point output needs scaleBits"]]);

      const scaleOnInts = intSpec();
      scaleOnInts.output.scaleBits = 8;
      expect(issuesOf(scaleOnInts)[0][0]).to.equal("output.scaleBits");

      const toleranceOnInts = intSpec();
      toleranceOnInts.output.canonicalisation = "tolerance";
      expect(issuesOf(toleranceOnInts)[0][0]).to.equal("output.canonicalisation");

      const tooFewChunks = onnxSpec();
      tooFewChunks.chunking.chunks = 3;
      expect(issuesOf(tooFewChunks)).to.deep.equal([["inputs.chunks", "2 input chunks listed but chunking.chunks is 3"]]);

      const ragged = intSpec();
      ragged.inputs.blob.size = 4094;
      expect(issuesOf(ragged)[0][0]).to.equal("inputs.blob.size");

      const bigScale = onnxSpec();
      bigScale.output.scaleBits = 32;
      expect(issuesOf(bigScale)[0][0]).to.equal("output.scaleBits");
    });

    it("bounds chunks to 1..MAX_CHUNKS", () => {
      const s = intSpec();
      s.chunking.chunks = MAX_CHUNKS;
      expect(parseJobSpec(s).chunking.chunks).to.equal(65_536);
      s.chunking.chunks = MAX_CHUNKS + 1;
      expect(issuesOf(s)[0][0]).to.equal("chunking.chunks");
      s.chunking.chunks = 1.5;
      expect(issuesOf(s)[0][0]).to.equal("chunking.chunks");
    });

    it("bounds a spec to MAX_SPEC_BYTES: the longest chunk list fits; longer is refused when hashed, parsed or fetched", async () => {
      const s = onnxSpec();
      const chunks = Array.from({ length: MAX_CHUNKS }, (_, i) => ({ digest: digestOf(utf8(String(i))), size: Number.MAX_SAFE_INTEGER }));
      s.inputs.chunks = chunks;
      s.chunking.chunks = MAX_CHUNKS;
      const largest = specBytes(s).length;
      expect(largest).to.be.below(MAX_SPEC_BYTES).and.above(6_000_000);
      s.inputs.chunks = chunks.map((c) => ({ ...c, uri: "https://blobs.example.org/" + c.digest }));
      try {
        specHash(s);
        expect.fail("accepted");
      } catch (e: any) {
        expect(e).to.be.instanceOf(MeshworkValidationError);
        expect(e.message).to.match(/at most 8388608 \(MAX_SPEC_BYTES\)/);
        expect(e.details.size).to.be.above(MAX_SPEC_BYTES);
      }
      // A worker reading a spec blob: refused before it is decoded, and by a store before it is read.
      expect(() => parseJobSpecBytes(new Uint8Array(MAX_SPEC_BYTES + 1))).to.throw(MeshworkValidationError, /8388609 bytes/);
      const store = new MemoryBlobStore();
      const big = await store.put(new Uint8Array(MAX_SPEC_BYTES + 1));
      const error = await getJobSpec(store, big).catch((e) => e);
      expect(error.name).to.equal("MeshworkBlobError");
      expect(error.details).to.include({ reason: "too-large", size: MAX_SPEC_BYTES + 1, maxBytes: MAX_SPEC_BYTES });
    });

    it("validates metadata and the encryption key", () => {
      const o = onnxSpec();
      o.metadata = { nested: { no: 1 } };
      expect(issuesOf(o)[0][0]).to.equal("metadata.nested");
      const p = onnxSpec();
      p.encryptTo = { scheme: "rsa", publicKey: "0x12" };
      expect(issuesOf(p).map((i) => i[0])).to.have.members(["encryptTo.scheme", "encryptTo.publicKey"]);
      const q = onnxSpec();
      q.metadata = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i]));
      expect(issuesOf(q)).to.deep.equal([["metadata", "at most 32 metadata entries"]]);
    });

    it("error messages list every issue with its path", () => {
      const s = intSpec();
      s.chunking.chunks = 0;
      try {
        parseJobSpec(s);
        expect.fail("accepted");
      } catch (e: any) {
        expect(e.shortMessage).to.match(/^invalid job spec: chunking\.chunks: /);
        expect(e.details).to.deep.equal({ issues: 1 });
      }
    });

    it("runtime ids match the contracts' and the test kit's", () => {
      expect(runtimeId("int-kernel")).to.equal(RUNTIME_INT);
      expect(runtimeId("onnx")).to.equal(RUNTIME_ONNX);
      expect(RUNTIME_IDS).to.deep.equal({ "int-kernel": 0, onnx: 1 });
      expect(runtimeName(1)).to.equal("onnx");
      expect(runtimeName(7)).to.equal(undefined);
    });
  });

  describe("RFC 8785 canonical JSON", () => {
    it("matches the RFC's §3.2.2 example (literals, numbers, string escapes)", () => {
      const input = JSON.parse(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
          ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
      );
      expect(jcs(input)).to.equal(
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
      );
    });

    it("sorts keys by UTF-16 code units (§3.2.3 example)", () => {
      const input = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
      };
      expect(jcs(input)).to.equal(
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
          '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
      );
    });

    it("formats numbers like ECMAScript (appendix B vectors)", () => {
      const vectors: [string, string][] = [
        ["0000000000000000", "0"],
        ["8000000000000000", "0"], // -0
        ["0000000000000001", "5e-324"],
        ["8000000000000001", "-5e-324"],
        ["7fefffffffffffff", "1.7976931348623157e+308"],
        ["ffefffffffffffff", "-1.7976931348623157e+308"],
        ["4340000000000000", "9007199254740992"],
        ["c340000000000000", "-9007199254740992"],
        ["4430000000000000", "295147905179352830000"],
        ["44b52d02c7e14af5", "9.999999999999997e+22"],
        ["44b52d02c7e14af6", "1e+23"],
        ["44b52d02c7e14af7", "1.0000000000000001e+23"],
        ["444b1ae4d6e2ef4e", "999999999999999700000"],
        ["444b1ae4d6e2ef4f", "999999999999999900000"],
        ["444b1ae4d6e2ef50", "1e+21"],
        ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
        ["3eb0c6f7a0b5ed8d", "0.000001"],
        ["41b3de4355555553", "333333333.3333332"],
        ["41b3de4355555554", "333333333.33333325"],
        ["41b3de4355555555", "333333333.3333333"],
        ["41b3de4355555556", "333333333.3333334"],
        ["41b3de4355555557", "333333333.33333343"],
        ["becbf647612f3696", "-0.0000033333333333333333"],
        ["43143ff3c1cb0959", "1424953923781206.2"],
      ];
      for (const [bits, text] of vectors) expect(jcs(f64(bits)), bits).to.equal(text);
      expect(jcs([1e21, 1e20, 0.1 + 0.2])).to.equal("[1e+21,100000000000000000000,0.30000000000000004]");
    });

    it("escapes only what JSON requires, in lower-case \\u form", () => {
      expect(jcs("\u0000\u001f\b\f\n\r\t\"\\/\u007f\u2028é😀")).to.equal('"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\/\u007f\u2028é😀"');
    });

    it("refuses what has no canonical form", () => {
      for (const bad of [NaN, Infinity, -Infinity, { x: [1, NaN] }, "\ud800", { ["\udc00"]: 1 }]) {
        expect(() => jcs(bad), String(bad)).to.throw(MeshworkValidationError);
      }
      const cyclic: any = { a: 1 };
      cyclic.self = cyclic;
      expect(() => jcs(cyclic)).to.throw(MeshworkValidationError, /Circular/);
      expect(() => jcs(undefined)).to.throw(MeshworkValidationError);
    });
  });

  describe("spec hash", () => {
    it("is SHA-256 of the canonical UTF-8 bytes, 0x-prefixed bytes32", () => {
      const text = canonicalJson(onnxSpec());
      expect(text).to.not.match(/\s(?=(?:[^"]*"[^"]*")*[^"]*$)/); // no whitespace outside strings
      expect(text.startsWith('{"chunking":{"chunks":2},"encryptTo":')).to.equal(true);
      expect(specHash(onnxSpec())).to.equal(digestOf(utf8(text))).and.match(/^0x[0-9a-f]{64}$/);
      expect(specBytes(onnxSpec())).to.deep.equal(utf8(text));
    });

    it("does not depend on key order, digest spelling or defaults left out", () => {
      const base = specHash(intSpec());
      expect(specHash(reversed(intSpec()))).to.equal(base);
      expect(canonicalJson(reversed(onnxSpec()))).to.equal(canonicalJson(onnxSpec()));
      const bare = intSpec();
      bare.program.digest = D1.slice(2).toUpperCase();
      expect(specHash(bare)).to.equal(base);
      const withDefault = intSpec();
      withDefault.inputs.elementBytes = 1;
      const withoutDefault = intSpec();
      delete withoutDefault.inputs.elementBytes;
      expect(specHash(withDefault)).to.equal(specHash(withoutDefault)).and.not.equal(base);
    });

    it("changes with any field", () => {
      const other = intSpec();
      other.chunking.chunks = 8;
      expect(specHash(other)).to.not.equal(specHash(intSpec()));
      const meta = onnxSpec();
      meta.metadata.priority = 3;
      expect(specHash(meta)).to.not.equal(specHash(onnxSpec()));
    });

    it("is a known vector for a fixed spec", () => {
      const spec: JobSpecInput = {
        version: 1,
        runtime: "int-kernel",
        program: { digest: "00".repeat(32), size: 0 },
        inputs: { kind: "blob", blob: { digest: "11".repeat(32), size: 8 }, elementBytes: 4 },
        chunking: { chunks: 2 },
        output: { encoding: "int32-le", canonicalisation: "exact" },
      };
      const text =
        '{"chunking":{"chunks":2},"inputs":{"blob":{"digest":"0x' +
        "11".repeat(32) +
        '","size":8},"elementBytes":4,"kind":"blob"},"output":{"canonicalisation":"exact","encoding":"int32-le"},' +
        '"program":{"digest":"0x' +
        "00".repeat(32) +
        '","size":0},"runtime":"int-kernel","version":1}';
      expect(canonicalJson(spec)).to.equal(text);
      expect(specHash(spec)).to.equal(digestOf(utf8(text)));
    });

    it("is the spec blob's digest: put, then get back by specHash", async () => {
      const store = new MemoryBlobStore();
      const hash = await putJobSpec(store, reversed(onnxSpec()));
      expect(hash).to.equal(specHash(onnxSpec()));
      expect(await getJobSpec(store, hash)).to.deep.equal(parseJobSpec(onnxSpec()));
      expect(parseJobSpecBytes(await store.get(hash))).to.deep.equal(parseJobSpec(onnxSpec()));
    });

    it("getJobSpec refuses a stored spec that is not canonical, and parseJobSpecBytes non-JSON", async () => {
      const store = new MemoryBlobStore();
      const pretty = await store.put(utf8(JSON.stringify(onnxSpec(), null, 2)));
      try {
        await getJobSpec(store, pretty);
        expect.fail("accepted");
      } catch (e: any) {
        expect(e).to.be.instanceOf(MeshworkValidationError);
        expect(e.message).to.match(/not in canonical form/);
        expect(e.details.canonicalHash).to.equal(specHash(onnxSpec()));
      }
      expect(() => parseJobSpecBytes(utf8("{not json"))).to.throw(MeshworkValidationError, /not UTF-8 JSON/);
      expect(() => parseJobSpecBytes(new Uint8Array([0x7b, 0xff, 0x7d]))).to.throw(MeshworkValidationError, /not UTF-8 JSON/);
    });
  });
});

describe("canonical output encoding", () => {
  const bytesOf = (...ints: number[]) => encodeInt32LE(ints);

  it("int32 little-endian round trip, and bounds", () => {
    const values = [0, 1, -1, 256, INT32_MAX, INT32_MIN];
    const bytes = encodeInt32LE(values);
    expect([...bytes.subarray(0, 12)]).to.deep.equal([0, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255]);
    expect([...bytes.subarray(16)]).to.deep.equal([255, 255, 255, 127, 0, 0, 0, 128]);
    expect([...decodeInt32LE(bytes)]).to.deep.equal(values);
    for (const bad of [INT32_MAX + 1, INT32_MIN - 1, 1.5, NaN]) {
      expect(() => encodeInt32LE([0, bad]), String(bad)).to.throw(MeshworkEncodingError).with.property("details").that.include({ index: 1 });
    }
    expect(() => decodeInt32LE(new Uint8Array(5))).to.throw(MeshworkEncodingError);
    // A view at an odd offset decodes too.
    expect([...decodeInt32LE(new Uint8Array([9, 1, 0, 0, 0]).subarray(1))]).to.deep.equal([1]);
  });

  it("rounds half to even, not half up", () => {
    const cases: [number, number][] = [
      [0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, 0], [-1.5, -2], [-2.5, -2],
      [0.49999999999999994, 0], [2.5000000000000004, 3], [-2.4, -2], [-2.6, -3], [7, 7],
    ];
    for (const [x, q] of cases) expect(roundHalfEven(x), String(x)).to.equal(q);
    expect([...toFixedPoint([0.5, 1.5, 2.5, -0.5, -2.5], 0)]).to.deep.equal([0, 2, 2, 0, -2]);
    // At scale 2^-16, ties are half a grid step.
    const step = 2 ** -16;
    expect([...toFixedPoint([0.5 * step, 1.5 * step, 2.5 * step, -1.5 * step, 1 + 0.5 * step])]).to.deep.equal([0, 2, 2, -2, 65536]);
  });

  it("encodes fixed point as int32 LE of round(x·2^k), and decodes it exactly", () => {
    expect(encodeFixedPoint([1, -1, 0.25], 16)).to.deep.equal(bytesOf(65536, -65536, 16384));
    expect(encodeFixedPoint([1.5], 1)).to.deep.equal(bytesOf(3));
    expect(encodeFixedPoint([-0])).to.deep.equal(bytesOf(0));
    const values = [0, 1.25, -3.75, 32767.5, -32768, 1e-9, Math.PI];
    const decoded = decodeFixedPoint(encodeFixedPoint(Float32Array.from(values)));
    decoded.forEach((d, i) => expect(Math.abs(d - Math.fround(values[i]))).to.be.at.most(2 ** -17));
    expect([...decodeFixedPoint(encodeFixedPoint([0.75, -0.5], 31), 31)]).to.deep.equal([0.75, -0.5]);
  });

  it("refuses NaN, infinities and overflow with a typed error naming the element", () => {
    const max = INT32_MAX / 2 ** 16; // 32767.99998...
    expect([...toFixedPoint([max, -32768])]).to.deep.equal([INT32_MAX, INT32_MIN]);
    for (const bad of [NaN, Infinity, -Infinity, 32768, -32768.00001, 1e300]) {
      try {
        encodeFixedPoint([1, 2, bad]);
        expect.fail(`accepted ${bad}`);
      } catch (e: any) {
        expect(e, String(bad)).to.be.instanceOf(MeshworkEncodingError).and.instanceOf(MeshworkError);
        expect(e.details.index).to.equal(2);
        expect(e.shortMessage).to.match(Number.isFinite(bad) ? /overflow/ : /non-finite/);
      }
    }
    // The tie just above INT32_MAX rounds to the even 2^31, which does not fit; a bit less rounds down and fits.
    expect(() => encodeFixedPoint([INT32_MAX + 0.5], 0)).to.throw(MeshworkEncodingError, /overflow/);
    expect([...toFixedPoint([INT32_MAX + 0.4], 0)]).to.deep.equal([INT32_MAX]);
    expect(() => encodeFixedPoint([1], 32)).to.throw(MeshworkEncodingError, /scaleBits/);
    expect(() => encodeFixedPoint([1], -1)).to.throw(MeshworkEncodingError, /scaleBits/);
  });

  describe("splitChunks", () => {
    const bytes = Uint8Array.from({ length: 10 }, (_, i) => i);
    const sizes = (chunks: Uint8Array[]) => chunks.map((c) => c.length);

    it("gives the first len mod N chunks one extra byte, in order", () => {
      const chunks = splitChunks(bytes, 3);
      expect(sizes(chunks)).to.deep.equal([4, 3, 3]);
      expect(chunks.map((c) => [...c])).to.deep.equal([[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]);
      expect(sizes(splitChunks(bytes, 4))).to.deep.equal([3, 3, 2, 2]);
      expect(sizes(splitChunks(bytes, 5))).to.deep.equal([2, 2, 2, 2, 2]);
    });

    it("N = 1 is the whole blob; N > length leaves empty chunks at the end", () => {
      expect(splitChunks(bytes, 1).map((c) => [...c])).to.deep.equal([[...bytes]]);
      expect(sizes(splitChunks(bytes, 13))).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
      expect(sizes(splitChunks(new Uint8Array(), 3))).to.deep.equal([0, 0, 0]);
    });

    it("keeps elements whole", () => {
      const ints = encodeInt32LE([1, 2, 3, 4, 5]);
      const chunks = splitChunks(ints, 2, { elementBytes: 4 });
      expect(chunks.map((c) => [...decodeInt32LE(c)])).to.deep.equal([[1, 2, 3], [4, 5]]);
      expect(sizes(splitChunks(ints, 7, { elementBytes: 4 }))).to.deep.equal([4, 4, 4, 4, 4, 0, 0]);
      expect(() => splitChunks(new Uint8Array(10), 2, { elementBytes: 4 })).to.throw(MeshworkEncodingError, /whole number of elements/);
    });

    it("returns views whose concatenation is the input, at the offsets chunkRange gives", () => {
      const big = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
      for (const n of [1, 2, 3, 7, 64, 999, 1000, 1001, 4096]) {
        const chunks = splitChunks(big, n);
        expect(chunks).to.have.length(n);
        expect(Buffer.concat(chunks).equals(big), String(n)).to.equal(true);
        const ranges = chunkRanges(big.length, n);
        chunks.forEach((c, i) => {
          expect(c.buffer).to.equal(big.buffer);
          expect(c.byteOffset).to.equal(ranges[i].offset);
          expect(chunkRange(big.length, n, i)).to.deep.equal(ranges[i]);
        });
        const lengths = sizes(chunks);
        expect(Math.max(...lengths) - Math.min(...lengths)).to.be.at.most(1);
      }
    });

    it("rejects a non-positive or fractional chunk count and an index out of range", () => {
      for (const n of [0, -1, 1.5, NaN]) expect(() => splitChunks(bytes, n), String(n)).to.throw(MeshworkEncodingError, /chunks/);
      expect(() => chunkRange(10, 3, 3)).to.throw(MeshworkEncodingError, /index/);
    });
  });
});
