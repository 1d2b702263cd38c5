/**
 * Custom-domain ops and their portable definitions: each is a model-local ONNX function
 * (FunctionProto), which any ONNX Runtime inlines and runs. Native kernels may replace a
 * definition where the runtime can load them; the definition here stays the reference.
 * @module
 */
import type { AttrValue, FunctionData, NodeData } from "./proto.ts";

/** The ONNX domain of claimbench's own ops. */
export const CUSTOM_DOMAIN = "ai.claimbench";

/**
 * `Conv1dIm2col(X, W, B, Idx, Pads, ColsShape, OutShape) → (Y, Cols)`: a "same"-length 1-D
 * convolution in channel-last layout as im2col + MatMul (PLATFORM.md: the fastest form in ORT on
 * CPU). X [B, L, C_in]; W [k·C_in, C_out]; B [C_out]; Idx int64 [L, k], the window positions in X
 * padded by Pads (int64, `Pad` layout); ColsShape = [B·L, k·C_in]; OutShape = [B, L, C_out].
 * Cols, the im2col matrix, is an output so the weight gradient reuses it.
 *
 * It is one op, not a composition, so that its gradient can be a convolution too (see the rule
 * in `onnx/gradients.ts`): differentiating the composition would scatter the window gradient
 * back with a second, larger GEMM.
 */
export const CONV1D_IM2COL: FunctionData = {
  name: "Conv1dIm2col",
  domain: CUSTOM_DOMAIN,
  inputs: ["X", "W", "B", "Idx", "Pads", "ColsShape", "OutShape"],
  outputs: ["Y", "Cols"],
  opsets: { "": 21 },
  nodes: [
    {
      opType: "Pad",
      inputs: ["X", "Pads"],
      outputs: ["Xp"],
      attributes: { mode: { kind: "string", value: "constant" } },
    },
    {
      opType: "Gather",
      inputs: ["Xp", "Idx"],
      outputs: ["Win"],
      attributes: { axis: { kind: "int", value: 1 } },
    },
    { opType: "Reshape", inputs: ["Win", "ColsShape"], outputs: ["Cols"] },
    { opType: "MatMul", inputs: ["Cols", "W"], outputs: ["Lin"] },
    { opType: "Add", inputs: ["Lin", "B"], outputs: ["Biased"] },
    { opType: "Reshape", inputs: ["Biased", "OutShape"], outputs: ["Y"] },
  ],
};

const int64 = (...values: number[]): AttrValue => {
  const raw = new Uint8Array(8 * values.length);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
  return { kind: "tensor", value: { dtype: "int64", dims: [values.length], raw } };
};

const float32 = (...values: number[]): AttrValue => {
  const raw = new Uint8Array(Float32Array.from(values).buffer);
  return { kind: "tensor", value: { dtype: "float32", dims: [values.length], raw } };
};

const node = (
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes?: NodeData["attributes"],
): NodeData => ({ opType, inputs, outputs, attributes });
/**
 * Width = x's last dimension [1] and RowsShape = [-1, Width]: the shape that views x [..., C] as
 * rows [R, C], for the row sums of the gradient ops below.
 */
const rowsShape = (x: string): NodeData[] => [
  node("Constant", [], ["MinusOne"], { value: int64(-1) }),
  node("Shape", [x], ["Width"], { start: { kind: "int", value: -1 } }),
  node("Concat", ["MinusOne", "Width"], ["RowsShape"], { axis: { kind: "int", value: 0 } }),
];
const HEAD_MAJOR = { perm: { kind: "ints", value: [0, 2, 1, 3] } } as const;
const SWAP_LAST_2 = { perm: { kind: "ints", value: [0, 1, 3, 2] } } as const;

/**
 * From QKV [B, T, 3C] and Bias [H, T, T]: Q, K, V [B, H, T, hs] (QKV's columns are q | k | v,
 * each head-major), the weights P = softmax(Scale·Q·Kᵀ + Bias) [B, H, T, T], and the shapes
 * Merged = [B, T, −1] and Heads = [B, T, H, −1].
 */
