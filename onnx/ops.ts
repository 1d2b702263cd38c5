/**
 * Wrappers for the primitive ONNX ops: each appends one node (named after the ONNX op) to its
 * first input's graph and infers the output's dtype and static shape. Inputs are positional,
 * attributes go in one options object: `gather(table, ids, { axis: 0 })` emits `Gather`.
 *
 * Every op emitted here is a {@linkcode PrimitiveOp} and has exactly one rule in the gradient
 * table (`onnx/gradients.ts`); everything else (GELU's erf form, layer norm, cross-entropy) is
 * composed from these in `onnx/nn.ts`, and claimbench's own ops (`ai.claimbench`: attention,
 * fused bias + GELU, the loss, AdamW, …) live in `onnx/custom/`, one file per family, their
 * portable definitions traced from compositions of these wrappers.
 *
 * Shapes are static in models; the custom ops' definitions are traced with symbolic dims (e.g.
 * `"B"`), for which {@linkcode shapeOf}, {@linkcode reshapeTo}, {@linkcode padTo} and
 * {@linkcode constantOfShape} take run-time shapes.
 * @module
 */
import { type Dim, type DType, Graph, staticShape, type Value } from "./graph.ts";
import { DATA_TYPE, type GraphData, type ValueInfoData } from "./proto.ts";

/** Every op the wrappers below can emit. */
export type PrimitiveOp =
  | "Add"
  | "Sub"
  | "Mul"
  | "Div"
  | "Pow"
  | "Max"
  | "Min"
  | "Neg"
  | "Exp"
  | "Log"
  | "Sqrt"
  | "Erf"
  | "Tanh"
  | "Sigmoid"
  | "Softplus"
  | "Relu"
  | "Gelu"
  | "Identity"
  | "Cast"
  | "MatMul"
  | "FusedMatMul"
  | "Gather"
  | "Reshape"
  | "Transpose"
  | "Slice"
  | "Concat"
  | "Split"
  | "Pad"
  | "Expand"
  | "Unsqueeze"
  | "Squeeze"
  | "ReduceSum"
  | "ReduceMean"
  | "ReduceMax"
  | "Softmax"
  | "LogSoftmax"
  | "Where"
  | "ArgMax"
  | "Equal"
  | "Less"
  | "Greater"
  | "LayerNormalization"
  | "Shape"
  | "ConstantOfShape"
  | "NonZero"
  | "Scan";

/** A value, or a number turned into a scalar constant of the other operand's dtype. */
export type Operand = Value | number;

const FLOAT_TYPES: readonly DType[] = ["float32", "float64"];

/** Whether `dtype` is a floating-point type (and so can carry gradients). */
export function isFloat(dtype: DType): boolean {
  return FLOAT_TYPES.includes(dtype);
}

function lift(x: Operand, like: Operand[]): Value {
  if (typeof x !== "number") return x;
  const other = like.find((o): o is Value => typeof o !== "number");
  if (!other) throw new TypeError("Cannot lift a number without a tensor operand");
  return other.graph.scalar(x, other.dtype);
}

function sameDims(a: Dim, b: Dim): boolean {
  return a === b;
}

/** Numpy-style broadcast of shapes; TypeError when incompatible. */
export function broadcastShapes(...shapes: (readonly Dim[])[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i] ?? 1;
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (!sameDims(d, e)) {
        throw new TypeError(
          `Cannot broadcast shapes ${shapes.map((x) => `[${x}]`).join(", ")}: dim ${d} vs ${e}`,
        );
      }
    }
    out.push(d);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw new RangeError(`Cannot use axis ${axis} on a tensor of rank ${rank}`);
  }
  return a;
}

function binary(op: PrimitiveOp, a: Operand, b: Operand, outType?: DType): Value {
  const x = lift(a, [b]);
  const y = lift(b, [a]);
  if (x.dtype !== y.dtype) {
    throw new TypeError(`Cannot apply ${op} to ${x.dtype} and ${y.dtype}`);
  }
  const shape = broadcastShapes(x.shape, y.shape);
  return x.graph.node(op, [x, y], [{ dtype: outType ?? x.dtype, shape }])[0];
}

