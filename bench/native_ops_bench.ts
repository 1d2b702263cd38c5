/**
 * Native custom ops (`native/kernels/`) against their standard-op compositions, both run
 * through {@linkcode NativeSession} on 2 threads so that only the graph differs:
 *
 * - GeluGrad(dY, X) vs the erf-GELU derivative from Mul/Erf/Add/Exp at [3072, 256];
 * - BiasAttention(QKV, Bias, Scale) and BiasAttentionGrad vs their ONNX definitions (the same
 *   graph in a session without the library), in the bench transformer's attention: B 32, T 96,
 *   4 heads of 16 dims, Hard-ALiBi windows 1 and 2 and two causal (NoPE) heads;
 * - LayerNormGrad and RowLayerNorm vs their ONNX definitions at [3072, 64] (a transformer
 *   block's LayerNorm);
 * - ColumnSums vs its definition (ReduceSum over rows) at [3072, 256] (fc1's bias gradient);
 * - AdamW vs its definition on the bench transformer's 103,936 parameters;
 * - BatchTranspose vs its definition (Transpose, perm [0, 2, 1]) at [128, 79, 128], the phone
 *   book's Mamba layer turning [batch, length, channels] into the scan's [batch, channels, length].
 *
 * Inputs are passed zero-copy and outputs written into preallocated arrays, so an iteration is
 * the op plus the FFI call (~10 µs). 200 iterations each: every session's ORT pool spins for a
 * while after its runs, which slows the next benchmark's first iterations.
 *
 * `deno bench --allow-read --allow-write --allow-run --allow-ffi --allow-env --allow-sys
 *   bench/native_ops_bench.ts`
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { buildNativeOps } from "../native/build.ts";
import { headBias } from "../onnx/attention.ts";
import { hardAlibiBias } from "../onnx/attention_bias.ts";
import { CUSTOM_DOMAIN } from "../onnx/custom/kit.ts";
import { Graph, type Value } from "../onnx/graph.ts";
import { NativeSession, type NativeTensor } from "../onnx/native_session.ts";
import { mul } from "../onnx/ops.ts";
import { biasAttention, biasAttentionGrad } from "../onnx/custom/attention.ts";
import { layerNormGrad, rowLayerNorm } from "../onnx/custom/layer_norm.ts";
import { columnSums } from "../onnx/custom/linear.ts";
import { geluSlope } from "../onnx/custom/gelu.ts";
import { adamW } from "../onnx/custom/optim.ts";
import { batchTranspose } from "../onnx/custom/transpose.ts";

const THREADS = 2;
const GELU = [3072, 256];

const lib = await buildNativeOps();
const prng = new Prng(2024);

function normal(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => prng.normal());
}

/** A two-input, one-output graph `y = body(a, b)`. */
function model(
  name: string,
  aShape: number[],
  bShape: number[],
  body: (a: Value, b: Value) => Value,
): Uint8Array {
  const g = new Graph(name);
  g.output(body(g.input("a", "float32", aShape), g.input("b", "float32", bShape)), "y");
  return g.toModel();
}

function native(op: string, shape: number[]): (a: Value, b: Value) => Value {
  return (a, b) => a.graph.node(op, [a, b], [{ dtype: "float32", shape }], {}, CUSTOM_DOMAIN)[0];
}

function session(bytes: Uint8Array, libraries = [lib]): NativeSession {
  return NativeSession.create(bytes, { threads: THREADS, customOpLibraries: libraries });
}

const gx: NativeTensor = { data: normal(GELU[0] * GELU[1]), dims: GELU };
const gdy: NativeTensor = { data: normal(GELU[0] * GELU[1]), dims: GELU };
const geluGrad = {
  native: session(model("gelu_grad", GELU, GELU, native("GeluGrad", GELU))),
  composed: session(model("gelu_grad", GELU, GELU, (g, v) => mul(g, geluSlope(v)))),
};

const cases = [
  ["GeluGrad [3072,256]", geluGrad, { a: gdy, b: gx }],
] as const;