const ATTENTION_WEIGHTS: readonly NodeData[] = [
  node("Shape", ["QKV"], ["BT"], { end: { kind: "int", value: 2 } }),
  node("Shape", ["Bias"], ["H"], { end: { kind: "int", value: 1 } }),
  node("Constant", [], ["Three"], { value: int64(3) }),
  node("Constant", [], ["Rest"], { value: int64(-1) }),
  node("Mul", ["H", "Three"], ["H3"]),
  node("Concat", ["BT", "H3", "Rest"], ["QkvHeads"], { axis: { kind: "int", value: 0 } }),
  node("Concat", ["BT", "H", "Rest"], ["Heads"], { axis: { kind: "int", value: 0 } }),
  node("Concat", ["BT", "Rest"], ["Merged"], { axis: { kind: "int", value: 0 } }),
  node("Reshape", ["QKV", "QkvHeads"], ["X4"]),
  node("Transpose", ["X4"], ["Xh"], HEAD_MAJOR),
  node("Split", ["Xh"], ["Q", "K", "V"], {
    axis: { kind: "int", value: 1 },
    num_outputs: { kind: "int", value: 3 },
  }),
  node("Mul", ["Q", "Scale"], ["Qs"]),
  node("Transpose", ["K"], ["Kt"], SWAP_LAST_2),
  node("MatMul", ["Qs", "Kt"], ["Scores"]),
  node("Add", ["Scores", "Bias"], ["Logits"]),
  node("Softmax", ["Logits"], ["P"], { axis: { kind: "int", value: -1 } }),
];

/**
 * `BiasAttention(QKV, Bias, Scale) → Y`: the attention of a transformer layer from its packed
 * projections, with an additive bias on the scores. QKV [B, T, 3C] holds q | k | v, each
 * head-major (C = H·hs); Bias [H, T, T] carries the causal mask and any position bias
 * (`onnx/attention_bias.ts`); Scale is a scalar. Per head, y = softmax(Scale·q·kᵀ + Bias[h])·v;
 * Y [B, T, C] holds the heads side by side.
 *
 * One op so that a native kernel (`native/claimbench_ops.cc`) can run each head inside the
 * cache, skip masked keys and read and write the packed layout directly; and so that its
 * gradient, {@linkcode BIAS_ATTENTION_GRAD}, can recompute the weights instead of keeping
 * [B, H, T, T] of them alive. This definition is the composition `onnx/attention.ts` emits
 * without the op.
 */
export const BIAS_ATTENTION: FunctionData = {
  name: "BiasAttention",
  domain: CUSTOM_DOMAIN,
  inputs: ["QKV", "Bias", "Scale"],
  outputs: ["Y"],
  opsets: { "": 21 },
  nodes: [
    ...ATTENTION_WEIGHTS,
    node("MatMul", ["P", "V"], ["Yh"]),
    node("Transpose", ["Yh"], ["Yt"], HEAD_MAJOR),
    node("Reshape", ["Yt", "Merged"], ["Y"]),
  ],
};

/**
 * `BiasAttentionGrad(dY, QKV, Bias, Scale) → dQKV`: the gradient of {@linkcode BIAS_ATTENTION}
 * with respect to QKV (Bias and Scale are constants). It recomputes the weights P (the same
 * bits as the forward pass), then per head dV = Pᵀ·dY, dS = P ⊙ (dP − Σ_keys dP ⊙ P) with
 * dP = dY·Vᵀ, dQ = (dS·K)·Scale, dK = ((Scale·Q)ᵀ·dS)ᵀ, packed as QKV is: node for node what
 * `onnx/autodiff.ts` emits for the composition, so that ONNX Runtime computes the same bits
 * from either.
 */
