/**
 * The selective-scan family: `SelectiveScan` and `SelectiveScanGrad`, the recurrence of Mamba's
 * selective state-space layer (`selective_scan_ref` of state-spaces/mamba; `docs/claims.md`
 * §4.2). One op serves the selective (S6) arm, whose B and C change with every step, and the
 * time-invariant (LTI, S4D-like) arm, whose B and C are constants: B and C are broadcast.
 *
 * The node carries the recurrence only; {@linkcode selectiveScan} adds what `selective_scan_ref`
 * does around it (delta_bias, softplus, the D skip, the silu(z) gate, grouped B and C) with
 * standard ops, so the node has a fixed arity and no attributes, as every op of the kit does.
 *
 * Portable definitions use ONNX `Scan` over the length (`PLATFORM.md`: the fastest standard-op
 * form measured; the quadratic masked form does not fit memory at L 1024). Native kernels:
 * `native/kernels/selective_scan.cc` (CPU, streaming the state) and
 * `native/cuda/selective_scan.cu` (CUDA).
 * @module
 */
import { type Dim, staticShape, type Value } from "../graph.ts";
import {
  add,
  concat,
  constantOfShape,
  equal,
  exp,
  expand,
  expandTo,
  identity,
  mul,
  neg,
  nonZero,
  reduceSum,
  reduceSumOver,
  reshape,
  scan,
  shapeOf,
  sigmoid,
  softplus,
  squeeze,
  unsqueeze,
} from "../ops.ts";
import { silu } from "../nn.ts";
import {
  type CustomOp,
  emitCustomOp,
  nodeInputs,
  secondOrder,
  traceFunction,
  traceInputs,
} from "./kit.ts";

/**
 * The dims B and C are traced with: broadcast dims as 1, so that the builder's broadcasting
 * accepts them; the runtime broadcasts whatever they are.
 */
const BROADCAST_BC: readonly Dim[] = [1, 1, "N", 1];
const SCAN_TRACE: readonly (readonly Dim[])[] = [
  ["B", "D", "L"],
  ["B", "D", "L"],
  ["D", "N"],
  BROADCAST_BC,
  BROADCAST_BC,
];

/** What the definitions share: B and C over the length, Δ·u, and the zero state. */
type ScanOperands = ReturnType<typeof scanOperands>;

/** B and C over the length, Δ·u and the zero state, for {@linkcode forwardScan}. */
function scanOperands(U: Value, Delta: Value, A: Value, B: Value, C: Value) {
  const g = U.graph;
  const overLength = concat([g.ints([1, 1, 1]), shapeOf(U, { start: 2 })], 0); // [1, 1, 1, L]
  const b = expandTo(B, overLength, [1, 1, "N", "L"]);
  const c = expandTo(C, overLength, [1, 1, "N", "L"]);
  const zero = constantOfShape(
    concat([shapeOf(U, { end: 2 }), shapeOf(A, { start: 1 })], 0),
    0,
    U.dtype,
    ["B", "D", "N"],
  );
  return { b, c, du: mul(Delta, U), zero };
}

/**
 * The forward scan x ← exp(Δ_l·A) ⊙ x + (Δ_l·u_l)·B_l. `"outputs"`: y_l = Σ_n x·C_l [B, D, L] and
 * the last state [B, D, N]; `"states"`: every state before its step [B, D, N, L], all the
 * gradient needs of it.
 */
function forwardScan(
  Delta: Value,
  A: Value,
  { b, c, du, zero }: ScanOperands,
  keep: "outputs" | "states",
): Value[] {
  const states = keep === "states";
  const [last, , stacked] = scan(
    [zero, A],
    [
      { value: Delta, axis: 2 },
      { value: du, axis: 2 },
      { value: b, axis: 3 },
      ...(states ? [] : [{ value: c, axis: 3 }]),
    ],
    [{ axis: states ? 3 : 2 }],
    "L",
    ([x, a], [dl, dul, bl, cl]) => {
      const decay = exp(mul(unsqueeze(dl, [2]), a)); // [B, D, N]
      const next = add(mul(decay, x), mul(unsqueeze(dul, [2]), bl));
      const out = states ? x : reduceSum(mul(next, cl), [2]); // [B, D, N] or [B, D]
      return { states: [next, identity(a)], outputs: [out] };
    },
  );
  return states ? [stacked] : [stacked, last];
}

/** `full` summed over the dims where `like` is 1 (kept), giving like's run-time shape. */
function sumToShapeOf(full: Value, like: Value): Value {
  const ones = equal(shapeOf(like), like.graph.scalar(1, "int64"));
  return reduceSumOver(full, squeeze(nonZero(ones), [0]), like.shape);
}