function unary(op: PrimitiveOp, x: Value, attrs: Record<string, number | string> = {}): Value {
  return x.graph.node(op, [x], [{ dtype: x.dtype, shape: x.shape }], attrs)[0];
}

/** `Add`: a + b, broadcasting. */
export function add(a: Operand, b: Operand): Value {
  return binary("Add", a, b);
}
/** `Sub`: a − b, broadcasting. */
export function sub(a: Operand, b: Operand): Value {
  return binary("Sub", a, b);
}
/** `Mul`: a · b, broadcasting. */
export function mul(a: Operand, b: Operand): Value {
  return binary("Mul", a, b);
}
/** `Div`: a / b, broadcasting. */
export function div(a: Operand, b: Operand): Value {
  return binary("Div", a, b);
}
/** `Pow`: a ^ b, broadcasting. */
export function pow(a: Operand, b: Operand): Value {
  return binary("Pow", a, b);
}
/** `Max` of two tensors, broadcasting. */
export function max(a: Operand, b: Operand): Value {
  return binary("Max", a, b);
}
/** `Min` of two tensors, broadcasting. */
export function min(a: Operand, b: Operand): Value {
  return binary("Min", a, b);
}
/** `Equal` → bool. */
export function equal(a: Operand, b: Operand): Value {
  return binary("Equal", a, b, "bool");
}
/** `Less` → bool. */
export function less(a: Operand, b: Operand): Value {
  return binary("Less", a, b, "bool");
}
/** `Greater` → bool. */
export function greater(a: Operand, b: Operand): Value {
  return binary("Greater", a, b, "bool");
}

/** `Neg`: −x. */
export function neg(x: Value): Value {
  return unary("Neg", x);
}
/** `Exp`. */
export function exp(x: Value): Value {
  return unary("Exp", x);
}
/** `Log` (natural). */
export function log(x: Value): Value {
  return unary("Log", x);
}
/** `Sqrt`. */
export function sqrt(x: Value): Value {
  return unary("Sqrt", x);
}
/** `Erf` (ORT's CPU kernel is float32 only). */
export function erf(x: Value): Value {
  return unary("Erf", x);
}
/** `Tanh`. */
export function tanh(x: Value): Value {
  return unary("Tanh", x);
}
/**
 * `Softplus`: log(1 + eˣ). ONNX Runtime computes it as x + log1p(e^−x) for x > 0 and log1p(eˣ)
 * otherwise: finite everywhere and accurate where eˣ is tiny (Mamba's Δ starts at 1e-3).
 */
export function softplus(x: Value): Value {
  return unary("Softplus", x);
}

/** `Sigmoid`: 1/(1 + e^−x). */
export function sigmoid(x: Value): Value {
  return unary("Sigmoid", x);
}
/** `Relu`: max(x, 0). */
export function relu(x: Value): Value {
  return unary("Relu", x);
}
/** `Gelu` (opset 20), exact erf form: 0.5·x·(1 + erf(x/√2)); float32 only in ORT. */
export function gelu(x: Value): Value {
  return unary("Gelu", x, { approximate: "none" });
}
/** `Identity`. */
export function identity(x: Value): Value {
  return unary("Identity", x);
}

/** `Cast` to another dtype. */
export function cast(x: Value, to: DType): Value {
  return x.graph.node("Cast", [x], [{ dtype: to, shape: x.shape }], { to: DATA_TYPE[to] })[0];
}

/** `MatMul` with numpy semantics for operands of rank ≥ 2 (batch dims broadcast). */
export function matMul(a: Value, b: Value): Value {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new TypeError(
      `Cannot MatMul ${a.name} [${a.shape}] and ${b.name} [${b.shape}]: both need rank ≥ 2`,
    );
  }
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const k2 = b.shape[b.shape.length - 2];
  const n = b.shape[b.shape.length - 1];
  if (!sameDims(k, k2)) {
    throw new TypeError(`Cannot MatMul [${a.shape}] by [${b.shape}]: inner dims ${k} ≠ ${k2}`);
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return binaryNode("MatMul", a, b, [...batch, m, n]);
}

/** The ONNX Runtime contrib domain, home of `FusedMatMul`. */
export const MS_DOMAIN = "com.microsoft";