export const BIAS_ATTENTION_GRAD: FunctionData = {
  name: "BiasAttentionGrad",
  domain: CUSTOM_DOMAIN,
  inputs: ["dY", "QKV", "Bias", "Scale"],
  outputs: ["dQKV"],
  opsets: { "": 21 },
  nodes: [
    ...ATTENTION_WEIGHTS,
    node("Reshape", ["dY", "Heads"], ["dY4"]),
    node("Transpose", ["dY4"], ["dYh"], HEAD_MAJOR),
    node("Transpose", ["V"], ["Vt"], SWAP_LAST_2),
    node("MatMul", ["dYh", "Vt"], ["dP"]),
    node("Transpose", ["P"], ["Pt"], SWAP_LAST_2),
    node("MatMul", ["Pt", "dYh"], ["dV"]),
    node("Mul", ["dP", "P"], ["PdP"]),
    node("ReduceSum", ["PdP", "Rest"], ["RowSum"], { keepdims: { kind: "int", value: 1 } }),
    node("Sub", ["dP", "RowSum"], ["dPc"]),
    node("Mul", ["P", "dPc"], ["dS"]),
    node("Transpose", ["Kt"], ["Ktt"], SWAP_LAST_2),
    node("MatMul", ["dS", "Ktt"], ["dQs"]),
    node("Transpose", ["Qs"], ["Qst"], SWAP_LAST_2),
    node("MatMul", ["Qst", "dS"], ["dKt"]),
    node("Mul", ["dQs", "Scale"], ["dQ"]),
    node("Transpose", ["dKt"], ["dK"], SWAP_LAST_2),
    node("Concat", ["dQ", "dK", "dV"], ["dXh"], { axis: { kind: "int", value: 1 } }),
    node("Transpose", ["dXh"], ["dXt"], HEAD_MAJOR),
    node("Reshape", ["dXt", "Merged"], ["dQKV"]),
  ],
};

/**
 * `GeluGrad(dY, X) → dX`: the gradient of the exact (erf) GELU, dX = dY·(Φ(x) + x·φ(x)) with
 * Φ(x) = ½(1 + erf(x/√2)) and φ(x) = e^(−x²/2)/√(2π): node for node the composition the Gelu
 * rule of `onnx/gradients.ts` emitted before the op existed (constants as float32, cast to X's
 * type), so ONNX Runtime computes the same bits from either; a native kernel runs it in one
 * pass (`native/claimbench_ops.cc`).
 */
export const GELU_GRAD: FunctionData = {
  name: "GeluGrad",
  domain: CUSTOM_DOMAIN,
  inputs: ["dY", "X"],
  outputs: ["dX"],
  opsets: { "": 21 },
  nodes: [...geluSlope("X"), node("Mul", ["dY", "Slope"], ["dX"])],
};

/**
 * Slope = GELU'(x) = Φ(x) + x·φ(x) of the value named `x`, node for node (constants as float32,
 * cast to x's type).
 */
function geluSlope(x: string): NodeData[] {
  const like = (name: string, value: number): NodeData[] => [
    node("Constant", [], [`${name}F`], { value_float: { kind: "float", value } }),
    node("CastLike", [`${name}F`, x], [name]),
  ];
  return [
    ...like("InvSqrt2", Math.SQRT1_2),
    ...like("One", 1),
    ...like("Half", 0.5),
    ...like("MinusHalf", -0.5),
    ...like("InvSqrt2Pi", 1 / Math.sqrt(2 * Math.PI)),
    node("Mul", [x, "InvSqrt2"], ["Z"]),
    node("Erf", ["Z"], ["ErfZ"]),
    node("Add", ["ErfZ", "One"], ["ErfZ1"]),
    node("Mul", ["ErfZ1", "Half"], ["Cdf"]),
    node("Mul", [x, x], ["X2"]),
    node("Mul", ["X2", "MinusHalf"], ["E"]),
    node("Exp", ["E"], ["ExpE"]),
    node("Mul", ["ExpE", "InvSqrt2Pi"], ["Pdf"]),
    node("Mul", [x, "Pdf"], ["XPdf"]),
    node("Add", ["Cdf", "XPdf"], ["Slope"]),
  ];
}

