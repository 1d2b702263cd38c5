/**
 * The CUDA kernels' conformance and speed (`native/cuda/selective_scan.cu`), for a machine with
 * a GPU: `deno task cuda-check`. Builds the CUDA library with nvcc, then
 *
 * - runs SelectiveScan and SelectiveScanGrad through the library's host entry points at SS1's
 *   shapes (B 2, D 4, N 8, L 128…1024; selective and time-invariant B and C) and compares them
 *   with the float64 reference (`onnx/custom/selective_scan_reference.ts`) within the CPU paths'
 *   tolerance (1e-5 + 1e-5·|want| for outputs; 1e-5 of the largest term for gradients);
 * - times both at B 32, D 64, N 16, L 256 and 1024 (selective), and prints the time against the
 *   forward's memory-traffic floor (u, Δ, y [B, D, L] and B, C [B, N, L], float32) at the
 *   device's bandwidth, which it asks for with `--bandwidth GBps` (default 3350: H100 SXM).
 *
 * And for `native/cuda/metric_attention.cu`:
 *
 * - runs MetricAttention and MetricAttentionGrad through the host entry points (B 2, H 2; T 1 to
 *   257, K 3 to 64, causal and unmasked) against the float64 reference
 *   (`onnx/custom/metric_attention_reference.ts`): Y within 1e-5 + 1e-5·|want|, dP and dM
 *   within 1e-5 of each one's largest term (the CPU kernels' tolerance);
 * - times both, causal, at the bench's shapes (B 32, H 4, T 96 and 512, K 16) against the op's
 *   memory-traffic floor: the forward reads P and M and the [T, T] mask and writes Y; the
 *   gradient reads dY, P, M and the mask and writes dP and dM (float32).
 *
 * Exit codes: 0 every check passed, 1 a check failed, 2 no GPU (nothing ran) or no nvcc.
 * @module
 */
import { parseArgs } from "@std/cli";
import { Prng } from "../fixtures/prng.ts";
import { buildCudaOps } from "../native/build.ts";
import {
  type CudaMetricAttentionLibrary,
  type CudaScanLibrary,
  openCudaMetricAttention,
  openCudaScan,
} from "../native/cuda_ops.ts";
import { causalBias } from "../onnx/attention_bias.ts";
import {
  metricAttentionGradReference,
  metricAttentionReference,
  type MetricDims,
} from "../onnx/custom/metric_attention_reference.ts";
import {
  type ScanReferenceInputs,
  selectiveScanGradReference,
  selectiveScanReference,
} from "../onnx/custom/selective_scan_reference.ts";

const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** One conformance case on the GPU; returns the worst excess over the tolerance (≤ 0 passes). */
function conformance(
  lib: CudaScanLibrary,
  dims: { batch: number; channels: number; length: number; state: number },
  bShape: number[],
  seed: number,
): { forward: number; gradient: number } {
  const p = new Prng(seed);
  const { batch, channels, length, state } = dims;
  const bdl = batch * channels * length;
  const f32 = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
  const u = f32(bdl, () => p.normal());
  const delta = f32(bdl, () => 0.05 + 0.5 * p.nextFloat());
  const A = f32(channels * state, () => -0.5 * p.nextFloat() - 0.01);
  const Bm = f32(count(bShape), () => p.normal());
  const Cm = f32(count(bShape), () => p.normal());
  const dy = f32(bdl, () => p.normal());
  const shape = BigInt64Array.from(bShape.map(BigInt));
  const ref: ScanReferenceInputs = {
    dims,
    u,
    delta,
    A,
    B: { data: Bm, shape: bShape, broadcast: true },
    C: { data: Cm, shape: bShape, broadcast: true },
  };
  const y = new Float32Array(bdl);
  const last = new Float32Array(batch * channels * state);
  const big = (n: number) => BigInt(n);
  let rc = lib.symbols.ClaimbenchSelectiveScanHost(
    u,
    delta,
    A,
    Bm,
    shape,
    Cm,
    shape,
    big(batch),
    big(channels),
    big(length),
    big(state),
    y,
    last,
  );
  if (rc !== 0) throw new Error(`ClaimbenchSelectiveScanHost returned ${rc}`);
  const want = selectiveScanReference(ref);
  let forward = -Infinity;
  for (const [got, w] of [[y, want.y], [last, want.lastState]] as const) {
    got.forEach((
      v,
      i,
    ) => (forward = Math.max(forward, Math.abs(v - w[i]) - 1e-5 * (1 + Math.abs(w[i])))));
  }
  const grads = [bdl, bdl, channels * state, count(bShape), count(bShape)].map((n) =>
    new Float32Array(n)
  );
  rc = lib.symbols.ClaimbenchSelectiveScanGradHost(
    dy,
    u,
    delta,
    A,
    Bm,
    shape,
    Cm,
    shape,
    big(batch),
    big(channels),
    big(length),
    big(state),
    ...(grads as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array]),
  );
  if (rc !== 0) throw new Error(`ClaimbenchSelectiveScanGradHost returned ${rc}`);
  const g = selectiveScanGradReference(ref, dy);
  let gradient = -Infinity;
  [g.du, g.ddelta, g.dA, g.dB, g.dC].forEach((w, k) => {
    const scale = Math.max(1, ...Array.from(w, Math.abs));
    grads[k].forEach((v, i) => (gradient = Math.max(gradient, Math.abs(v - w[i]) - 1e-5 * scale)));
  });
  return { forward, gradient };
}

