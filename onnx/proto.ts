/**
 * A minimal protobuf writer for the parts of the ONNX schema (onnx/onnx.proto, IR version 10)
 * that claimbench emits: ModelProto, GraphProto (also as a `Scan` body attribute), NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto and FunctionProto.
 *
 * Why our own: the npm `onnx-proto` package carries the ONNX 1.10 schema and cannot write
 * `FunctionProto.attribute_proto` (field 11), which custom-domain functions need; the subset of
 * the wire format we write (varints, fixed32/64, length-delimited) is small.
 * @module
 */

/** ONNX `TensorProto.DataType` codes for the dtypes we use. */
export const DATA_TYPE = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
} as const;

/** A tensor element type that graphs may carry. */
export type DType = keyof typeof DATA_TYPE;

/** A tensor dimension: a number, or a symbolic name such as `"batch"`. */
export type Dim = number | string;

/** An attribute value as NodeProto carries it. */
export type AttrValue =
  | { kind: "float"; value: number }
  | { kind: "int"; value: number }
  | { kind: "string"; value: string }
  | { kind: "floats"; value: readonly number[] }
  | { kind: "ints"; value: readonly number[] }
  | { kind: "tensor"; value: TensorData }
  | { kind: "graph"; value: GraphData };

/** A tensor's bytes in little-endian layout, as `TensorProto.raw_data` stores them. */
export interface TensorData {
  name?: string;
  dtype: DType;
  dims: readonly number[];
  raw: Uint8Array;
}

/** ONNX `NodeProto`. */
export interface NodeData {
  opType: string;
  domain?: string;
  name?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: Readonly<Record<string, AttrValue>>;
}

/** ONNX `ValueInfoProto` restricted to tensor types. */
export interface ValueInfoData {
  name: string;
  dtype: DType;
  shape: readonly Dim[];
}

/** ONNX `GraphProto`. */
export interface GraphData {
  name: string;
  nodes: readonly NodeData[];
  initializers: readonly TensorData[];
  inputs: readonly ValueInfoData[];
  outputs: readonly ValueInfoData[];
  valueInfo?: readonly ValueInfoData[];
}

/** ONNX `FunctionProto` (a model-local function in a custom domain). */
export interface FunctionData {
  name: string;
  domain: string;
  inputs: readonly string[];
  outputs: readonly string[];
  /** Attributes with defaults (field 11, `attribute_proto`). */
  attributes?: Readonly<Record<string, AttrValue>>;
  nodes: readonly NodeData[];
  opsets: Readonly<Record<string, number>>;
}

/** ONNX `ModelProto`. */
export interface ModelData {
  irVersion: number;
  opsets: Readonly<Record<string, number>>;
  producer: string;
  producerVersion: string;
  graph: GraphData;
  functions?: readonly FunctionData[];
}

class Writer {
  #chunks: Uint8Array[] = [];
  #size = 0;

  #push(b: Uint8Array): void {
    this.#chunks.push(b);
    this.#size += b.length;
  }

  #varint(v: number | bigint): void {
    // Negative int64 values are written as 10-byte two's-complement varints.
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.#push(Uint8Array.from(out));
  }

  #tag(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }

  int(field: number, v: number): void {
    this.#tag(field, 0);
    this.#varint(v);
  }

  float(field: number, v: number): void {
    this.#tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#push(b);
  }

  bytes(field: number, b: Uint8Array): void {
    this.#tag(field, 2);
    this.#varint(b.length);
    this.#push(b);
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, write: (w: Writer) => void): void {
    const w = new Writer();
    write(w);
    this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

const ATTR_TYPE = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  graph: 5,
  floats: 6,
  ints: 7,
} as const;

function writeTensor(w: Writer, t: TensorData): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, DATA_TYPE[t.dtype]);
  if (t.name !== undefined) w.string(8, t.name);
  w.bytes(9, t.raw);
}

function writeAttribute(w: Writer, name: string, a: AttrValue): void {
  w.string(1, name);
  switch (a.kind) {
    case "float":
      w.float(2, a.value);
      break;
    case "int":
      w.int(3, a.value);
      break;
    case "string":
      w.string(4, a.value);
      break;
    case "tensor":
      w.message(5, (t) => writeTensor(t, a.value));
      break;
    case "graph":
      w.message(6, (g) => writeGraph(g, a.value));
      break;
    case "floats":
      for (const f of a.value) w.float(7, f);
      break;
    case "ints":
      for (const i of a.value) w.int(8, i);
      break;
  }
  w.int(20, ATTR_TYPE[a.kind]);
}

function writeNode(w: Writer, n: NodeData): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, a] of Object.entries(n.attributes ?? {})) {
    w.message(5, (m) => writeAttribute(m, k, a));
  }
  if (n.domain) w.string(7, n.domain);
}

function writeValueInfo(w: Writer, v: ValueInfoData): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, DATA_TYPE[v.dtype]);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => typeof d === "number" ? dim.int(1, d) : dim.string(2, d));
        }
      });
    }));
}

function writeOpsets(w: Writer, field: number, opsets: Readonly<Record<string, number>>): void {
  for (const [domain, version] of Object.entries(opsets)) {
    w.message(field, (o) => {
      if (domain) o.string(1, domain);
      o.int(2, version);
    });
  }
}

function writeGraph(w: Writer, g: GraphData): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
  for (const v of g.valueInfo ?? []) w.message(13, (m) => writeValueInfo(m, v));
}

function writeFunction(w: Writer, f: FunctionData): void {
  w.string(1, f.name);
  for (const i of f.inputs) w.string(4, i);
  for (const o of f.outputs) w.string(5, o);
  for (const n of f.nodes) w.message(7, (m) => writeNode(m, n));
  writeOpsets(w, 9, f.opsets);
  w.string(10, f.domain);
  for (const [k, a] of Object.entries(f.attributes ?? {})) {
    w.message(11, (m) => writeAttribute(m, k, a));
  }
}

/** Serialises a model to the ONNX protobuf wire format. */
export function encodeModel(m: ModelData): Uint8Array {
  const w = new Writer();
  w.int(1, m.irVersion);
  w.string(2, m.producer);
  w.string(3, m.producerVersion);
  w.message(7, (g) => writeGraph(g, m.graph));
  writeOpsets(w, 8, m.opsets);
  for (const f of m.functions ?? []) w.message(25, (fw) => writeFunction(fw, f));
  return w.finish();
}