/**
 * `BiasGelu(X, B) → (Y, Slope)`: a linear layer's bias and the exact GELU after it, T = X + B
 * (X [..., M], B [M]), Y = GELU(T) = ½·T·(1 + erf(T/√2)), and Slope = GELU'(T), the factor
 * its gradient multiplies dY by (computed here, where T's erf is at hand, rather than again in
 * the backward pass). The definition is Add then Gelu, as the models emitted before the op
 * existed, and the nodes of {@linkcode GELU_GRAD} but the last for Slope, so ONNX Runtime
 * computes the bits it did (dY·Slope is GeluGrad's dX); a native kernel does it in one pass.
 */
export const BIAS_GELU: FunctionData = {
  name: "BiasGelu",
  domain: CUSTOM_DOMAIN,
  inputs: ["X", "B"],
  outputs: ["Y", "Slope"],
  opsets: { "": 21 },
  nodes: [
    node("Add", ["X", "B"], ["T"]),
    node("Gelu", ["T"], ["Y"], { approximate: { kind: "string", value: "none" } }),
    ...geluSlope("T"),
  ],
};

/**
 * `LayerNormGrad(dY, X, Scale, Mean, InvStd) → (dX, dScale, dBias)`: the gradients of
 * LayerNormalization over the last axis, from the forward node's saved statistics:
 * x̂ = (x − μ)·r, g = dY·γ, dX = r·(g − mean(g) − x̂·mean(g·x̂)), and γ's and β's gradients
 * [C], the row sums of dY·x̂ and of dY. Node for node the composition the LayerNormalization
 * rule of `onnx/gradients.ts` emitted before the op existed (the row sums as products with a row
 * of ones), so ONNX Runtime computes the same bits from either; a native kernel runs it in one
 * pass over each row, adding the sums up per block of rows (`native/claimbench_ops.cc`).
 */
export const LAYER_NORM_GRAD: FunctionData = {
  name: "LayerNormGrad",
  domain: CUSTOM_DOMAIN,
  inputs: ["dY", "X", "Scale", "Mean", "InvStd"],
  outputs: ["dX", "dScale", "dBias"],
  opsets: { "": 21 },
  nodes: [
    node("Constant", [], ["LastAxis"], { value: int64(-1) }),
    node("Sub", ["X", "Mean"], ["Centred"]),
    node("Mul", ["Centred", "InvStd"], ["XHat"]),
    node("Mul", ["dY", "Scale"], ["G"]),
    node("ReduceMean", ["G", "LastAxis"], ["GMean"], { keepdims: { kind: "int", value: 1 } }),
    node("Mul", ["G", "XHat"], ["GX"]),
    node("ReduceMean", ["GX", "LastAxis"], ["GXMean"], { keepdims: { kind: "int", value: 1 } }),
    node("Sub", ["G", "GMean"], ["GC"]),
    node("Mul", ["XHat", "GXMean"], ["XGX"]),
    node("Sub", ["GC", "XGX"], ["Inner"]),
    node("Mul", ["Inner", "InvStd"], ["dX"]),
    node("Mul", ["dY", "XHat"], ["dYXHat"]),
    // Row sums as ones [1, rows]·v [rows, C] (ORT runs this MatMul faster than a ReduceSum).
    ...rowsShape("dY"),
    node("Reshape", ["dYXHat", "RowsShape"], ["dYXHatRows"]),
    node("Reshape", ["dY", "RowsShape"], ["dYRows"]),
    node("Shape", ["dYRows"], ["Rows"], {
      start: { kind: "int", value: 0 },
      end: { kind: "int", value: 1 },
    }),
    node("Constant", [], ["One"], { value: int64(1) }),
    node("Concat", ["One", "Rows"], ["OnesShape"], { axis: { kind: "int", value: 0 } }),
    node("ConstantOfShape", ["OnesShape"], ["Ones32"], { value: float32(1) }),
    node("CastLike", ["Ones32", "dY"], ["Ones"]),
    node("MatMul", ["Ones", "dYXHatRows"], ["ScaleSums"]),
    node("Reshape", ["ScaleSums", "Width"], ["dScale"]),
    node("MatMul", ["Ones", "dYRows"], ["BiasSums"]),
    node("Reshape", ["BiasSums", "Width"], ["dBias"]),
  ],
};