/** Options of {@linkcode fusedMatMul}. */
export interface FusedMatMulOptions {
  /** Use Aᵀ (last two axes swapped). */
  transA?: boolean;
  /** Use Bᵀ (last two axes swapped). */
  transB?: boolean;
  /** Scale of the product. */
  alpha?: number;
}

/**
 * `FusedMatMul` (ORT's `com.microsoft` domain): alpha·op(A)·op(B), op = identity or a swap of the
 * last two axes, batch dims broadcast as `MatMul`. The transposes happen inside the GEMM, so a
 * product with a transposed operand costs no `Transpose` pass. ORT's CPU kernel is float32 only.
 */
export function fusedMatMul(a: Value, b: Value, opts: FusedMatMulOptions = {}): Value {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) {
    throw new TypeError(
      `Cannot FusedMatMul ${a.name} [${a.shape}] and ${b.name} [${b.shape}]: both need rank ≥ 2`,
    );
  }
  if (a.dtype !== "float32" || b.dtype !== "float32") {
    throw new TypeError(
      `Cannot FusedMatMul ${a.dtype} by ${b.dtype}: ORT's kernel is float32 only`,
    );
  }
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const m = a.shape[transA ? ra - 1 : ra - 2];
  const k = a.shape[transA ? ra - 2 : ra - 1];
  const k2 = b.shape[transB ? rb - 1 : rb - 2];
  const n = b.shape[transB ? rb - 2 : rb - 1];
  if (!sameDims(k, k2)) {
    throw new TypeError(
      `Cannot FusedMatMul [${a.shape}]${transA ? "ᵀ" : ""} by [${b.shape}]${
        transB ? "ᵀ" : ""
      }: inner dims ${k} ≠ ${k2}`,
    );
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return a.graph.node(
    "FusedMatMul",
    [a, b],
    [{ dtype: a.dtype, shape: [...batch, m, n] }],
    {
      transA: transA ? 1 : 0,
      transB: transB ? 1 : 0,
      alpha: { kind: "float", value: opts.alpha ?? 1 },
    },
    MS_DOMAIN,
  )[0];
}

function binaryNode(op: PrimitiveOp, a: Value, b: Value, shape: Dim[]): Value {
  if (a.dtype !== b.dtype) throw new TypeError(`Cannot apply ${op} to ${a.dtype} and ${b.dtype}`);
  return a.graph.node(op, [a, b], [{ dtype: a.dtype, shape }])[0];
}

/** `Gather` along `axis`: out shape = data[:axis] + indices + data[axis+1:]. */
export function gather(data: Value, indices: Value, opts: { axis?: number } = {}): Value {
  const axis = normAxis(opts.axis ?? 0, data.shape.length);
  if (indices.dtype !== "int32" && indices.dtype !== "int64") {
    throw new TypeError(`Cannot Gather with ${indices.dtype} indices: int32 or int64 needed`);
  }
  const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
  return data.graph.node("Gather", [data, indices], [{ dtype: data.dtype, shape }], { axis })[0];
}

/**
 * `Reshape` to `shape`; one entry may be −1. A symbolic dim may appear only where the input has
 * the same symbolic dim at the same position (it is then emitted as 0, "copy").
 *
 * A reshape to the shape `x` already has is still a node: dropping those changed which of ONNX
 * Runtime's fusions applied, and with them the bits of trained models (the dilated CNN's at once,
 * the transformer's after a few hundred steps), which every calibrated threshold rests on.
 */
