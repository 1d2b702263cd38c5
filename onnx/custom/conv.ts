/**
 * The convolution family. `Conv1dIm2col`, the dilated CNN's "same"-length 1-D convolution in
 * channel-last layout as im2col + MatMul (`PLATFORM.md`: the fastest form in ORT on CPU). One op,
 * not a composition, so that its gradient can be a convolution too: differentiating the
 * composition would scatter the window gradient back with a second, larger GEMM. No native
 * kernel: its definition is what runs on every engine. `CausalDepthwiseConv1d` and its
 * gradient, Mamba's short causal convolution; native kernels: `native/kernels/conv.cc`.
 * @module
 */
import { staticShape, type Value } from "../graph.ts";
import {
  add,
  gather,
  matMul,
  mul,
  pad,
  padTo,
  reduceSum,
  reshape,
  reshapeTo,
  slice,
  transpose,
  unsqueeze,
} from "../ops.ts";
import {
  type CustomOp,
  emitCustomOp,
  nodeInputs,
  secondOrder,
  traceFunction,
  traceInputs,
} from "./kit.ts";

/** Options of {@linkcode conv1dIm2col}. */
export interface Conv1dOptions {
  kernel: number;
  dilation?: number;
}

/**
 * The im2col gather index of a "same"-padded 1-D convolution: idx[t][j] = t + j·dilation,
 * positions in the input padded by (kernel−1)/2·dilation on each side. Shape [length, kernel].
 */
export function im2colIndex(length: number, kernel: number, dilation: number): BigInt64Array {
  const idx = new BigInt64Array(length * kernel);
  for (let t = 0; t < length; t++) {
    for (let j = 0; j < kernel; j++) idx[t * kernel + j] = BigInt(t + j * dilation);
  }
  return idx;
}

/**
 * `Conv1dIm2col(X, W, B, Idx, Pads, ColsShape, OutShape) → (Y, Cols)`: X [B, L, C_in]; W
 * [k·C_in, C_out]; B [C_out]; Idx int64 [L, k], the window positions in X padded by Pads (int64,
 * `Pad` layout); ColsShape = [B·L, k·C_in]; OutShape = [B, L, C_out]. Cols, the im2col matrix,
 * is an output so the weight gradient reuses it. The layer's kernel and dilation are inputs (not
 * constants of the definition), so every layer shares one definition.
 */
export const CONV1D_IM2COL: CustomOp<"Conv1dIm2col"> = {
  name: "Conv1dIm2col",
  inputs: ["X", "W", "B", "Idx", "Pads", "ColsShape", "OutShape"],
  outputs: ["Y", "Cols"],
  // y = conv(x, W) + b. dx is the convolution of dy with the kernel flipped in time and
  // transposed in channels (same dilation and padding): W'[j·C_out + o, i] = W[(k−1−j)·C_in + i, o].
  // dW = colsᵀ·dy reuses the forward im2col matrix; db = Σ dy.
  gradient: ({ node, dy, dys, needs }) => {
    if (dys[1]) throw new TypeError("Cannot differentiate through Conv1dIm2col's Cols output");
    const [x, w] = node.inputs as Value[];
    const k = node.attrs.kernel as number;
    const dilation = node.attrs.dilation as number;
    const [, cin] = staticShape(x, "differentiate Conv1dIm2col").slice(1);
    const [batch, length, cout] = staticShape(dy, "differentiate Conv1dIm2col");
    let dx: Value | null = null;
    if (needs[0]) {
      const g = w.graph;
      const reversed = g.constant(
        Array.from({ length: k }, (_, j) => k - 1 - j),
        [k],
        "int64",
      );
      const taps = gather(reshape(w, [k, cin, cout]), reversed, { axis: 0 }); // [k, C_in, C_out]
      const flipped = reshape(transpose(taps, [0, 2, 1]), [k * cout, cin]);
      dx = conv1dIm2col(dy, flipped, g.scalar(0, dy.dtype), { kernel: k, dilation })[0];
    }
    const dy2 = needs[1] || needs[2] ? reshape(dy, [batch * length, cout]) : null;
    return [
      dx,
      needs[1] ? matMul(transpose(node.outputs[1]), dy2!) : null,
      needs[2] ? reduceSum(dy2!, [0]) : null,
      null,
      null,
      null,
      null,
    ];
  },
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [2, 7, 3] }, { shape: [3 * 3, 2] }, { shape: [2] }],
    build: ([x, w, b]) => conv1dIm2col(x, w, b, { kernel: 3, dilation: 2 })[0],
  }],
};

/**
 * A "same"-length 1-D convolution in channel-last layout: x [B, L, C_in]; w [kernel·C_in, C_out]
 * with w[j·C_in + i, o] = W_torch[o, i, j]; b [C_out] → [B, L, C_out]. Returns the output and
 * the im2col matrix [B·L, kernel·C_in].
 */