/**
 * One MetricAttention case through `lib`'s host entry points against the float64 reference;
 * returns the worst excess over the tolerance (≤ 0 passes) of Y, and of dP and dM. Any library
 * with those entry points will do (the CUDA one, or a host emulation of it).
 */
export function metricConformance(
  lib: CudaMetricAttentionLibrary,
  dims: MetricDims,
  causal: boolean,
  seed: number,
): { forward: number; gradient: number } {
  const p = new Prng(seed);
  const { batch: B, heads: H, length: T, dim: K } = dims;
  const n = B * H * T * K;
  const L = (K * (K + 1)) / 2;
  const f32 = (count: number, scale: number) =>
    Float32Array.from({ length: count }, () => scale * p.normal());
  const P = f32(n, 1);
  const M = f32(H * L, 0.3);
  const dy = f32(n, 1);
  const bias = causal ? causalBias(T) : new Float32Array(T * T);
  const scale = Math.fround(1 / Math.sqrt(K));
  const big = [B, H, T, K].map(BigInt) as [bigint, bigint, bigint, bigint];
  const y = new Float32Array(n);
  let rc = lib.symbols.ClaimbenchMetricAttentionHost(P, M, bias, scale, ...big, y);
  if (rc !== 0) throw new Error(`ClaimbenchMetricAttentionHost returned ${rc}`);
  const opts = { causal, scale };
  const want = metricAttentionReference(P, M, dims, opts);
  let forward = -Infinity;
  y.forEach((v, i) => {
    forward = Math.max(forward, Math.abs(v - want[i]) - 1e-5 * (1 + Math.abs(want[i])));
  });
  const dp = new Float32Array(n);
  const dm = new Float32Array(H * L);
  rc = lib.symbols.ClaimbenchMetricAttentionGradHost(dy, P, M, bias, scale, ...big, dp, dm);
  if (rc !== 0) throw new Error(`ClaimbenchMetricAttentionGradHost returned ${rc}`);
  const g = metricAttentionGradReference(dy, P, M, dims, opts);
  let gradient = -Infinity;
  for (const [got, w] of [[dp, g.dp], [dm, g.dm]] as const) {
    const largest = Math.max(1, ...Array.from(w, Math.abs));
    got.forEach((v, i) => (gradient = Math.max(gradient, Math.abs(v - w[i]) - 1e-5 * largest)));
  }
  return { forward, gradient };
}