/**
 * `ColumnSums(X [R, C]) → Y [1, C]`: the sum of each column, `ReduceSum` over axis 0 with the
 * axis kept; the gradient of a bias broadcast over rows. ONNX Runtime's ReduceSum adds the rows
 * in order in float32, and the native kernel does the same, so both give the same bits; the
 * kernel spreads the columns over the pool (ORT's ReduceSum took ~0.2 ms a call here).
 */
export const COLUMN_SUMS: FunctionData = {
  name: "ColumnSums",
  domain: CUSTOM_DOMAIN,
  inputs: ["X"],
  outputs: ["Y"],
  opsets: { "": 21 },
  nodes: [
    node("Constant", [], ["Rows"], { value: int64(0) }),
    node("ReduceSum", ["X", "Rows"], ["Y"], { keepdims: { kind: "int", value: 1 } }),
  ],
};

const SWAP_2D = { perm: { kind: "ints", value: [1, 0] } } as const;

/**
 * `MatMulTransA(A [K, M], B [K, N]) → Y = Aᵀ·B [M, N]`: the weight gradient of a linear layer
 * (its input's rows against the output gradient's rows, summed over the batch). Node for node the
 * Transpose + MatMul the gradient rule emitted before the op existed, which ONNX Runtime fuses
 * into one FusedMatMul, so the portable engine computes the same bits. The native kernel reads
 * Aᵀ in place, without ORT's transposed copy, with its own rounding (one fused multiply-add per
 * term, summed over k in order).
 */
export const MATMUL_TRANS_A: FunctionData = {
  name: "MatMulTransA",
  domain: CUSTOM_DOMAIN,
  inputs: ["A", "B"],
  outputs: ["Y"],
  opsets: { "": 21 },
  nodes: [node("Transpose", ["A"], ["At"], SWAP_2D), node("MatMul", ["At", "B"], ["Y"])],
};

/**
 * `AdamW(P, M, V, G, Mask, ClipScale, LrWd, StepSize, Bc2Sqrt, Beta1, OneMinusBeta1, Beta2,
 * OneMinusBeta2, Eps) → (P1, M1, V1)`: one AdamW step on flat vectors [N] (the train step's
 * layout, `onnx/optim.ts`), the other inputs scalars: g = G·ClipScale, M1 = M·β1 + g·(1 − β1),
 * V1 = V·β2 + g²·(1 − β2), P1 = P·(1 − Mask·LrWd) − M1/(√V1/Bc2Sqrt + ε)·StepSize, Mask the 0/1
 * decay mask [N]. Node for node the update `buildTrainStep` emitted before the op existed
 * (with ClipScale 1 and Mask 0 where it clipped or decayed nothing: products with 1 change no
 * bit). Every step is one correctly rounded IEEE operation, so the native kernel, which does
 * them in this order in one pass, gives the same bits.
 */