export function conv1dIm2col(x: Value, w: Value, b: Value, opts: Conv1dOptions): [Value, Value] {
  const [batch, length, cin] = staticShape(x, "convolve");
  const [rows, cout] = staticShape(w, "convolve");
  const k = opts.kernel;
  const d = opts.dilation ?? 1;
  if (!Number.isInteger(k) || k < 1 || k % 2 !== 1) {
    throw new RangeError(
      `Cannot convolve to the same length with kernel ${k}: an odd size is needed`,
    );
  }
  if (rows !== k * cin) {
    throw new TypeError(
      `Cannot convolve [${x.shape}] with weight [${w.shape}]: ${k}·${cin} rows needed`,
    );
  }
  const p = ((k - 1) / 2) * d;
  const g = x.graph;
  const inputs = [
    x,
    w,
    b,
    g.constant(im2colIndex(length, k, d), [length, k], "int64"),
    g.ints([0, p, 0, 0, p, 0]),
    g.ints([batch * length, k * cin]),
    g.ints([batch, length, cout]),
  ];
  const definition = traceFunction(
    CONV1D_IM2COL.name,
    traceInputs(CONV1D_IM2COL, inputs, [
      ["B", "L", "Cin"],
      ["kCin", "Cout"],
      b.shape.length === 0 ? [] : ["Cout"],
      ["L", "k"],
      [6],
      [2],
      [3],
    ]),
    CONV1D_IM2COL.outputs,
    ([X, W, B, Idx, Pads, ColsShape, OutShape]) => {
      const windows = gather(padTo(X, Pads, ["B", "Lp", "Cin"]), Idx, { axis: 1 }); // [B, L, k, Cin]
      const cols = reshapeTo(windows, ColsShape, ["BL", "kCin"]);
      const y = reshapeTo(add(matMul(cols, W), B), OutShape, ["B", "L", "Cout"]);
      return [y, cols];
    },
  );
  const [y, cols] = emitCustomOp(
    CONV1D_IM2COL,
    definition,
    inputs,
    [{ dtype: x.dtype, shape: [batch, length, cout] }, {
      dtype: x.dtype,
      shape: [batch * length, k * cin],
    }],
    { kernel: k, dilation: d },
  );
  return [y, cols];
}

/**
 * `CausalDepthwiseConv1d(X [B, L, C], W [k, C], Bias [C]) → Y [B, L, C]`: Mamba's `conv1d`
 * (groups = channels, padding k − 1, truncated to L) in channel-last layout, y[t, c] = bias[c] +
 * Σ_j W[j, c]·x[t − (k − 1) + j, c] (zero before 0), W[j, c] = W_torch[c, 0, j]. Defined as k
 * shifted products (Pad, Slice, Mul, Add: cheaper than an im2col GEMM at Mamba's k = 4), the
 * composition the Mamba layer used before the op; the native kernels take its float32 operations
 * in order, so they have its bits, and skip the padded copies, the slices and the k products
 * that each went through memory.
 */
export const CAUSAL_DEPTHWISE_CONV1D: CustomOp<"CausalDepthwiseConv1d"> = {
  name: "CausalDepthwiseConv1d",
  inputs: ["X", "W", "Bias"],
  outputs: ["Y"],
  // dBias is dY, which autodiff's unbroadcast sums over the rows (ColumnSums), as it did for the
  // composition's Add.
  gradient: (args) => {
    const [x, w] = nodeInputs(args);
    const { dy, needs } = args;
    const [dx, dw] = needs[0] || needs[1] ? causalDepthwiseConv1dGrad(dy, x, w) : [null, null];
    return [needs[0] ? dx : null, needs[1] ? dw : null, needs[2] ? dy : null];
  },
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [2, 5, 3] }, { shape: [4, 3] }, { shape: [3] }],
    build: ([x, w, b]) => causalDepthwiseConv1d(x, w, b),
  }],
  // 37 channels: whole vectors and a tail at every width.
  kernel: {
    inputs: [{ shape: [3, 11, 37] }, { shape: [4, 37] }, { shape: [37] }],
    build: ([x, w, b]) => [causalDepthwiseConv1d(x, w, b)],
    agreement: "bits",
  },
};

/** `dX`, `dW` of {@linkcode CAUSAL_DEPTHWISE_CONV1D} (see there). */
export const CAUSAL_DEPTHWISE_CONV1D_GRAD: CustomOp<"CausalDepthwiseConv1dGrad"> = {
  name: "CausalDepthwiseConv1dGrad",
  inputs: ["dY", "X", "W"],
  outputs: ["dX", "dW"],
  gradient: secondOrder("CausalDepthwiseConv1dGrad"),
  // Checked as CausalDepthwiseConv1d's rule, which emits it.
  gradCheck: "not differentiable",
  kernel: {
    inputs: [{ shape: [3, 11, 37] }, { shape: [3, 11, 37] }, { shape: [4, 37] }],
    build: ([dy, x, w]) => causalDepthwiseConv1dGrad(dy, x, w),
    agreement: "bits",
  },
};

