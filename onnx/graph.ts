/**
 * The graph builder: records ONNX nodes with the dtype and static shape of every value, and
 * serialises the result to an ONNX `ModelProto`.
 *
 * Values know their graph, so op wrappers (`onnx/ops.ts`) are plain functions of their inputs:
 * `matMul(a, b)` appends a `MatMul` node to `a.graph`. Shapes may hold symbolic names for
 * dimensions only known at run time (e.g. `"batch"`); autodiff needs numbers.
 * @module
 */
import {
  type AttrValue,
  type Dim,
  type DType,
  encodeModel,
  type FunctionData,
  type GraphData,
  type NodeData,
  type TensorData,
} from "./proto.ts";

export type { Dim, DType };

/** The default-domain opset our graphs import (ORT 1.30 accepts ≤ 26). */
export const OPSET = 21;
/** The IR version written into models (ORT 1.30 loads 8–13). */
export const IR_VERSION = 10;

/** A tensor value in a graph: an input, an initializer or a node output. */
export interface Value {
  readonly graph: Graph;
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

/** An attribute as op wrappers pass it; tensors and explicit kinds use {@linkcode AttrValue}. */
export type Attr = number | string | readonly number[] | AttrValue;

/** A recorded node. `null` inputs are omitted optional inputs. */
export interface Node {
  readonly op: string;
  readonly domain: string;
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

/** Typed arrays accepted as tensor data. */
export type TensorArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array;

/** A tensor held by the graph as an initializer (parameter values, constants). */
export interface Initializer {
  readonly value: Value;
  readonly data: TensorArray;
}

/** Number of elements of a fully static shape. */
export function numel(shape: readonly Dim[]): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number") {
      throw new TypeError(`Cannot count elements of a symbolic shape: current value is [${shape}]`);
    }
    n *= d;
  }
  return n;
}

/** The shape with every dimension a number, or a TypeError naming what needed it. */
export function staticShape(v: Value, why: string): number[] {
  return v.shape.map((d) => {
    if (typeof d !== "number") {
      throw new TypeError(`Cannot ${why} as ${v.name} has a symbolic shape: [${v.shape}]`);
    }
    return d;
  });
}

function arrayDType(a: TensorArray): DType {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof BigInt64Array) return "int64";
  return "uint8";
}

/** Converts data to the typed array of `dtype` (bool is stored as uint8). */
export function toTypedArray(data: TensorArray | readonly number[], dtype: DType): TensorArray {
  switch (dtype) {
    case "float32":
      return data instanceof Float32Array ? data : Float32Array.from(data as number[], Number);
    case "float64":
      return data instanceof Float64Array ? data : Float64Array.from(data as number[], Number);
    case "int32":
      return data instanceof Int32Array ? data : Int32Array.from(data as number[], Number);
    case "int64":
      return data instanceof BigInt64Array
        ? data
        : BigInt64Array.from(data as number[], (x) => BigInt(x));
    case "uint8":
    case "bool":
      return data instanceof Uint8Array ? data : Uint8Array.from(data as number[], Number);
    default:
      throw new TypeError(`Cannot store tensors of dtype ${dtype}`);
  }
}

