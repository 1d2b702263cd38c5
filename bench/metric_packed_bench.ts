/**
 * Timing beside the `metric-attention` suite's MT5 counts (CLAIMS.md §3.2): two ways of computing
 * one head's metric-attention scores r = P·M·Pᵀ (P [T, K], M symmetric [K, K] given as its
 * K(K+1)/2 packed values), in plain TypeScript on Float64Arrays, at K (N_k) 16 and T (N_c) 64 and
 * 256:
 *
 * - packed: the corrected packed scheme, one pass over the packed upper triangle of M per score
 *   pair c ≤ c' (M[k,k] once, each M[k,k'] with k < k' times p[c,k]p[c',k'] + p[c,k']p[c',k]),
 *   mirrored to c > c'; [T(T+1)/2]·[K(K+1)/2] terms;
 * - gemm: M unpacked to dense once, Q' = P·M (T·K² multiply-adds), then r = Q'·Pᵀ (T²·K).
 *
 * Why: the nlp-metaformer README claims the packed form cuts the score FLOPs to N_kN_c/2 (MT5).
 * The suite checks the claim by exact counts (`scoreOpCounts` in `suites/metric_math.ts`, the
 * MT5 and MT5-gemm checks of `suites/metric_attention.ts`): packed is ≈ 3.5–4× the GEMM's terms at
 * these shapes. This file is the wall-clock beside those counts. Both kernels are written out here
 * rather than imported from `suites/metric_math.ts` (bench/ may not import suites/,
 * `import_graph_test.ts`); the packed loop is `correctedPackedScores`'s, and both are checked
 * against the plain quadruple sum before timing.
 *
 * `npx -y deno@2.9 bench bench/metric_packed_bench.ts`
 * @module
 */
import { Prng } from "../fixtures/prng.ts";

const K = 16;
const L = (K * (K + 1)) / 2;
const T_GRID = [64, 256];

/** The packing order of `suites/metric_math.ts`: upper triangle row by row, l ↦ (k[l] ≤ k2[l]). */
const pairs = (() => {
  const k = new Int32Array(L);
  const k2 = new Int32Array(L);
  let l = 0;
  for (let i = 0; i < K; i++) for (let j = i; j < K; j++, l++) [k[l], k2[l]] = [i, j];
  return { k, k2 };
})();

/** Corrected packed scheme: per pair c ≤ c', the sum over packed l; mirrored. r [T, T]. */
function packedScores(p: Float64Array, mPacked: Float64Array, T: number): Float64Array {
  const { k, k2 } = pairs;
  const r = new Float64Array(T * T);
  for (let c = 0; c < T; c++) {
    for (let c2 = c; c2 < T; c2++) {
      let sum = 0;
      for (let l = 0; l < L; l++) {
        const a = k[l], b = k2[l];
        const cross = a === b
          ? p[c * K + a] * p[c2 * K + a]
          : p[c * K + a] * p[c2 * K + b] + p[c * K + b] * p[c2 * K + a];
        sum += mPacked[l] * cross;
      }
      r[c * T + c2] = r[c2 * T + c] = sum;
    }
  }
  return r;
}

/** Factored GEMM: M unpacked, Q' = P·M [T, K], then r = Q'·Pᵀ [T, T] (all pairs). */
function gemmScores(p: Float64Array, mPacked: Float64Array, T: number): Float64Array {
  const { k, k2 } = pairs;
  const m = new Float64Array(K * K);
  for (let l = 0; l < L; l++) m[k[l] * K + k2[l]] = m[k2[l] * K + k[l]] = mPacked[l];
  const q = new Float64Array(T * K);
  for (let c = 0; c < T; c++) {
    for (let j = 0; j < K; j++) {
      const pcj = p[c * K + j];
      for (let i = 0; i < K; i++) q[c * K + i] += pcj * m[j * K + i];
    }
  }
  const r = new Float64Array(T * T);
  for (let c = 0; c < T; c++) {
    for (let c2 = 0; c2 < T; c2++) {
      let sum = 0;
      for (let i = 0; i < K; i++) sum += q[c * K + i] * p[c2 * K + i];
      r[c * T + c2] = sum;
    }
  }
  return r;
}

/** The quadruple sum Σ_{k,k'} M[k,k'] p[c,k] p[c',k'], the reference both kernels must match. */
function naiveScores(p: Float64Array, mPacked: Float64Array, T: number): Float64Array {
  const { k, k2 } = pairs;
  const m = new Float64Array(K * K);
  for (let l = 0; l < L; l++) m[k[l] * K + k2[l]] = m[k2[l] * K + k[l]] = mPacked[l];
  const r = new Float64Array(T * T);
  for (let c = 0; c < T; c++) {
    for (let c2 = 0; c2 < T; c2++) {
      let sum = 0;
      for (let a = 0; a < K; a++) {
        for (let b = 0; b < K; b++) sum += m[a * K + b] * p[c * K + a] * p[c2 * K + b];
      }
      r[c * T + c2] = sum;
    }
  }
  return r;
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const prng = new Prng(2026);
let sink = 0; // keeps the results live

for (const T of T_GRID) {
  const p = Float64Array.from({ length: T * K }, () => prng.normal());
  const mPacked = Float64Array.from({ length: L }, () => 0.3 * prng.normal());
  const reference = naiveScores(p, mPacked, T);
  for (const [name, scores] of [["packed", packedScores], ["gemm", gemmScores]] as const) {
    const err = maxAbsDiff(scores(p, mPacked, T), reference);
    if (err > 1e-9) {
      throw new Error(`${name} scores differ from the quadruple sum by ${err} at T ${T}`);
    }
  }
  const terms = ((T * (T + 1)) / 2) * L;
  const macs = T * K * K + T * T * K;
  const group = `metric scores r = P·M·Pᵀ, one head, K ${K}, T ${T}`;
  Deno.bench({
    name: `packed, c ≤ c' (${terms.toLocaleString("en-US")} terms)`,
    group,
    fn: () => {
      sink += packedScores(p, mPacked, T)[1];
    },
  });
  Deno.bench({
    name: `gemm (P·M)·Pᵀ (${macs.toLocaleString("en-US")} multiply-adds)`,
    group,
    baseline: true,
    fn: () => {
      sink += gemmScores(p, mPacked, T)[1];
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (!Number.isFinite(sink)) console.error("non-finite scores");
});