const sessions: NativeSession[] = [];

/** Benchmarks `native` against `baseline` (named `what`), both writing output y into `into`. */
function compare(
  group: string,
  what: string,
  baseline: NativeSession,
  native: NativeSession,
  feeds: Record<string, NativeTensor>,
  into: Record<string, NativeTensor>,
): void {
  sessions.push(baseline, native);
  for (const [name, s] of [[what, baseline], ["native", native]] as const) {
    Deno.bench({
      name: `${group}: ${name}`,
      group,
      baseline: s === baseline,
      n: 200,
      warmup: 20,
      fn: () => {
        s.run(feeds, ["y"], into);
      },
    });
  }
}

/**
 * Benchmarks a model of custom ops run by the native kernels against the same model without the
 * library, where ORT inlines the ops' ONNX definitions.
 */
function compareWithDefinition(
  group: string,
  model: Uint8Array,
  feeds: Record<string, NativeTensor>,
  into: Record<string, NativeTensor>,
): void {
  compare(group, "ONNX definition", session(model, []), session(model), feeds, into);
}

for (const [group, s, feeds] of cases) {
  const into = { y: { data: new Float32Array(feeds.a.data.length), dims: feeds.a.dims } };
  compare(group, "standard-op composition", s.composed, s.native, feeds, into);
}

globalThis.addEventListener("unload", () => {
  for (const s of sessions) s.close();
});

// Attention: the same model with and without the library (without it ORT inlines the ONNX
// definition: the composition the models used before the op).
const [AB, AH, AT, HS] = [32, 4, 96, 16];
const AC = AH * HS;
function attentionModel(grad: boolean): Uint8Array {
  const g = new Graph(grad ? "bias_attention_grad" : "bias_attention");
  const qkv = g.input("qkv", "float32", [AB, AT, 3 * AC]);
  const bias = headBias(g, [1, 2, null, null].map((m) => hardAlibiBias(AT, m)), AT);
  if (grad) {
    const dy = g.input("dy", "float32", [AB, AT, AC]);
    g.output(biasAttentionGrad(dy, qkv, bias, g.scalar(1 / Math.sqrt(HS), "float32")), "y");
  } else {
    g.output(biasAttention(qkv, bias, 1 / Math.sqrt(HS)), "y");
  }
  return g.toModel();
}
const qkv: NativeTensor = { data: normal(AB * AT * 3 * AC), dims: [AB, AT, 3 * AC] };
const ady: NativeTensor = { data: normal(AB * AT * AC), dims: [AB, AT, AC] };
for (const grad of [false, true]) {
  const group = grad ? "BiasAttentionGrad [32,96,192]" : "BiasAttention [32,96,192]";
  const feeds: Record<string, NativeTensor> = grad ? { qkv, dy: ady } : { qkv };
  const out = grad ? qkv.dims : ady.dims;
  const into = { y: { data: new Float32Array(out.reduce((a, b) => a * b, 1)), dims: out } };
  compareWithDefinition(
    group,
    attentionModel(grad),
    feeds,
    into,
  );
}

// LayerNormGrad at the transformer's [B·T, C], with and without the library.
const [LR, LC] = [3072, 64];
function layerNormModel(): Uint8Array {
  const g = new Graph("layer_norm_grad");
  const v = (n: string, shape: number[]) => g.input(n, "float32", shape);
  const [dx] = layerNormGrad(
    v("dy", [LR, LC]),
    v("x", [LR, LC]),
    v("scale", [LC]),
    v("mean", [LR, 1]),
    v("invStd", [LR, 1]),
  );
  g.output(dx, "y");
  return g.toModel();
}
const lnFeeds: Record<string, NativeTensor> = {
  dy: { data: normal(LR * LC), dims: [LR, LC] },
  x: { data: normal(LR * LC), dims: [LR, LC] },
  scale: { data: normal(LC), dims: [LC] },
  mean: { data: normal(LR).map((m) => 0.1 * m), dims: [LR, 1] },
  invStd: { data: normal(LR).map((r) => 1 + 0.1 * Math.abs(r)), dims: [LR, 1] },
};
compareWithDefinition(
  "LayerNormGrad [3072,64]",
  layerNormModel(),
  lnFeeds,
  { y: { data: new Float32Array(LR * LC), dims: [LR, LC] } },
);