export const ADAMW: FunctionData = {
  name: "AdamW",
  domain: CUSTOM_DOMAIN,
  inputs: [
    "P",
    "M",
    "V",
    "G",
    "Mask",
    "ClipScale",
    "LrWd",
    "StepSize",
    "Bc2Sqrt",
    "Beta1",
    "OneMinusBeta1",
    "Beta2",
    "OneMinusBeta2",
    "Eps",
  ],
  outputs: ["P1", "M1", "V1"],
  opsets: { "": 21 },
  nodes: [
    node("Constant", [], ["OneF"], { value_float: { kind: "float", value: 1 } }),
    node("CastLike", ["OneF", "P"], ["One"]),
    node("Mul", ["G", "ClipScale"], ["Gc"]),
    node("Mul", ["M", "Beta1"], ["Mb"]),
    node("Mul", ["Gc", "OneMinusBeta1"], ["Gb"]),
    node("Add", ["Mb", "Gb"], ["M1"]),
    node("Mul", ["V", "Beta2"], ["Vb"]),
    node("Mul", ["Gc", "Gc"], ["G2"]),
    node("Mul", ["G2", "OneMinusBeta2"], ["G2b"]),
    node("Add", ["Vb", "G2b"], ["V1"]),
    node("Mul", ["Mask", "LrWd"], ["Decay"]),
    node("Sub", ["One", "Decay"], ["Keep"]),
    node("Mul", ["P", "Keep"], ["Pd"]),
    node("Sqrt", ["V1"], ["Root"]),
    node("Div", ["Root", "Bc2Sqrt"], ["RootC"]),
    node("Add", ["RootC", "Eps"], ["Denom"]),
    node("Div", ["M1", "Denom"], ["Update"]),
    node("Mul", ["Update", "StepSize"], ["Step"]),
    node("Sub", ["Pd", "Step"], ["P1"]),
  ],
};

/** An int64 scalar (rank 0) attribute tensor. */
const int64Scalar = (value: number): AttrValue => {
  const raw = new Uint8Array(8);
  new DataView(raw.buffer).setBigInt64(0, BigInt(value), true);
  return { kind: "tensor", value: { dtype: "int64", dims: [], raw } };
};

/**
 * What both cross-entropy ops start from: LogP = LogSoftmax(Logits) over the last axis and
 * OneHot [..., V] = (Targets == class) in Logits' type, as `oneHot` in `onnx/ops.ts` builds it.
 */
const CROSS_ENTROPY_TERMS: readonly NodeData[] = [
  node("Constant", [], ["LastAxis"], { value: int64(-1) }),
  node("LogSoftmax", ["Logits"], ["LogP"], { axis: { kind: "int", value: -1 } }),
  node("Unsqueeze", ["Targets", "LastAxis"], ["Targets1"]),
  node("Shape", ["Logits"], ["VocabDim"], { start: { kind: "int", value: -1 } }),
  node("Squeeze", ["VocabDim"], ["Vocab"]),
  node("Constant", [], ["ZeroI"], { value: int64Scalar(0) }),
  node("Constant", [], ["OneI"], { value: int64Scalar(1) }),
  node("Range", ["ZeroI", "Vocab", "OneI"], ["Classes64"]),
  node("CastLike", ["Classes64", "Targets"], ["Classes"]),
  node("Equal", ["Targets1", "Classes"], ["Hit"]),
  node("CastLike", ["Hit", "Logits"], ["OneHot"]),
];

/**
 * `MaskedCrossEntropy(Logits [..., V], Targets [...], Mask [...]) → Loss []`: the mean negative
 * log-likelihood of the targets over the positions the mask weights, Σ Mask·(−log p_target) /
 * Σ Mask, with p = softmax(Logits) over the last axis. Targets are integers; one outside
 * [0, V) matches no class and adds 0. Node for node what `crossEntropy` in `onnx/nn.ts`
 * composed before the op existed, so ONNX Runtime computes the same bits from either; a native
 * kernel (`native/claimbench_ops.cc`) does each row in one pass.
 */