/** The reverse scan and the gradients it gives (see {@linkcode SELECTIVE_SCAN_GRAD}). */
function backwardScan(dY: Value, U: Value, Delta: Value, A: Value, B: Value, C: Value): Value[] {
  const operands = scanOperands(U, Delta, A, B, C);
  const { b, c, du, zero } = operands;
  const [before] = forwardScan(Delta, A, operands, "states");
  const delta4 = unsqueeze(Delta, [2]); // [B, D, 1, L]
  const a4 = unsqueeze(A, [2]); // [D, N, 1]
  const decay = exp(mul(delta4, a4)); // [B, D, N, L]
  const after = add(mul(decay, before), mul(unsqueeze(du, [2]), b)); // the states x_l
  const dy4 = unsqueeze(dY, [2]); // [B, D, 1, L]
  // g_l = dy_l·C_l + exp(Δ_{l+1}A) ⊙ g_{l+1}, carried as h = exp(Δ_l A) ⊙ g_l.
  const [, adjoint] = scan(
    [zero],
    [{ value: dY, axis: 2, reverse: true }, { value: c, axis: 3, reverse: true }, {
      value: decay,
      axis: 3,
      reverse: true,
    }],
    [{ axis: 3, reverse: true }],
    "L",
    ([h], [dyl, cl, decayl]) => {
      const gl = add(mul(unsqueeze(dyl, [2]), cl), h);
      return { states: [mul(decayl, gl)], outputs: [gl] };
    },
  ); // [B, D, N, L]
  const gb = reduceSum(mul(adjoint, b), [2]); // [B, D, L]
  const dDecay = mul(mul(adjoint, before), decay); // ∂/∂(Δ_l A) of the step [B, D, N, L]
  return [
    mul(Delta, gb),
    add(mul(U, gb), reduceSum(mul(dDecay, a4), [2])),
    reduceSum(mul(dDecay, delta4), [0, 3]),
    sumToShapeOf(mul(adjoint, unsqueeze(du, [2])), B),
    sumToShapeOf(mul(dy4, after), C),
  ];
}

/** Checks the node's inputs; returns [batch, channels, length, state]. */
function checkScanShapes(action: string, u: Value, delta: Value, a: Value, b: Value, c: Value) {
  const us = staticShape(u, action);
  const as = staticShape(a, action);
  if (us.length !== 3 || staticShape(delta, action).join() !== us.join()) {
    throw new TypeError(
      `Cannot ${action}: U and Delta must both be [batch, channels, length], got ` +
        `[${u.shape}] and [${delta.shape}]`,
    );
  }
  const [batch, channels, length] = us;
  if (as.length !== 2 || as[0] !== channels) {
    throw new TypeError(`Cannot ${action}: A must be [${channels}, state], got [${a.shape}]`);
  }
  const state = as[1];
  for (const [name, v] of [["B", b], ["C", c]] as const) {
    const s = staticShape(v, action);
    const ok = s.length === 4 && [1, batch].includes(s[0]) && [1, channels].includes(s[1]) &&
      s[2] === state && [1, length].includes(s[3]);
    if (!ok) {
      throw new TypeError(
        `Cannot ${action}: ${name} must broadcast to [${batch}, ${channels}, ${state}, ${length}] ` +
          `(each of batch, channels, length either itself or 1), got [${v.shape}]`,
      );
    }
  }
  return [batch, channels, length, state];
}

/** A: −exp(·), S4D-real style; Δ: 0.05..0.55, a typical softplus(dt) range. */
function realisticScan(build: (xs: Value[]) => Value[]): (xs: Value[]) => Value[] {
  return ([...xs]) => {
    const at = xs.length === 6 ? 1 : 0; // SelectiveScanGrad: dY first
    xs[at + 1] = add(mul(sigmoid(xs[at + 1]), 0.5), 0.05);
    xs[at + 2] = neg(exp(xs[at + 2]));
    return build(xs);
  };
}

const KERNEL_SHAPES = [
  { shape: [3, 5, 17] }, // U
  { shape: [3, 5, 17] }, // Delta
  { shape: [5, 4] }, // A
  { shape: [3, 1, 4, 17] }, // B: selective
  { shape: [1, 5, 4, 1] }, // C: time-invariant
];

/**
 * `SelectiveScan(U, Delta, A, B, C) → (Y, LastState)`: for each batch b and channel d, from
 * x = 0 ∈ ℝᴺ, for l = 0..L−1: x ← exp(Δ_l·A[d]) ⊙ x + Δ_l·u_l·B_l; y_l = Σ_n x_n·C_l,n.
 * U, Delta [B, D, L] (Δ final: bias and softplus are applied before); A [D, N]; B and C rank 4,
 * broadcast to [B, D, N, L] (time-invariant: [1, D, N, 1]; selective: [B, 1, N, L]); Y [B, D, L];
 * LastState [B, D, N], the state after the last step.
 */