export function reshape(x: Value, shape: readonly Dim[]): Value {
  const literal: number[] = [];
  let known = 1;
  let inferAt = -1;
  shape.forEach((d, i) => {
    if (typeof d === "string") {
      if (x.shape[i] !== d) {
        throw new TypeError(`Cannot reshape [${x.shape}] to [${shape}]: symbolic dim ${d}`);
      }
      literal.push(0);
    } else if (d === -1) {
      if (inferAt >= 0) throw new TypeError(`Cannot reshape to [${shape}]: two −1 entries`);
      inferAt = i;
      literal.push(-1);
    } else {
      known *= d;
      literal.push(d);
    }
  });
  const out: Dim[] = [...shape];
  if (inferAt >= 0) {
    // Symbolic dims of x that are not copied go into the −1 entry, which then stays symbolic
    // (e.g. [B, T, C] → [−1, C] gives [B·T, C]).
    const absorbed: string[] = [];
    let total = 1;
    x.shape.forEach((d, i) => {
      if (typeof d === "number") total *= d;
      else if (shape[i] !== d) absorbed.push(d);
    });
    if (total % known !== 0) throw new TypeError(`Cannot reshape [${x.shape}] to [${shape}]`);
    const rest = total / known;
    out[inferAt] = absorbed.length === 0
      ? rest
      : [...absorbed, ...(rest === 1 ? [] : [String(rest)])].join("·");
  } else if (
    shape.every((d) => typeof d === "number") && x.shape.every((d) => typeof d === "number")
  ) {
    const a = (x.shape as number[]).reduce((n, d) => n * d, 1);
    if (a !== known) throw new TypeError(`Cannot reshape [${x.shape}] (${a}) to [${shape}]`);
  }
  return x.graph.node("Reshape", [x, x.graph.ints(literal)], [{ dtype: x.dtype, shape: out }])[0];
}

/**
 * `Reshape` to a run-time shape: `shape` is an int64 vector (e.g. from {@linkcode shapeOf} and
 * {@linkcode concat}); `dims` declares the result's shape for the builder (symbolic names where
 * it is not known statically).
 */
export function reshapeTo(x: Value, shape: Value, dims: readonly Dim[]): Value {
  if (shape.dtype !== "int64" || shape.shape.length !== 1 || shape.shape[0] !== dims.length) {
    throw new TypeError(
      `Cannot reshape ${x.name} to a run-time shape [${shape.shape}] ${shape.dtype} declared as ` +
        `[${dims}]: an int64 vector of ${dims.length} entries is needed`,
    );
  }
  return x.graph.node("Reshape", [x, shape], [{ dtype: x.dtype, shape: dims }])[0];
}

/** `Shape` of x, dims `start` to `end` (default: all) → int64 [end − start]. */
export function shapeOf(x: Value, opts: { start?: number; end?: number } = {}): Value {
  const r = x.shape.length;
  const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + r : i, 0), r);
  const start = clamp(opts.start ?? 0);
  const end = clamp(opts.end ?? r);
  const attrs: Record<string, number> = {};
  if (opts.start !== undefined) attrs.start = opts.start;
  if (opts.end !== undefined) attrs.end = opts.end;
  return x.graph.node(
    "Shape",
    [x],
    [{ dtype: "int64", shape: [Math.max(end - start, 0)] }],
    attrs,
  )[0];
}

/**
 * `ConstantOfShape`: a tensor of the run-time shape `shape` (int64 vector) filled with `value` in
 * `dtype`; `dims` declares its shape for the builder.
 */
export function constantOfShape(
  shape: Value,
  value: number,
  dtype: DType,
  dims: readonly Dim[],
): Value {
  const raw = new Uint8Array(toBytes(value, dtype));
  return shape.graph.node("ConstantOfShape", [shape], [{ dtype, shape: dims }], {
    value: { kind: "tensor", value: { dtype, dims: [1], raw } },
  })[0];
}

function toBytes(value: number, dtype: DType): ArrayBuffer {
  switch (dtype) {
    case "float32":
      return Float32Array.of(value).buffer;
    case "float64":
      return Float64Array.of(value).buffer;
    case "int32":
      return Int32Array.of(value).buffer;
    case "int64":
      return BigInt64Array.of(BigInt(value)).buffer;
    default:
      return Uint8Array.of(value).buffer;
  }
}

/**
 * `Pad` with zeros by run-time `pads` (int64 [2·rank], `Pad` layout); `dims` declares the
 * result's shape for the builder.
 */
export function padTo(x: Value, pads: Value, dims: readonly Dim[]): Value {
  if (pads.dtype !== "int64" || pads.shape.join() !== String(2 * x.shape.length)) {
    throw new TypeError(
      `Cannot pad ${x.name} [${x.shape}] by run-time pads [${pads.shape}] ${pads.dtype}: an ` +
        `int64 vector of ${2 * x.shape.length} entries is needed`,
    );
  }
  return x.graph.node("Pad", [x, pads], [{ dtype: x.dtype, shape: dims }], {
    mode: "constant",
  })[0];
}

