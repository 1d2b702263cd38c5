// Conformance of the MetricAttention op (CLAIMS.md §3.1, the README variant with a causal mask)
// against the float64 reference of metric_attention_reference.ts: the portable definitions in
// float64, where only summation order separates them from the reference, and the native kernels
// in float32 against the portable definitions. (The registry's tests add the rule's finite
// differences and a native-against-definition check at one small shape.)
import { assert, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../../fixtures/prng.ts";
import { buildNativeOps } from "../../native/build.ts";
import { gradients } from "../autodiff.ts";
import { Graph, toTypedArray } from "../graph.ts";
import { NativeSession, type NativeTensor, profiledOpTypes } from "../native_session.ts";
import { mul, reduceSum } from "../ops.ts";
import { Session, tensor } from "../runtime.ts";
import {
  metricAttention,
  type MetricAttentionOptions,
  packedMetricIndex,
} from "./metric_attention.ts";
import {
  denseMetric,
  metricAttentionGradReference,
  metricAttentionReference,
  type MetricDims,
} from "./metric_attention_reference.ts";

const LIB = await buildNativeOps();

/**
 * T = 1 (one key: the weights are exactly 1), odd K (no whole vector of dims), K 16 with T 37
 * (the models' head size; rows longer than a 16-lane vector, not a multiple of one).
 */
const SHAPES: readonly MetricDims[] = [
  { batch: 2, heads: 3, length: 7, dim: 4 },
  { batch: 1, heads: 2, length: 1, dim: 5 },
  { batch: 2, heads: 1, length: 6, dim: 3 },
  { batch: 2, heads: 2, length: 37, dim: 16 },
];

/** Causal with the default scale, and unmasked with another: both of the wrapper's options. */
const OPTIONS: readonly MetricAttentionOptions[] = [{}, { causal: false, scale: 0.45 }];

const label = (d: MetricDims, o: MetricAttentionOptions) =>
  `[${d.batch},${d.heads},${d.length},${d.dim}] ${o.causal === false ? "unmasked" : "causal"}`;

interface Case {
  dims: MetricDims;
  opts: MetricAttentionOptions;
  p: Float64Array;
  m: Float64Array;
  dy: Float64Array;
}

/** P, dY ~ N(0, 1) and M ~ 0.3·N(0, 1): scores of order 1 to 10, weights far from uniform. */
function randomCase(dims: MetricDims, opts: MetricAttentionOptions, seed: number): Case {
  const prng = new Prng(seed);
  const { batch: B, heads: H, length: T, dim: K } = dims;
  const draw = (n: number, s: number) => Float64Array.from({ length: n }, () => s * prng.normal());
  return {
    dims,
    opts,
    p: draw(B * H * T * K, 1),
    m: draw((H * K * (K + 1)) / 2, 0.3),
    dy: draw(B * H * T * K, 1),
  };
}

/** y = MetricAttention(p, m) and (dp, dm) = ∂(Σ dy ⊙ y)/∂(p, m) through the op's rule. */
function model(c: Case, dtype: "float32" | "float64"): Uint8Array {
  const { batch: B, heads: H, length: T, dim: K } = c.dims;
  const g = new Graph("metric_attention");
  const p = g.input("p", dtype, [B, H, T, K]);
  const m = g.input("m", dtype, [H, (K * (K + 1)) / 2]);
  const dy = g.input("dy", dtype, [B, H, T, K]);
  const y = metricAttention(p, m, c.opts);
  const [dp, dm] = gradients(reduceSum(mul(y, dy)), [p, m]);
  g.output(y, "y");
  g.output(dp, "dp");
  g.output(dm, "dm");
  return g.toModel();
}

type Outputs = Record<"y" | "dp" | "dm", Float64Array | Float32Array>;

function shapes(c: Case): Record<"p" | "m" | "dy", number[]> {
  const { batch: B, heads: H, length: T, dim: K } = c.dims;
  return { p: [B, H, T, K], m: [H, (K * (K + 1)) / 2], dy: [B, H, T, K] };
}

async function runPortable(c: Case, dtype: "float32" | "float64"): Promise<Outputs> {
  const s = await Session.create(model(c, dtype), { threads: 1 });
  const dims = shapes(c);
  const feed = (k: "p" | "m" | "dy") => tensor(dtype, toTypedArray(c[k], dtype), dims[k]);
  const out = await s.run({ p: feed("p"), m: feed("m"), dy: feed("dy") });
  await s.release();
  return { y: out.y.data, dp: out.dp.data, dm: out.dm.data } as Outputs;
}

function nativeFeeds(c: Case): Record<string, NativeTensor> {
  const dims = shapes(c);
  const feed = (k: "p" | "m" | "dy") => ({ data: Float32Array.from(c[k]), dims: dims[k] });
  return { p: feed("p"), m: feed("m"), dy: feed("dy") };
}

/** The native kernels, at the widest vectors the CPU has or at most `simd`. */
function runNative(c: Case, threads: number, simd?: "sse2" | "avx2"): Outputs {
  if (simd) Deno.env.set("CLAIMBENCH_NATIVE_SIMD", simd); // read when ORT creates the kernel
  let s: NativeSession;
  try {
    s = NativeSession.create(model(c, "float32"), { threads, customOpLibraries: [LIB] });
  } finally {
    Deno.env.delete("CLAIMBENCH_NATIVE_SIMD");
  }
  try {
    const out = s.run(nativeFeeds(c));
    return { y: out.y.data, dp: out.dp.data, dm: out.dm.data } as Outputs;
  } finally {
    s.close();
  }
}

/** The largest |got − want| / (1 + |want|). */
function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assertEquals(got.length, want.length);
  let e = 0;
  for (let i = 0; i < got.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  }
  return e;
}