export const SELECTIVE_SCAN: CustomOp<"SelectiveScan"> = {
  name: "SelectiveScan",
  inputs: ["U", "Delta", "A", "B", "C"],
  outputs: ["Y", "LastState"],
  gradient: (args) => {
    if (args.dys[1]) {
      throw new TypeError(
        "Cannot differentiate SelectiveScan's LastState: gradients flow in through Y only",
      );
    }
    const dy = args.dys[0];
    if (!dy) throw new TypeError("Cannot differentiate SelectiveScan: Y does not reach the loss");
    const grads = selectiveScanGrad(dy, ...nodeInputs(args) as [Value, Value, Value, Value, Value]);
    return grads.map((g, i) => (args.needs[i] ? g : null));
  },
  gradCheck: [
    { // time-invariant B and C
      dtype: "float64",
      inputs: [{ shape: [2, 3, 5] }, { shape: [2, 3, 5] }, { shape: [3, 2] }, {
        shape: [1, 3, 2, 1],
      }, { shape: [1, 3, 2, 1] }],
      build: ([u, d, a, b, c]) => selectiveScanNode(u, d, a, b, c)[0],
    },
    { // selective B and C, and B broadcast in every dim but the state's
      dtype: "float64",
      inputs: [{ shape: [2, 3, 5] }, { shape: [2, 3, 5] }, { shape: [3, 2] }, {
        shape: [1, 1, 2, 1],
      }, { shape: [2, 1, 2, 5] }],
      build: ([u, d, a, b, c]) => selectiveScanNode(u, d, a, b, c)[0],
    },
    { // B and C in full
      dtype: "float64",
      inputs: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [3, 2] }, {
        shape: [2, 3, 2, 4],
      }, { shape: [2, 3, 2, 4] }],
      build: ([u, d, a, b, c]) => selectiveScanNode(u, d, a, b, c)[0],
    },
  ],
  kernel: {
    inputs: KERNEL_SHAPES,
    build: realisticScan(([u, d, a, b, c]) => selectiveScanNode(u, d, a, b, c)),
    agreement: 1e-5,
  },
};

/**
 * The `SelectiveScan` node of u, delta [B, D, L], a [D, N] and b, c broadcast to [B, D, N, L]:
 * returns y [B, D, L] and the last state [B, D, N]. {@linkcode selectiveScan} is the layer-level
 * wrapper, with `selective_scan_ref`'s options.
 */
export function selectiveScanNode(
  u: Value,
  delta: Value,
  a: Value,
  b: Value,
  c: Value,
): [Value, Value] {
  const [batch, channels, length, state] = checkScanShapes(
    "apply SelectiveScan",
    u,
    delta,
    a,
    b,
    c,
  );
  const inputs = [u, delta, a, b, c];
  const definition = traceFunction(
    SELECTIVE_SCAN.name,
    traceInputs(SELECTIVE_SCAN, inputs, SCAN_TRACE),
    SELECTIVE_SCAN.outputs,
    ([U, Delta, A, B, C]) => {
      return forwardScan(Delta, A, scanOperands(U, Delta, A, B, C), "outputs");
    },
  );
  const [y, last] = emitCustomOp(SELECTIVE_SCAN, definition, inputs, [
    { dtype: u.dtype, shape: [batch, channels, length] },
    { dtype: u.dtype, shape: [batch, channels, state] },
  ]);
  return [y, last];
}

/**
 * `SelectiveScanGrad(dY, U, Delta, A, B, C) → (dU, dDelta, dA, dB, dC)`: the gradient of
 * {@linkcode SELECTIVE_SCAN}'s Y, each in its input's shape. With a_l = exp(Δ_l·A), x_l the state
 * after step l (x₋₁ = 0) and the adjoint g_l = dy_l·C_l + a_{l+1} ⊙ g_{l+1} (a reverse-time
 * scan): dC = Σ dy_l·x_l and dB = Σ g_l·Δ_l·u_l over their broadcast dims;
 * du_l = Δ_l·Σ_n g_l·B_l; dΔ_l = u_l·Σ_n g_l·B_l + Σ_n g_l·x_{l−1}·a_l·A;
 * dA = Σ_{b,l} g_l·x_{l−1}·a_l·Δ_l.
 */
export const SELECTIVE_SCAN_GRAD: CustomOp<"SelectiveScanGrad"> = {
  name: "SelectiveScanGrad",
  inputs: ["dY", "U", "Delta", "A", "B", "C"],
  outputs: ["dU", "dDelta", "dA", "dB", "dC"],
  gradient: secondOrder("SelectiveScanGrad"),
  // Checked as SelectiveScan's rule, which emits it.
  gradCheck: "not differentiable",
  kernel: {
    inputs: [{ shape: [3, 5, 17] }, ...KERNEL_SHAPES],
    build: realisticScan(([dy, u, d, a, b, c]) => selectiveScanGrad(dy, u, d, a, b, c)),
    agreement: 1e-5,
  },
};