/** `Transpose` with permutation `perm` (default: reverse). */
export function transpose(x: Value, perm?: readonly number[]): Value {
  const p = perm ?? x.shape.map((_, i) => x.shape.length - 1 - i);
  if (p.length !== x.shape.length || [...p].sort().some((v, i) => v !== i)) {
    throw new TypeError(`Cannot transpose rank ${x.shape.length} with perm [${p}]`);
  }
  return x.graph.node("Transpose", [x], [{ dtype: x.dtype, shape: p.map((i) => x.shape[i]) }], {
    perm: [...p],
  })[0];
}

/** Normalised static slice bounds of one axis (step 1). */
export function sliceBounds(dim: number, start: number, end: number): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
  const s = clamp(start);
  return [s, Math.max(s, clamp(end))];
}

/** `Slice` with unit steps along `axes`; bounds are static. */
export function slice(
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
): Value {
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, x.shape.length));
  const shape = [...x.shape];
  ax.forEach((a, i) => {
    const d = staticShape(x, "slice")[a];
    const [s, e] = sliceBounds(d, starts[i], ends[i]);
    shape[a] = e - s;
  });
  const g = x.graph;
  return g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(ax)], [{
    dtype: x.dtype,
    shape,
  }])[0];
}

/** `Concat` along `axis`. */
export function concat(xs: readonly Value[], axis: number): Value {
  const rank = xs[0].shape.length;
  const a = normAxis(axis, rank);
  const shape = [...xs[0].shape];
  const parts = xs.map((x) => x.shape[a]);
  // A symbolic part makes the sum symbolic: "H+H+H".
  shape[a] = parts.every((d) => typeof d === "number")
    ? (parts as number[]).reduce((n, d) => n + d, 0)
    : parts.join("+");
  return xs[0].graph.node("Concat", xs, [{ dtype: xs[0].dtype, shape }], { axis: a })[0];
}

/**
 * `Split` along `axis` into pieces of the given sizes, or into `{ parts }` equal pieces (the
 * `num_outputs` form, for a symbolic dim: each piece's dim is then named `"<dim>/<parts>"`, or
 * `dim` when given).
 */
export function split(
  x: Value,
  sizes: readonly number[] | { parts: number; dim?: Dim },
  axis: number,
): Value[] {
  const a = normAxis(axis, x.shape.length);
  if (!Array.isArray(sizes)) {
    const { parts } = sizes as { parts: number; dim?: Dim };
    const d = x.shape[a];
    if (typeof d === "number" && d % parts !== 0) {
      throw new RangeError(`Cannot split dim ${d} into ${parts} equal parts`);
    }
    const piece = (sizes as { dim?: Dim }).dim ??
      (typeof d === "number" ? d / parts : `${d}/${parts}`);
    const shape = x.shape.map((e, i) => (i === a ? piece : e));
    const outs = Array.from({ length: parts }, () => ({ dtype: x.dtype, shape }));
    return x.graph.node("Split", [x], outs, { axis: a, num_outputs: parts });
  }
  const total = staticShape(x, "split")[a];
  if (sizes.reduce((s, v) => s + v, 0) !== total) {
    throw new RangeError(`Cannot split dim ${total} into [${sizes}]`);
  }
  const outs = (sizes as readonly number[]).map((s) => {
    const shape = [...x.shape];
    shape[a] = s;
    return { dtype: x.dtype, shape };
  });
  return x.graph.node("Split", [x, x.graph.ints(sizes as readonly number[])], outs, { axis: a });
}

/** `Pad` with a constant; `pads` = [begin_0, …, begin_{r−1}, end_0, …, end_{r−1}]. */
export function pad(x: Value, pads: readonly number[], value = 0): Value {
  const r = x.shape.length;
  if (pads.length !== 2 * r) throw new TypeError(`Cannot pad rank ${r} with [${pads}]`);
  const shape = x.shape.map((d, i) =>
    pads[i] === 0 && pads[i + r] === 0 ? d : (d as number) + pads[i] + pads[i + r]
  );
  const g = x.graph;
  return g.node("Pad", [x, g.ints(pads), g.scalar(value, x.dtype)], [{ dtype: x.dtype, shape }], {
    mode: "constant",
  })[0];
}