export const MASKED_CROSS_ENTROPY: FunctionData = {
  name: "MaskedCrossEntropy",
  domain: CUSTOM_DOMAIN,
  inputs: ["Logits", "Targets", "Mask"],
  outputs: ["Loss"],
  opsets: { "": 21 },
  nodes: [
    ...CROSS_ENTROPY_TERMS,
    node("Mul", ["LogP", "OneHot"], ["TargetLogP"]),
    node("ReduceSum", ["TargetLogP", "LastAxis"], ["RowLogP"], {
      keepdims: { kind: "int", value: 0 },
    }),
    node("Neg", ["RowLogP"], ["Nll"]),
    node("Mul", ["Nll", "Mask"], ["Weighted"]),
    node("ReduceSum", ["Weighted"], ["Total"], { keepdims: { kind: "int", value: 0 } }),
    node("ReduceSum", ["Mask"], ["Count"], { keepdims: { kind: "int", value: 0 } }),
    node("Div", ["Total", "Count"], ["Loss"]),
  ],
};

/**
 * `MaskedCrossEntropyGrad(dLoss, Logits, Targets, Mask) → dLogits`: the gradient of
 * {@linkcode MASKED_CROSS_ENTROPY} with respect to Logits, dLoss·Mask/ΣMask·(p − OneHot) per
 * position: node for node what `onnx/autodiff.ts` emits for the composition (with the forward
 * values it uses recomputed), so ONNX Runtime computes the same bits from either.
 */
export const MASKED_CROSS_ENTROPY_GRAD: FunctionData = {
  name: "MaskedCrossEntropyGrad",
  domain: CUSTOM_DOMAIN,
  inputs: ["dLoss", "Logits", "Targets", "Mask"],
  outputs: ["dLogits"],
  opsets: { "": 21 },
  nodes: [
    ...CROSS_ENTROPY_TERMS,
    node("ReduceSum", ["Mask"], ["Count"], { keepdims: { kind: "int", value: 0 } }),
    node("Div", ["dLoss", "Count"], ["dTotal"]),
    node("Shape", ["Mask"], ["MaskShape"]),
    node("Shape", ["MaskShape"], ["MaskRank"]),
    node("ConstantOfShape", ["MaskRank"], ["Ones"], { value: int64(1) }),
    node("Reshape", ["dTotal", "Ones"], ["dTotal1"]),
    node("Expand", ["dTotal1", "MaskShape"], ["dWeighted"]),
    node("Mul", ["dWeighted", "Mask"], ["dNll"]),
    node("Neg", ["dNll"], ["dRowLogP"]),
    node("Constant", [], ["OneVec"], { value: int64(1) }),
    node("Concat", ["MaskShape", "OneVec"], ["RowShape"], { axis: { kind: "int", value: 0 } }),
    node("Reshape", ["dRowLogP", "RowShape"], ["dRowLogP1"]),
    node("Shape", ["Logits"], ["LogitsShape"]),
    node("Expand", ["dRowLogP1", "LogitsShape"], ["dTargetLogP"]),
    node("Mul", ["dTargetLogP", "OneHot"], ["dLogP"]),
    node("Exp", ["LogP"], ["P"]),
    node("ReduceSum", ["dLogP", "LastAxis"], ["dLogPSum"], { keepdims: { kind: "int", value: 1 } }),
    node("Mul", ["P", "dLogPSum"], ["PSum"]),
    node("Sub", ["dLogP", "PSum"], ["dLogits"]),
  ],
};

/**
 * `BiasResidual(X, Y, B) → X + (Y + B)`: a residual connection around a linear layer, with the
 * layer's bias B [C] added to its product Y [..., C] first; X [..., C]. Its definition is the
 * two Adds the models emitted before the op existed, and the native kernel does both in one
 * pass with the same two roundings, so both give the same bits.
 */
export const BIAS_RESIDUAL: FunctionData = {
  name: "BiasResidual",
  domain: CUSTOM_DOMAIN,
  inputs: ["X", "Y", "B"],
  outputs: ["Z"],
  opsets: { "": 21 },
  nodes: [node("Add", ["Y", "B"], ["Biased"]), node("Add", ["X", "Biased"], ["Z"])],
};