/** The end of tap j's window in X padded by k − 1 in front: past the end, as a negative index. */
function windowEnd(j: number, taps: number): number {
  return j < taps - 1 ? j - (taps - 1) : Number.MAX_SAFE_INTEGER;
}

/** Checks x [B, L, C] and w [k, C]; returns k. */
function convTaps(x: Value, w: Value, why: string): number {
  const xs = staticShape(x, why);
  const ws = staticShape(w, why);
  if (xs.length !== 3 || ws.length !== 2 || ws[1] !== xs[2] || ws[0] < 1 || ws[0] > 16) {
    throw new TypeError(
      `Cannot ${why} [${x.shape}] with weight [${w.shape}]: x must be [B, L, C] and the ` +
        `weight [k, ${xs[xs.length - 1]}] with 1 ≤ k ≤ 16`,
    );
  }
  return ws[0];
}

/**
 * A causal depthwise 1-D convolution in channel-last layout, as Mamba's `conv1d`: x [B, L, C],
 * w [k, C], b [C] → [B, L, C] ({@linkcode CAUSAL_DEPTHWISE_CONV1D}).
 */
export function causalDepthwiseConv1d(x: Value, w: Value, b: Value): Value {
  const taps = convTaps(x, w, "convolve causally");
  if (b.shape.length !== 1 || b.shape[0] !== x.shape[2]) {
    throw new TypeError(
      `Cannot convolve [${x.shape}] causally with bias [${b.shape}]: [${x.shape[2]}] needed`,
    );
  }
  // Traced at the values' shapes; the body depends on k alone (the windows end at negative
  // indices), so every use with the same k shares it.
  const definition = traceFunction(
    CAUSAL_DEPTHWISE_CONV1D.name,
    traceInputs(CAUSAL_DEPTHWISE_CONV1D, [x, w, b], [x.shape, w.shape, b.shape]),
    CAUSAL_DEPTHWISE_CONV1D.outputs,
    ([X, W, Bias]) => {
      const padded = pad(X, [0, taps - 1, 0, 0, 0, 0]); // [B, L + k − 1, C]
      let y = Bias;
      for (let j = 0; j < taps; j++) {
        const window = slice(padded, [j], [windowEnd(j, taps)], [1]); // [B, L, C]
        y = add(y, mul(window, slice(W, [j], [j + 1], [0])));
      }
      return [y];
    },
  );
  return emitCustomOp(CAUSAL_DEPTHWISE_CONV1D, definition, [x, w, b], [{
    dtype: x.dtype,
    shape: x.shape,
  }])[0];
}

/**
 * The gradients dX [B, L, C] and dW [k, C] of {@linkcode causalDepthwiseConv1d} for dY, x, w:
 * its composition's autodiff written out, in the order autodiff emits it (last tap first), so
 * that a model trained before the op had its bits.
 */
export function causalDepthwiseConv1dGrad(dy: Value, x: Value, w: Value): [Value, Value] {
  const taps = convTaps(x, w, "differentiate a causal convolution of");
  const definition = traceFunction(
    CAUSAL_DEPTHWISE_CONV1D_GRAD.name,
    traceInputs(CAUSAL_DEPTHWISE_CONV1D_GRAD, [dy, x, w], [dy.shape, x.shape, w.shape]),
    CAUSAL_DEPTHWISE_CONV1D_GRAD.outputs,
    ([dY, X, W]) => {
      const padded = pad(X, [0, taps - 1, 0, 0, 0, 0]); // [B, L + k − 1, C]
      let dPadded: Value | undefined;
      let dW: Value | undefined;
      for (let j = taps - 1; j >= 0; j--) {
        // Tap j's weight row: the rows' sum of dY·window (ColumnSums' definition), padded to [k, C].
        const window = slice(padded, [j], [windowEnd(j, taps)], [1]);
        const row = unsqueeze(reduceSum(mul(dY, window), [0, 1]), [0]); // [1, C]
        const dRow = pad(row, [j, 0, taps - 1 - j, 0]);
        dW = dW ? add(dW, dRow) : dRow;
        // Its window: dY·w_j, padded back to the padded input's positions.
        const dWindow = pad(mul(dY, slice(W, [j], [j + 1], [0])), [0, j, 0, 0, taps - 1 - j, 0]);
        dPadded = dPadded ? add(dPadded, dWindow) : dWindow;
      }
      return [slice(dPadded!, [taps - 1], [Number.MAX_SAFE_INTEGER], [1]), dW!];
    },
  );
  const [dx, dw] = emitCustomOp(CAUSAL_DEPTHWISE_CONV1D_GRAD, definition, [dy, x, w], [
    { dtype: x.dtype, shape: x.shape },
    { dtype: w.dtype, shape: w.shape },
  ]);
  return [dx, dw];
}