/**
 * The reference at the scale ORT runs: its MatMulScaleFusion folds a constant scalar Mul beside a
 * MatMul into the product's float alpha, so even a float64 graph scales by float32(scale)
 * (measured: (x·x)·0.45 gives 0.44999998807907104 for x = I). With 1/√3 or 0.45 unrounded, the
 * float64 comparison misses by ~1e-8 instead of ~1e-14.
 */
function reference(c: Case) {
  const ref = {
    causal: c.opts.causal,
    scale: Math.fround(c.opts.scale ?? 1 / Math.sqrt(c.dims.dim)),
  };
  return {
    y: metricAttentionReference(c.p, c.m, c.dims, ref),
    ...metricAttentionGradReference(c.dy, c.p, c.m, c.dims, ref),
  };
}

/** The first index whose float32 bits differ, or −1. */
function sameBits(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.findIndex((v, i) => v !== y[i]);
}

// float64 leaves only the order of the sums between definition and reference: a wrong mask,
// scale, packing or value path shows up at order 1, rounding at ~1e-15.
for (const [s, dims] of SHAPES.entries()) {
  for (const [o, opts] of OPTIONS.entries()) {
    Deno.test(`MetricAttention ${label(dims, opts)}: the portable op and its gradient match the float64 reference`, async () => {
      const c = randomCase(dims, opts, 100 * s + o);
      const got = await runPortable(c, "float64");
      const want = reference(c);
      for (const k of ["y", "dp", "dm"] as const) {
        const e = relError(got[k], want[k]);
        assertLess(e, 1e-12, `${k}: ${e}`);
      }
    });
  }
}

Deno.test("MetricAttention's packed metric: index table, dense form, and both halves in dM", () => {
  // K = 4: l walks row-major over k ≤ k'.
  assertEquals(
    Array.from(packedMetricIndex(4)),
    [0, 1, 2, 3, 1, 4, 5, 6, 2, 5, 7, 8, 3, 6, 8, 9],
  );
  assertEquals(
    Array.from(denseMetric([1, 2, 3, 4, 5, 6], 0, 3)),
    [1, 2, 3, 2, 4, 5, 3, 5, 6],
  );
  // The packed gradient against central differences of the reference's loss in each packed
  // entry: a factor 2 on the diagonal, or one half of a pair, misses by the size of G itself.
  const c = randomCase({ batch: 2, heads: 2, length: 5, dim: 3 }, {}, 7);
  const { dm, dense } = reference(c);
  const loss = (m: Float64Array) => {
    const y = metricAttentionReference(c.p, m, c.dims);
    return y.reduce((s, v, i) => s + v * c.dy[i], 0);
  };
  const h = 1e-6;
  let worst = 0;
  for (let l = 0; l < c.m.length; l++) {
    const up = Float64Array.from(c.m);
    const down = Float64Array.from(c.m);
    up[l] += h;
    down[l] -= h;
    const numeric = (loss(up) - loss(down)) / (2 * h);
    worst = Math.max(worst, Math.abs(dm[l] - numeric) / (1 + Math.abs(numeric)));
  }
  assertLess(worst, 1e-7, `packed dM vs finite differences: ${worst}`);
  // Only an asymmetric G tells "both halves" from "twice one half".
  let asym = 0;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      asym = Math.max(asym, Math.abs(dense[i * 3 + j] - dense[j * 3 + i]));
    }
  }
  assert(asym > 1e-2, `G is nearly symmetric (${asym}): the check above would not tell`);
});

// float32 kernels against the float32 definition: different rounding, the same function.
for (const [s, dims] of SHAPES.entries()) {
  for (const [o, opts] of OPTIONS.entries()) {
    Deno.test(`MetricAttention ${label(dims, opts)}: native kernels agree with the definition, the same bits at every width and thread count`, async () => {
      const c = randomCase(dims, opts, 200 * s + o);
      // Else the comparisons below would hold for the inlined definitions too.
      const ran = profiledOpTypes(model(c, "float32"), nativeFeeds(c), {
        customOpLibraries: [LIB],
      });
      assert(ran.has("MetricAttention") && ran.has("MetricAttentionGrad"), [...ran].join());
      const want = await runPortable(c, "float32");
      const wide = runNative(c, 2);
      for (const k of ["y", "dp", "dm"] as const) {
        const e = relError(wide[k], want[k]);
        assertLess(e, 1e-5, `${k}: ${e}`);
      }
      for (const [threads, simd] of [[1, undefined], [2, "sse2"], [1, "avx2"]] as const) {
        const other = runNative(c, threads, simd);
        for (const k of ["y", "dp", "dm"] as const) {
          const first = sameBits(other[k] as Float32Array, wide[k] as Float32Array);
          assertEquals(first, -1, `${k}, ${threads} threads, ${simd ?? "widest"}: [${first}]`);
        }
      }
    });
  }
}

Deno.test("metricAttention refuses a metric that is not [H, K(K+1)/2]", () => {
  const g = new Graph("bad");
  const p = g.input("p", "float32", [1, 2, 3, 4]);
  assertThrows(() => metricAttention(p, g.input("m", "float32", [2, 16])), TypeError, "[2, 10]");
  assertThrows(() => metricAttention(p, g.input("m1", "float32", [1, 10])), TypeError, "[2, 10]");
});