/**
 * `BiasGeluGrad(dY, Slope) → (dX, dB)`: the gradients of {@linkcode BIAS_GELU} from its Slope:
 * dX = dY·Slope [..., M], and the bias's dB [M], dX summed over every leading axis. Node for node
 * what the gradient rule and the driver's bias sum (`ColumnSums`, i.e. ReduceSum over the rows)
 * emitted before the op existed, so ONNX Runtime computes the same bits; the native kernel does
 * the product and the sums in one pass, with the same roundings.
 */
export const BIAS_GELU_GRAD: FunctionData = {
  name: "BiasGeluGrad",
  domain: CUSTOM_DOMAIN,
  inputs: ["dY", "Slope"],
  outputs: ["dX", "dB"],
  opsets: { "": 21 },
  nodes: [
    node("Mul", ["dY", "Slope"], ["dX"]),
    ...rowsShape("dX"),
    node("Reshape", ["dX", "RowsShape"], ["Rows"]),
    node("Constant", [], ["Axis0"], { value: int64(0) }),
    node("ReduceSum", ["Rows", "Axis0"], ["Sums"], { keepdims: { kind: "int", value: 1 } }),
    node("Reshape", ["Sums", "Width"], ["dB"]),
  ],
};

/**
 * `SumOfSquares(G) → S`: Σ g² over a flat vector G [N] that holds several tensors one after
 * another (`sizes` elements each, e.g. a train step's gradients), as the sum over the tensors, in
 * order, of each one's ReduceSum of its squares: node for node how the train step summed its
 * gradients' squares for the clipping norm before the op existed, so ONNX Runtime computes the
 * same bits (a tensor's ReduceSum over all its axes equals that of its flat copy here). The
 * definition depends on `sizes`, so each graph carries its own; the native kernel sums G in one
 * pass.
 */
export function sumOfSquaresFunction(sizes: readonly number[]): FunctionData {
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError(
      `Cannot define SumOfSquares as sizes must be positive integers: current value is [${sizes}]`,
    );
  }
  const parts = sizes.map((_, i) => `P${i}`);
  const nodes: NodeData[] = [
    node("Constant", [], ["Sizes"], { value: int64(...sizes) }),
    node("Constant", [], ["Axis0"], { value: int64(0) }),
    sizes.length > 1
      ? node("Split", ["G", "Sizes"], parts, { axis: { kind: "int", value: 0 } })
      : node("Identity", ["G"], ["P0"]),
  ];
  parts.forEach((p, i) => {
    nodes.push(node("Mul", [p, p], [`Q${i}`]));
    nodes.push(
      node("ReduceSum", [`Q${i}`, "Axis0"], [`S${i}`], { keepdims: { kind: "int", value: 0 } }),
    );
  });
  let total = "S0";
  for (let i = 1; i < sizes.length; i++) {
    const next = i === sizes.length - 1 ? "S" : `A${i}`;
    nodes.push(node("Add", [total, `S${i}`], [next]));
    total = next;
  }
  if (sizes.length === 1) nodes.push(node("Identity", ["S0"], ["S"]));
  return {
    name: "SumOfSquares",
    domain: CUSTOM_DOMAIN,
    inputs: ["G"],
    outputs: ["S"],
    opsets: { "": 21 },
    nodes,
  };
}

/**
 * `RowLayerNorm(X, Scale, B) → (Y, Mean, InvStd)`: LayerNormalization over the last axis with
 * ε = 1e-5, the transformer's: its definition is that one standard node (so ORT runs the bits
 * it always did), and the native kernel normalises each row in one pass.
 */
export const ROW_LAYER_NORM: FunctionData = {
  name: "RowLayerNorm",
  domain: CUSTOM_DOMAIN,
  inputs: ["X", "Scale", "B"],
  outputs: ["Y", "Mean", "InvStd"],
  opsets: { "": 21 },
  nodes: [
    node("LayerNormalization", ["X", "Scale", "B"], ["Y", "Mean", "InvStd"], {
      axis: { kind: "int", value: -1 },
      epsilon: { kind: "float", value: 1e-5 },
    }),
  ],
};