/** The gradients of {@linkcode selectiveScanNode}'s y for each of its inputs, from dy. */
export function selectiveScanGrad(
  dy: Value,
  u: Value,
  delta: Value,
  a: Value,
  b: Value,
  c: Value,
): Value[] {
  const action = "differentiate SelectiveScan";
  checkScanShapes(action, u, delta, a, b, c);
  if (staticShape(dy, action).join() !== u.shape.join()) {
    throw new TypeError(`Cannot ${action}: dY must be [${u.shape}], got [${dy.shape}]`);
  }
  const inputs = [dy, u, delta, a, b, c];
  const definition = traceFunction(
    SELECTIVE_SCAN_GRAD.name,
    traceInputs(SELECTIVE_SCAN_GRAD, inputs, [["B", "D", "L"], ...SCAN_TRACE]),
    SELECTIVE_SCAN_GRAD.outputs,
    ([dY, U, Delta, A, B, C]) => backwardScan(dY, U, Delta, A, B, C),
  );
  return emitCustomOp(
    SELECTIVE_SCAN_GRAD,
    definition,
    inputs,
    [u, delta, a, b, c].map((v) => ({ dtype: v.dtype, shape: v.shape })),
  );
}

/** Options of {@linkcode selectiveScan}: `selective_scan_ref`'s optional inputs. */
export interface SelectiveScanOptions {
  /** The skip [D]: out = y + u·D. */
  readonly D?: Value;
  /** The gate [B, D, L]: out ·= silu(z). */
  readonly z?: Value;
  /** Added to delta per channel [D] before the softplus. */
  readonly deltaBias?: Value;
  /** Δ = softplus(delta + deltaBias) (Mamba: true); else Δ = delta + deltaBias. */
  readonly deltaSoftplus?: boolean;
}

/**
 * B or C as the node takes it, from `selective_scan_ref`'s layouts: [D, N] time-invariant,
 * [B, N, L] selective, or [B, G, N, L] grouped (channel d reads group ⌊d/(D/G)⌋).
 */
function broadcastBC(name: string, v: Value, dims: number[]): Value {
  const [batch, channels, length, state] = dims;
  const s = staticShape(v, "apply selectiveScan");
  if (s.length === 2 && s[0] === channels && s[1] === state) {
    return reshape(v, [1, channels, state, 1]);
  }
  if (s.length === 3 && s.join() === [batch, state, length].join()) return unsqueeze(v, [1]);
  if (
    s.length === 4 && s[0] === batch && channels % s[1] === 0 && s[2] === state &&
    s[3] === length
  ) {
    const groups = s[1];
    if (groups === 1) return v;
    const perGroup = expand(reshape(v, [batch, groups, 1, state, length]), [
      1,
      1,
      channels / groups,
      1,
      1,
    ]);
    return reshape(perGroup, [batch, channels, state, length]);
  }
  throw new TypeError(
    `Cannot apply selectiveScan: ${name} must be [${channels}, ${state}] (time-invariant), ` +
      `[${batch}, ${state}, ${length}] (selective) or [${batch}, G, ${state}, ${length}] with G ` +
      `dividing ${channels} (grouped), got [${v.shape}]`,
  );
}

/**
 * Mamba's selective scan with the options of `selective_scan_ref(u, delta, A, B, C, D, z,
 * delta_bias, delta_softplus)`: u, delta [B, D, L], A [D, N], B and C as
 * {@linkcode broadcastBC} takes them. Returns out [B, D, L] and the last state [B, D, N].
 */
export function selectiveScan(
  u: Value,
  delta: Value,
  A: Value,
  B: Value,
  C: Value,
  opts: SelectiveScanOptions = {},
): { y: Value; lastState: Value } {
  const [batch, channels, length] = staticShape(u, "apply selectiveScan");
  const state = staticShape(A, "apply selectiveScan")[1];
  const dims = [batch, channels, length, state];
  let dt = opts.deltaBias ? add(delta, unsqueeze(opts.deltaBias, [1])) : delta;
  if (opts.deltaSoftplus) dt = softplus(dt);
  const [y, lastState] = selectiveScanNode(
    u,
    dt,
    A,
    broadcastBC("B", B, dims),
    broadcastBC("C", C, dims),
  );
  let out = opts.D ? add(y, mul(u, unsqueeze(opts.D, [1]))) : y;
  if (opts.z) out = mul(out, silu(opts.z));
  return { y: out, lastState };
}