function rawBytes(a: TensorArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function toAttrValue(a: Attr): AttrValue {
  if (typeof a === "number") {
    return Number.isInteger(a) ? { kind: "int", value: a } : { kind: "float", value: a };
  }
  if (typeof a === "string") return { kind: "string", value: a };
  if (Array.isArray(a)) return { kind: "ints", value: a as number[] };
  return a as AttrValue;
}

/** A recorded node as `NodeProto` data. */
export function nodeData(n: Node): NodeData {
  return {
    opType: n.op,
    domain: n.domain,
    inputs: n.inputs.map((i) => i?.name ?? ""),
    outputs: n.outputs.map((o) => o.name),
    attributes: Object.fromEntries(Object.entries(n.attrs).map(([k, a]) => [k, toAttrValue(a)])),
  };
}

/** An initializer as `TensorProto` data. */
export function initializerData(i: Initializer): TensorData {
  return {
    name: i.value.name,
    dtype: i.value.dtype,
    dims: staticShape(i.value, "serialise an initializer"),
    raw: rawBytes(i.data),
  };
}

/** Options of {@linkcode Graph.toModel}. */
export interface ModelOptions {
  /** Extra opset imports, e.g. a custom domain. */
  opsets?: Record<string, number>;
  /** Model-local functions. */
  functions?: FunctionData[];
}

/** A graph under construction. */
export class Graph {
  readonly name: string;
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers: Initializer[] = [];
  #names = new Set<string>();
  #producer = new Map<string, Node>();
  #counter = 0;
  #scalars = new Map<string, Value>();
  #functions = new Map<string, FunctionData>();

  constructor(name: string) {
    this.name = name;
  }

  /** A fresh value name with the given stem, unique in this graph. */
  freshName(stem: string): string {
    let name = `${stem}_${this.#counter++}`;
    while (this.#names.has(name)) name = `${stem}_${this.#counter++}`;
    return name;
  }

  #claim(name: string): string {
    if (this.#names.has(name)) throw new TypeError(`Cannot reuse value name "${name}"`);
    this.#names.add(name);
    return name;
  }

  #value(name: string, dtype: DType, shape: readonly Dim[]): Value {
    return { graph: this, name: this.#claim(name), dtype, shape: [...shape] };
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: readonly Dim[]): Value {
    const v = this.#value(name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** Declares an initializer holding `data` (a parameter's value or a constant). */
  initializer(
    name: string,
    dtype: DType,
    shape: readonly Dim[],
    data: TensorArray | readonly number[],
  ): Value {
    const typed = toTypedArray(data, dtype);
    if (typed.length !== numel(shape)) {
      throw new RangeError(
        `Cannot create initializer ${name} of shape [${shape}] from ${typed.length} elements`,
      );
    }
    const v = this.#value(name, dtype, shape);
    this.initializers.push({ value: v, data: typed });
    return v;
  }

  /** An anonymous constant tensor. */
  constant(data: TensorArray | readonly number[], shape: readonly number[], dtype?: DType): Value {
    const dt = dtype ?? (Array.isArray(data) ? "float32" : arrayDType(data as TensorArray));
    return this.initializer(this.freshName("const"), dt, shape, data);
  }

  /** A rank-0 constant, shared between uses of the same (dtype, value). */
  scalar(value: number, dtype: DType = "float32"): Value {
    const key = `${dtype}:${Object.is(value, -0) ? "-0" : value}`;
    let v = this.#scalars.get(key);
    if (!v) {
      v = this.constant([value], [], dtype);
      this.#scalars.set(key, v);
    }
    return v;
  }

  /** A rank-1 int64 constant, e.g. axes or a target shape. */
  ints(values: readonly number[]): Value {
    return this.constant(values, [values.length], "int64");
  }

  /** Appends a node; `outputs` gives each output's dtype and shape. */
  node(
    op: string,
    inputs: readonly (Value | null)[],
    outputs: readonly { dtype: DType; shape: readonly Dim[] }[],
    attrs: Record<string, Attr> = {},
    domain = "",
  ): Value[] {
    for (const i of inputs) {
      if (i && i.graph !== this) {
        throw new TypeError(`Cannot use ${i.name} from graph ${i.graph.name} in ${this.name}`);
      }
    }
    const stem = op.toLowerCase();
    const outs = outputs.map((o) => this.#value(this.freshName(stem), o.dtype, o.shape));
    const node: Node = { op, domain, inputs: [...inputs], outputs: outs, attrs };
    this.nodes.push(node);
    for (const o of outs) this.#producer.set(o.name, node);
    return outs;
  }

  /** The node that produced `v`, or undefined for inputs and initializers. */
  producer(v: Value): Node | undefined {
    return this.#producer.get(v.name);
  }

  /** The initializer data of `v`, if `v` is an initializer. */
  initializerData(v: Value): TensorArray | undefined {
    return this.initializers.find((i) => i.value === v)?.data;
  }

  /**
   * Registers a model-local function (the portable definition of a custom-domain op); nodes of
   * that op may then be added with {@linkcode node}. Registering the same function twice is a
   * no-op; registering a different body under the same name is a TypeError (a graph holds one
   * definition per op).
   */
  useFunction(f: FunctionData): void {
    const key = `${f.domain}:${f.name}`;
    const known = this.#functions.get(key);
    if (known && known !== f && JSON.stringify(known) !== JSON.stringify(f)) {
      throw new TypeError(`Cannot define ${key} twice in graph ${this.name} with different bodies`);
    }
    this.#functions.set(key, f);
  }

  /** Marks `v` as a graph output under `name` (an Identity node renames it when needed). */
  output(v: Value, name?: string): Value {
    let out = v;
    if (name !== undefined && name !== v.name) {
      out = { graph: this, name: this.#claim(name), dtype: v.dtype, shape: v.shape };
      const node: Node = { op: "Identity", domain: "", inputs: [v], outputs: [out], attrs: {} };
      this.nodes.push(node);
      this.#producer.set(out.name, node);
    }
    this.outputs.push(out);
    return out;
  }

  /** The graph as `GraphProto` data: its nodes, initializers, inputs and outputs. */
  toGraphData(): GraphData {
    const info = (v: Value) => ({ name: v.name, dtype: v.dtype, shape: v.shape });
    return {
      name: this.name,
      nodes: this.nodes.map(nodeData),
      initializers: this.initializers.map(initializerData),
      inputs: this.inputs.map(info),
      outputs: this.outputs.map(info),
    };
  }

  /** Serialises the graph as an ONNX model. */
  toModel(opts: ModelOptions = {}): Uint8Array {
    const functions = [...this.#functions.values(), ...(opts.functions ?? [])];
    // Every non-default domain a node or function uses is imported at version 1 (our functions
    // and ORT's contrib ops are both version 1).
    const domains = Object.fromEntries(
      [...functions.map((f) => f.domain), ...this.nodes.map((n) => n.domain)]
        .filter((d) => d !== "").map((d) => [d, 1]),
    );
    return encodeModel({
      irVersion: IR_VERSION,
      opsets: { "": OPSET, ...domains, ...opts.opsets },
      producer: "claimbench",
      producerVersion: "0.1.0",
      graph: this.toGraphData(),
      functions,
    });
  }
}