/** MetricAttention's conformance cases and timings; returns the number of failed checks. */
function checkMetricAttention(lib: CudaMetricAttentionLibrary, bandwidth: number): number {
  let failed = 0;
  const shapes = [[1, 16], [7, 3], [37, 16], [96, 33], [257, 64]];
  for (const [T, K] of shapes) {
    for (const causal of [true, false]) {
      const dims = { batch: 2, heads: 2, length: T, dim: K };
      const r = metricConformance(lib, dims, causal, 1000 * T + K);
      const ok = r.forward <= 0 && r.gradient <= 0;
      if (!ok) failed++;
      console.log(
        `${ok ? "ok  " : "FAIL"} MetricAttention T ${T} K ${K} ${
          causal ? "causal" : "unmasked"
        }: ` +
          `excess over tolerance forward ${r.forward.toExponential(2)}, gradient ` +
          `${r.gradient.toExponential(2)} (≤ 0 passes)`,
      );
    }
  }
  const [B, H, K] = [32, 4, 16];
  const L = (K * (K + 1)) / 2;
  for (const T of [96, 512]) {
    const n = B * H * T * K;
    for (const backward of [0, 1]) {
      const bytes = 4 * (backward ? 3 * n + 2 * H * L + T * T : 2 * n + H * L + T * T);
      const floor = bytes / (bandwidth * 1e9) * 1e3;
      const ms = new Float64Array(1);
      const rc = lib.symbols.ClaimbenchMetricAttentionTime(
        BigInt(B),
        BigInt(H),
        BigInt(T),
        BigInt(K),
        1,
        backward,
        50,
        ms,
      );
      if (rc !== 0) {
        failed++;
        console.log(
          `FAIL timing MetricAttention T ${T}: ClaimbenchMetricAttentionTime returned ${rc}`,
        );
        continue;
      }
      console.log(
        `time MetricAttention${backward ? "Grad" : "    "} [${B},${H},${T},${K}] causal: ` +
          `${ms[0].toFixed(4)} ms; traffic floor ${floor.toFixed(4)} ms at ${bandwidth} GB/s ` +
          `(${(ms[0] / floor).toFixed(1)}× the floor)`,
      );
    }
  }
  return failed;
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, { string: ["bandwidth"], default: { bandwidth: "3350" } });
  const bandwidth = Number(args.bandwidth);
  if (!(bandwidth > 0)) {
    console.error(
      `--bandwidth must be a positive number of GB/s: current value is ${args.bandwidth}`,
    );
    Deno.exit(2);
  }
  const path = await buildCudaOps();
  if (path === null) {
    console.error("cuda-check: nvcc is not installed, so there is no CUDA library to check");
    Deno.exit(2);
  }
  const lib = openCudaScan(path);
  const devices = lib.symbols.ClaimbenchCudaDeviceCount();
  if (devices < 1) {
    console.error(`cuda-check: no usable GPU (ClaimbenchCudaDeviceCount: ${devices}); nothing ran`);
    Deno.exit(2);
  }
  let failed = 0;
  for (const layout of ["selective", "time-invariant"] as const) {
    for (const length of [128, 256, 512, 1024]) {
      const dims = { batch: 2, channels: 4, length, state: 8 };
      const bShape = layout === "selective" ? [2, 1, 8, length] : [1, 4, 8, 1];
      const r = conformance(lib, dims, bShape, length + (layout === "selective" ? 0 : 1));
      const ok = r.forward <= 0 && r.gradient <= 0;
      if (!ok) failed++;
      console.log(
        `${ok ? "ok  " : "FAIL"} SS1 ${layout} L ${length}: excess over tolerance forward ` +
          `${r.forward.toExponential(2)}, gradient ${r.gradient.toExponential(2)} (≤ 0 passes)`,
      );
    }
  }
  const [B, D, N] = [32, 64, 16];
  for (const L of [256, 1024]) {
    const bytes = 4 * (3 * B * D * L + 2 * B * N * L + B * D * N);
    const floor = bytes / (bandwidth * 1e9) * 1e3;
    for (const backward of [0, 1]) {
      const ms = new Float64Array(1);
      const rc = lib.symbols.ClaimbenchSelectiveScanTime(
        BigInt(B),
        BigInt(D),
        BigInt(L),
        BigInt(N),
        1,
        backward,
        50,
        ms,
      );
      if (rc !== 0) {
        failed++;
        console.log(`FAIL timing L ${L}: ClaimbenchSelectiveScanTime returned ${rc}`);
        continue;
      }
      console.log(
        `time ${backward ? "backward" : "forward "} [${B},${D},${L}] N ${N}: ` +
          `${ms[0].toFixed(4)} ms; forward traffic floor ${floor.toFixed(4)} ms at ` +
          `${bandwidth} GB/s (${(ms[0] / floor).toFixed(1)}× the floor)`,
      );
    }
  }
  lib.close();
  const metric = openCudaMetricAttention(path);
  failed += checkMetricAttention(metric, bandwidth);
  metric.close();
  console.log(failed ? `${failed} CUDA checks failed` : "every CUDA check passed");
  Deno.exit(failed ? 1 : 0);
}
