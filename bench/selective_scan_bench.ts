/**
 * SelectiveScan's two CPU paths side by side, both run through {@linkcode NativeSession} on 2
 * threads so that only the graph's execution differs: the op's portable definition (ONNX `Scan`,
 * a session without the library, where ORT inlines it) against the native kernel
 * (`native/kernels/selective_scan.cc`). Mamba's selective layout (B and C [B, 1, N, L]) at
 * B 32, D 64, N 16 and L 256 and 1024; "forward" runs SelectiveScan, "forward + backward" runs
 * SelectiveScan and SelectiveScanGrad in one graph, as a train step does.
 *
 * Memory traffic of the forward, the floor a bandwidth-bound kernel approaches: u, Δ and y
 * [B, D, L] plus B and C [B, N, L] plus the last state, float32 (≈ 6.6 MB at L 256).
 *
 * `deno bench --allow-read --allow-write --allow-run --allow-ffi --allow-env --allow-sys
 *   bench/selective_scan_bench.ts`
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { buildNativeOps } from "../native/build.ts";
import { selectiveScanGrad, selectiveScanNode } from "../onnx/custom/selective_scan.ts";
import { Graph } from "../onnx/graph.ts";
import { NativeSession, type NativeTensor } from "../onnx/native_session.ts";

const THREADS = 2;
const [B, D, N] = [32, 64, 16];

const lib = await buildNativeOps();
const prng = new Prng(2025);
const sessions: NativeSession[] = [];
globalThis.addEventListener("unload", () => {
  for (const s of sessions) s.close();
});

function data(n: number, f: () => number): Float32Array {
  return Float32Array.from({ length: n }, f);
}

for (const L of [256, 1024]) {
  const bdl = [B, D, L];
  const bc = [B, 1, N, L];
  const feeds: Record<string, NativeTensor> = {
    dy: { data: data(B * D * L, () => prng.normal()), dims: bdl },
    u: { data: data(B * D * L, () => prng.normal()), dims: bdl },
    delta: { data: data(B * D * L, () => 0.001 + 0.1 * prng.nextFloat()), dims: bdl },
    A: { data: data(D * N, () => -(1 + prng.nextFloat() * 15)), dims: [D, N] },
    B: { data: data(B * N * L, () => prng.normal()), dims: bc },
    C: { data: data(B * N * L, () => prng.normal()), dims: bc },
  };
  for (const backward of [false, true]) {
    const g = new Graph("selective_scan");
    const v = (name: string) => g.input(name, "float32", feeds[name].dims);
    const [u, delta, A, Bm, Cm] = ["u", "delta", "A", "B", "C"].map(v);
    const [y, last] = selectiveScanNode(u, delta, A, Bm, Cm);
    g.output(y, "y");
    g.output(last, "last");
    const outs = ["y", "last"];
    if (backward) {
      selectiveScanGrad(v("dy"), u, delta, A, Bm, Cm).forEach((d, i) => {
        g.output(d, `d${i}`);
        outs.push(`d${i}`);
      });
    }
    const model = g.toModel();
    const inputs = Object.fromEntries(
      ["u", "delta", "A", "B", "C", ...(backward ? ["dy"] : [])].map((k) => [k, feeds[k]]),
    );
    const group = `SelectiveScan${backward ? " + grad" : ""} [${B},${D},${L}] N ${N}`;
    for (const [name, libraries] of [["portable definition", []], ["native", [lib]]] as const) {
      const s = NativeSession.create(model, {
        threads: THREADS,
        customOpLibraries: [...libraries],
      });
      sessions.push(s);
      Deno.bench({
        name: `${group}: ${name}`,
        group,
        baseline: libraries.length === 0,
        n: L === 256 ? 30 : 10,
        warmup: 3,
        fn: () => {
          s.run(inputs, outs);
        },
      });
    }
  }
}