/** `Expand` (broadcast) to `shape`. */
export function expand(x: Value, shape: readonly number[]): Value {
  const out = broadcastShapes(x.shape, shape);
  return x.graph.node("Expand", [x, x.graph.ints(shape)], [{ dtype: x.dtype, shape: out }])[0];
}

/**
 * `Expand` (broadcast) to the run-time `shape` (an int64 vector); `dims` declares the result's
 * shape for the builder.
 */
export function expandTo(x: Value, shape: Value, dims: readonly Dim[]): Value {
  return x.graph.node("Expand", [x, shape], [{ dtype: x.dtype, shape: dims }])[0];
}

/** `Unsqueeze`: insert unit dims at `axes` (of the output). */
export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const rank = x.shape.length + axes.length;
  const ax = axes.map((a) => normAxis(a, rank));
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]);
  return x.graph.node("Unsqueeze", [x, x.graph.ints(ax)], [{ dtype: x.dtype, shape }])[0];
}

/** `Squeeze`: remove the unit dims at `axes`. */
export function squeeze(x: Value, axes: readonly number[]): Value {
  const ax = axes.map((a) => normAxis(a, x.shape.length));
  for (const a of ax) {
    if (x.shape[a] !== 1) throw new TypeError(`Cannot squeeze axis ${a} of [${x.shape}]`);
  }
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.node("Squeeze", [x, x.graph.ints(ax)], [{ dtype: x.dtype, shape }])[0];
}

function reduced(x: Value, axes: readonly number[], keepdims: boolean): [number[], Dim[]] {
  const ax = axes.map((a) => normAxis(a, x.shape.length)).sort((a, b) => a - b);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) shape.push(d);
    else if (keepdims) shape.push(1);
  });
  return [ax, shape];
}

function reduce(op: PrimitiveOp, x: Value, axes?: readonly number[], keepdims = false): Value {
  if (axes?.length === 0) {
    // Every axis by ONNX's default: no axes input.
    const shape = keepdims ? x.shape.map(() => 1) : [];
    return x.graph.node(op, [x], [{ dtype: x.dtype, shape }], { keepdims: keepdims ? 1 : 0 })[0];
  }
  const [ax, shape] = reduced(x, axes ?? x.shape.map((_, i) => i), keepdims);
  return x.graph.node(op, [x, x.graph.ints(ax)], [{ dtype: x.dtype, shape }], {
    keepdims: keepdims ? 1 : 0,
  })[0];
}

/** `ReduceSum` over `axes` (default all, listed; `[]`: all, by ONNX's default, unlisted). */
export function reduceSum(
  x: Value,
  axes?: readonly number[],
  opts: { keepdims?: boolean } = {},
): Value {
  return reduce("ReduceSum", x, axes, opts.keepdims ?? false);
}

/** `ReduceMean` over `axes` (default all). */
export function reduceMean(
  x: Value,
  axes?: readonly number[],
  opts: { keepdims?: boolean } = {},
): Value {
  return reduce("ReduceMean", x, axes, opts.keepdims ?? false);
}
/** `ReduceMax` over `axes` (default all). */
export function reduceMax(
  x: Value,
  axes?: readonly number[],
  opts: { keepdims?: boolean } = {},
): Value {
  return reduce("ReduceMax", x, axes, opts.keepdims ?? false);
}

/** `Softmax` along `axis` (default last). */
export function softmax(x: Value, opts: { axis?: number } = {}): Value {
  return unary("Softmax", x, { axis: normAxis(opts.axis ?? -1, x.shape.length) });
}
/** `LogSoftmax` along `axis` (default last). */
export function logSoftmax(x: Value, opts: { axis?: number } = {}): Value {
  return unary("LogSoftmax", x, { axis: normAxis(opts.axis ?? -1, x.shape.length) });
}