// RowLayerNorm (the forward) at the same shape.
function rowLayerNormModel(): Uint8Array {
  const g = new Graph("row_layer_norm");
  const v = (n: string, shape: number[]) => g.input(n, "float32", shape);
  g.output(rowLayerNorm(v("x", [LR, LC]), v("scale", [LC]), v("bias", [LC])), "y");
  return g.toModel();
}
compareWithDefinition(
  "RowLayerNorm [3072,64]",
  rowLayerNormModel(),
  { x: lnFeeds.x, scale: lnFeeds.scale, bias: { data: normal(LC), dims: [LC] } },
  { y: { data: new Float32Array(LR * LC), dims: [LR, LC] } },
);

// ColumnSums at fc1's bias gradient, [B·T, 4C].
function columnSumsModel(): Uint8Array {
  const g = new Graph("column_sums");
  g.output(columnSums(g.input("x", "float32", GELU)), "y");
  return g.toModel();
}
compareWithDefinition(
  "ColumnSums [3072,256]",
  columnSumsModel(),
  { x: gx },
  { y: { data: new Float32Array(GELU[1]), dims: [1, GELU[1]] } },
);

// AdamW on the bench transformer's parameter count.
const NP = 103_936;
function adamWModel(): Uint8Array {
  const g = new Graph("adamw");
  const vec = (n: string) => g.input(n, "float32", [NP]);
  const sc = (n: string) => g.input(n, "float32", []);
  const [p1] = adamW(vec("p"), vec("m"), vec("v"), vec("g"), vec("mask"), {
    clipScale: sc("clip"),
    lrWd: sc("lrWd"),
    stepSize: sc("stepSize"),
    bc2Sqrt: sc("bc2Sqrt"),
    beta1: g.scalar(0.9),
    oneMinusBeta1: g.scalar(1 - 0.9),
    beta2: g.scalar(0.999),
    oneMinusBeta2: g.scalar(1 - 0.999),
    eps: g.scalar(1e-8),
  });
  g.output(p1, "y");
  return g.toModel();
}
const one = (v: number): NativeTensor => ({ data: Float32Array.of(v), dims: [] });
compareWithDefinition(
  "AdamW [103936]",
  adamWModel(),
  {
    p: { data: normal(NP), dims: [NP] },
    m: { data: normal(NP).map((v) => 1e-3 * v), dims: [NP] },
    v: { data: normal(NP).map((v) => 1e-6 * v * v), dims: [NP] },
    g: { data: normal(NP).map((v) => 0.1 * v), dims: [NP] },
    mask: { data: new Float32Array(NP).fill(1), dims: [NP] },
    clip: one(0.5),
    lrWd: one(3e-4),
    stepSize: one(3e-3),
    bc2Sqrt: one(0.1),
  },
  { y: { data: new Float32Array(NP), dims: [NP] } },
);

// BatchTranspose at the phone book's Mamba layer: [B, L, channels] → [B, channels, L].
const TRANSPOSE = [128, 79, 128];
function batchTransposeModel(): Uint8Array {
  const g = new Graph("batch_transpose");
  g.output(batchTranspose(g.input("x", "float32", TRANSPOSE)), "y");
  return g.toModel();
}
compareWithDefinition(
  "BatchTranspose [128,79,128]",
  batchTransposeModel(),
  { x: { data: normal(TRANSPOSE[0] * TRANSPOSE[1] * TRANSPOSE[2]), dims: TRANSPOSE } },
  {
    y: {
      data: new Float32Array(TRANSPOSE[0] * TRANSPOSE[1] * TRANSPOSE[2]),
      dims: [TRANSPOSE[0], TRANSPOSE[2], TRANSPOSE[1]],
    },
  },
);
