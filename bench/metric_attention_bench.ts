/**
 * MetricAttention beside the standard attention it would replace, forward + backward, at the
 * issue's shapes (B 32, H 4, K 16 dims per head, T 96 and 512, causal), on both engines, run
 * through {@linkcode NativeSession} on 2 threads so that only the graph differs:
 *
 * - metric: P [B, H, T, K] and packed M [H, K(K+1)/2] → Y, then dP and dM
 *   (`onnx/custom/metric_attention.ts`);
 * - standard: BiasAttention on QKV [B, T, 3·H·K] with the causal mask → Y, then dQKV
 *   (`onnx/custom/attention.ts`): one projection more per head than the metric form.
 *
 * Each graph is the op, L = Σ dY ⊙ Y and autodiff's gradient (the op's Grad node), as a train
 * step runs it; "portable" is a session without the op library (ORT inlines the definitions),
 * "native" one with it (`native/kernels/`).
 *
 * `CLAIMBENCH_BENCH_ITERATIONS=n` sets every benchmark's iterations (default: 20 at T 96, 5 at
 * T 512), e.g. 1 to check that the file runs.
 *
 * `deno bench --allow-read --allow-write --allow-run --allow-ffi --allow-env --allow-sys
 *   bench/metric_attention_bench.ts`
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { buildNativeOps } from "../native/build.ts";
import { headBias } from "../onnx/attention.ts";
import { causalBias } from "../onnx/attention_bias.ts";
import { gradients } from "../onnx/autodiff.ts";
import { biasAttention } from "../onnx/custom/attention.ts";
import { metricAttention } from "../onnx/custom/metric_attention.ts";
import { Graph } from "../onnx/graph.ts";
import { NativeSession, type NativeTensor } from "../onnx/native_session.ts";
import { mul, reduceSum } from "../onnx/ops.ts";

const THREADS = 2;
const [B, H, K] = [32, 4, 16];
const L = (K * (K + 1)) / 2;
const C = H * K;

const lib = await buildNativeOps();
const prng = new Prng(2026);
const sessions: NativeSession[] = [];
globalThis.addEventListener("unload", () => {
  for (const s of sessions) s.close();
});

const iterationsSet = Deno.env.get("CLAIMBENCH_BENCH_ITERATIONS");

function normal(n: number, std = 1): Float32Array {
  return Float32Array.from({ length: n }, () => std * prng.normal());
}

/** y = MetricAttention(p, m) (causal, scale 1/√K) and dp, dm of Σ dy ⊙ y. */
function metricModel(T: number): Uint8Array {
  const g = new Graph("metric_attention");
  const p = g.input("p", "float32", [B, H, T, K]);
  const m = g.input("m", "float32", [H, L]);
  const dy = g.input("dy", "float32", [B, H, T, K]);
  const y = metricAttention(p, m);
  const [dp, dm] = gradients(reduceSum(mul(y, dy)), [p, m]);
  g.output(y, "y");
  g.output(dp, "dp");
  g.output(dm, "dm");
  return g.toModel();
}

/** y = BiasAttention(qkv) (causal, scale 1/√K) and dqkv of Σ dy ⊙ y. */
function standardModel(T: number): Uint8Array {
  const g = new Graph("bias_attention");
  const qkv = g.input("qkv", "float32", [B, T, 3 * C]);
  const dy = g.input("dy", "float32", [B, T, C]);
  const bias = headBias(g, Array.from({ length: H }, () => causalBias(T)), T);
  const y = biasAttention(qkv, bias, 1 / Math.sqrt(K));
  const [dqkv] = gradients(reduceSum(mul(y, dy)), [qkv]);
  g.output(y, "y");
  g.output(dqkv, "dqkv");
  return g.toModel();
}

for (const T of [96, 512]) {
  const arms = [
    {
      name: "metric",
      model: metricModel(T),
      feeds: {
        p: { data: normal(B * H * T * K), dims: [B, H, T, K] },
        m: { data: normal(H * L, 0.3), dims: [H, L] },
        dy: { data: normal(B * H * T * K), dims: [B, H, T, K] },
      } as Record<string, NativeTensor>,
    },
    {
      name: "standard",
      model: standardModel(T),
      feeds: {
        qkv: { data: normal(B * T * 3 * C), dims: [B, T, 3 * C] },
        dy: { data: normal(B * T * C), dims: [B, T, C] },
      } as Record<string, NativeTensor>,
    },
  ];
  const n = iterationsSet ? Number(iterationsSet) : T === 96 ? 20 : 5;
  for (const engine of ["portable", "native"] as const) {
    const group = `attention forward + backward [B ${B}, H ${H}, T ${T}, K ${K}], ${engine}`;
    for (const arm of arms) {
      const s = NativeSession.create(arm.model, {
        threads: THREADS,
        customOpLibraries: engine === "native" ? [lib] : [],
      });
      sessions.push(s);
      Deno.bench({
        name: `${arm.name} (${engine})`,
        group,
        baseline: arm.name === "standard",
        n,
        warmup: Math.min(n, 2),
        fn: () => {
          s.run(arm.feeds);
        },
      });
    }
  }
}