/** `Where`: cond ? a : b, broadcasting. */
export function where(cond: Value, a: Operand, b: Operand): Value {
  const x = lift(a, [b]);
  const y = lift(b, [a]);
  if (cond.dtype !== "bool") throw new TypeError(`Cannot use ${cond.dtype} as Where condition`);
  const shape = broadcastShapes(cond.shape, x.shape, y.shape);
  return cond.graph.node("Where", [cond, x, y], [{ dtype: x.dtype, shape }])[0];
}

/**
 * One-hot encoding along a new last axis: 1 where index = class, else 0, in `dtype`. Composed
 * as `Cast(Equal(indices, classes))` because ORT's `OneHot` kernels cover few dtype combinations
 * (none with float64 values).
 */
export function oneHot(indices: Value, depth: number, dtype: DType = "float32"): Value {
  const g = indices.graph;
  const classes = g.constant(Array.from({ length: depth }, (_, i) => i), [depth], indices.dtype);
  return cast(equal(unsqueeze(indices, [-1]), classes), dtype);
}

/** `ArgMax` along `axis` → int64. */
export function argMax(x: Value, opts: { axis?: number; keepdims?: boolean } = {}): Value {
  const [ax, shape] = reduced(x, [opts.axis ?? -1], opts.keepdims ?? false);
  return x.graph.node("ArgMax", [x], [{ dtype: "int64", shape }], {
    axis: ax[0],
    keepdims: opts.keepdims ? 1 : 0,
  })[0];
}

/** A graph's scalar constant helper re-exported for rules and composed ops. */
export function scalarLike(x: Value, v: number): Value {
  return x.graph.scalar(v, x.dtype);
}

/**
 * `LayerNormalization` (opset 17) over the axes from `axis` (default last) on:
 * (x − μ)/√(σ² + ε)·scale + bias, with `scale` and `bias` of shape x.shape[axis:]. The node also
 * outputs μ and 1/√(σ² + ε) (float32 as ORT computes them, reduced axes kept as 1) for the
 * gradient rule; the wrapper returns the normalised value.
 */
export function layerNormalization(
  x: Value,
  scale: Value,
  bias: Value,
  opts: { axis?: number; epsilon?: number } = {},
): Value {
  const axis = normAxis(opts.axis ?? -1, x.shape.length);
  const tail = x.shape.slice(axis);
  for (const p of [scale, bias]) {
    if (p.shape.length !== tail.length || p.shape.some((d, i) => !sameDims(d, tail[i]))) {
      throw new TypeError(
        `Cannot apply LayerNormalization over [${tail}] with ${p.name} of shape [${p.shape}]`,
      );
    }
  }
  const stats = x.shape.map((d, i) => (i < axis ? d : 1));
  return x.graph.node("LayerNormalization", [x, scale, bias], [
    { dtype: x.dtype, shape: x.shape },
    { dtype: "float32", shape: stats },
    { dtype: "float32", shape: stats },
  ], { axis, epsilon: { kind: "float", value: opts.epsilon ?? 1e-5 } })[0];
}

/** `NonZero`: the indices of x's non-zero entries, int64 [rank, count]. */
export function nonZero(x: Value): Value {
  return x.graph.node("NonZero", [x], [{ dtype: "int64", shape: [x.shape.length, "nonzero"] }])[0];
}

/**
 * `ReduceSum` over run-time `axes` (an int64 vector; empty: no axis, x unchanged), keeping the
 * reduced dims; `dims` declares the result's shape for the builder. Only for definitions: the
 * gradient rule of `ReduceSum` needs constant axes.
 */
export function reduceSumOver(x: Value, axes: Value, dims: readonly Dim[]): Value {
  return x.graph.node("ReduceSum", [x, axes], [{ dtype: x.dtype, shape: dims }], {
    keepdims: 1,
    noop_with_empty_axes: 1,
  })[0];
}

/** A scanned input of {@linkcode scan}: sliced along `axis`, from the end when `reverse`. */
export interface ScanInput {
  readonly value: Value;
  readonly axis: number;
  readonly reverse?: boolean;
}

/** Where {@linkcode scan} stacks a per-step output: along `axis`, from the end when `reverse`. */
export interface ScanOutput {
  readonly axis: number;
  readonly reverse?: boolean;
}

/** What a {@linkcode scan} body returns for one step. */
export interface ScanStep {
  /** The next states, one per state, same dtypes and shapes. */
  readonly states: readonly Value[];
  /** The step's outputs, one per {@linkcode ScanOutput}. */
  readonly outputs: readonly Value[];
}

/**
 * `Scan` over `length` steps: `body` runs once per step on its own graph, from the current
 * states and each scanned input's slice (the input without its scan axis), and returns the next
 * states and the step's outputs. Returns the final states, then each output stacked along its
 * axis. The body sees nothing of the outer graph (pass loop-invariant values as states that it
 * returns unchanged), so its names are prefixed to keep them apart from the outer scope's.
 * Not differentiable: custom-op definitions use it (`onnx/custom/selective_scan.ts`).
 */
export function scan(
  states: readonly Value[],
  inputs: readonly ScanInput[],
  outputs: readonly ScanOutput[],
  length: Dim,
  body: (states: Value[], slices: Value[]) => ScanStep,
): Value[] {
  const outer = (states[0] ?? inputs[0]?.value)?.graph;
  if (!outer) throw new TypeError("Cannot scan without states or scanned inputs");
  const b = new Graph(`${outer.name} scan body`);
  const stateIns = states.map((v, i) => b.input(`state${i}`, v.dtype, v.shape));
  const sliceIns = inputs.map((inp, i) => {
    const a = normAxis(inp.axis, inp.value.shape.length);
    return b.input(`slice${i}`, inp.value.dtype, inp.value.shape.filter((_, j) => j !== a));
  });
  const step = body(stateIns, sliceIns);
  if (step.states.length !== states.length || step.outputs.length !== outputs.length) {
    throw new TypeError(
      `Cannot scan: the body returns ${step.states.length} states and ${step.outputs.length} ` +
        `outputs for ${states.length} and ${outputs.length}`,
    );
  }
  step.states.forEach((v, i) => b.output(v, `next_state${i}`));
  step.outputs.forEach((v, i) => b.output(v, `step_output${i}`));
  const outShapes = step.outputs.map((v, i) => {
    const shape: Dim[] = [...v.shape];
    shape.splice(normAxis(outputs[i].axis, v.shape.length + 1), 0, length);
    return { dtype: v.dtype, shape };
  });
  return outer.node(
    "Scan",
    [...states, ...inputs.map((i) => i.value)],
    [...states.map((v) => ({ dtype: v.dtype, shape: v.shape })), ...outShapes],
    {
      body: { kind: "graph", value: prefixNames(b.toGraphData(), `${outer.freshName("scan")}/`) },
      num_scan_inputs: inputs.length,
      scan_input_axes: inputs.map((i) => i.axis),
      scan_input_directions: inputs.map((i) => (i.reverse ? 1 : 0)),
      scan_output_axes: outputs.map((o) => o.axis),
      scan_output_directions: outputs.map((o) => (o.reverse ? 1 : 0)),
    },
  );
}

/**
 * `g` with every value name prefixed (a body that reads no outer value), and its inputs' and
 * outputs' dims left to the runtime (fresh symbolic names): a definition traced with symbolic or
 * broadcast dims declares shapes the builder can check but ORT should not.
 */
function prefixNames(g: GraphData, prefix: string): GraphData {
  const p = (n: string) => (n === "" ? n : prefix + n);
  let dims = 0;
  const free = (v: ValueInfoData) => ({
    ...v,
    name: p(v.name),
    shape: v.shape.map(() => `${prefix}dim${dims++}`),
  });
  return {
    ...g,
    nodes: g.nodes.map((n) => {
      if (Object.values(n.attributes ?? {}).some((a) => a.kind === "graph")) {
        throw new TypeError("Cannot nest a Scan in a Scan body");
      }
      return { ...n, inputs: n.inputs.map(p), outputs: n.outputs.map(p) };
    }),
    initializers: g.initializers.map((t) => ({ ...t, name: p(t.name!) })),
    inputs: g.inputs.map(free),
    outputs: g.outputs.map(free),
  };
}
