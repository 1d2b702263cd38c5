import { assert, assertEquals, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { buildNativeOps } from "../native/build.ts";
import { CUSTOM_DOMAIN } from "./custom/kit.ts";
import { Graph } from "./graph.ts";
import {
  nativeOrtVersion,
  NativeSession,
  type NativeTensor,
  profiledOpTypes,
} from "./native_session.ts";
import { add, matMul, mul, reduceSum, softmax, tanh } from "./ops.ts";
import { biasGelu, biasGeluGrad } from "./custom/gelu.ts";
import { layerNormGrad, rowLayerNorm } from "./custom/layer_norm.ts";
import { biasResidual, columnSums, matMulTransA } from "./custom/linear.ts";
import { maskedCrossEntropy, maskedCrossEntropyGrad } from "./custom/loss.ts";
import { adamW, sumOfSquares } from "./custom/optim.ts";
import { ortVersion, Session, tensor } from "./runtime.ts";

const LIB = await buildNativeOps();

/** A vector width cap for the kernels ("sse2": 4 lanes, "avx2": 8; none: the widest the CPU has). */
type Simd = "sse2" | "avx2" | undefined;

/** Threads and width caps each native op must give the same bits at. */
const THREADS_AND_WIDTHS: readonly (readonly [number, Simd])[] = [
  [1, undefined],
  [2, undefined],
  [1, "sse2"],
  [2, "avx2"],
];

/** A native session of `model` whose kernels run at most `simd` wide. */
function openNative(model: Uint8Array, threads = 1, simd?: Simd): NativeSession {
  if (simd) Deno.env.set("CLAIMBENCH_NATIVE_SIMD", simd); // read when ORT creates the kernel
  try {
    return NativeSession.create(model, { threads, customOpLibraries: [LIB] });
  } finally {
    Deno.env.delete("CLAIMBENCH_NATIVE_SIMD");
  }
}

/** A graph of one native op `op(a, b) → y`, y shaped like a. */
function opModel(op: string, aShape: number[], bShape: number[]): Uint8Array {
  const g = new Graph(op);
  const a = g.input("a", "float32", aShape);
  const b = g.input("b", "float32", bShape);
  const [y] = g.node(op, [a, b], [{ dtype: "float32", shape: aShape }], {}, CUSTOM_DOMAIN);
  g.output(y, "y");
  return g.toModel();
}

/**
 * Runs one native op; `simd` caps the vector width ("sse2": 4 lanes, "avx2": 8; default: the
 * widest the CPU has).
 */
function runOp(
  op: string,
  a: NativeTensor,
  b: NativeTensor,
  threads = 1,
  simd?: Simd,
): Float32Array {
  const s = openNative(opModel(op, [...a.dims], [...b.dims]), threads, simd);
  try {
    return s.run({ a, b }).y.data as Float32Array;
  } finally {
    s.close();
  }
}

function normal(prng: Prng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * prng.normal());
}

/** erf in float64: Maclaurin series for |z| < 3, else the continued fraction of erfc. */
function erf(z: number): number {
  const a = Math.abs(z);
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 80; n++) {
      term *= -a * a / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(z) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))), evaluated bottom-up.
  let f = a;
  for (let k = 120; k >= 1; k--) f = a + (k / 2) / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(z) * (1 - erfc);
}

function geluGradRef(dy: Float32Array, x: Float32Array): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const cdf = 0.5 * (1 + erf(v / Math.SQRT2));
    const pdf = Math.exp(-v * v / 2) / Math.sqrt(2 * Math.PI);
    return dy[i] * (cdf + v * pdf);
  });
}

/** Largest |got − want| / (|want| + floor): relative error, absolute near zero. */
function maxError(got: Float32Array, want: Float64Array, floor: number): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + floor));
  }
  return e;
}

function bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

Deno.test("GeluGrad matches float64 dY ⊙ (Φ(x) + x·φ(x)), tails and ±0 included", () => {
  const prng = new Prng(13);
  const x = normal(prng, 2000, 3);
  x.set([0, -0, 6, -6, 9.5, -9.5, 40, -40, Infinity, -Infinity], 0);
  const dy = normal(prng, 2000);
  const dx = runOp("GeluGrad", { data: dy, dims: [40, 50] }, { data: x, dims: [40, 50] });
  const want = geluGradRef(dy, x);
  want[8] = dy[8]; // x = +inf: GELU' → 1
  want[9] = 0; // x = −inf: GELU' → 0
  // Error in GELU'(x) itself (|GELU'| ≤ 1.13), i.e. |ΔdX| / |dY|: float32 rounding of Φ and x·φ.
  let e = 0;
  for (let i = 0; i < x.length; i++) e = Math.max(e, Math.abs(dx[i] - want[i]) / Math.abs(dy[i]));
  assert(e < 4e-7, `max error ${e}`);
});

Deno.test("BiasGelu matches float64 GELU(x + b); its slope has GeluGrad's bits, at every width", () => {
  const prng = new Prng(21);
  // 256 columns: the transformer's MLP; 37: tails at every width.
  for (const [rows, cols] of [[300, 256], [50, 37]]) {
    const x = normal(prng, rows * cols, 3);
    x.set([0, -0, 6, -6, 9.5, -9.5, 40, -40], 0);
    const b = normal(prng, cols, 0.3);
    b.fill(0, 0, 8);
    const g = new Graph("bias_gelu");
    const y = biasGelu(g.input("x", "float32", [rows, cols]), g.input("b", "float32", [cols]));
    g.output(y, "y");
    g.output(g.nodes.find((n) => n.outputs[0] === y)!.outputs[1], "slope");
    const model = g.toModel();
    const feeds: Record<string, NativeTensor> = {
      x: { data: x, dims: [rows, cols] },
      b: { data: b, dims: [cols] },
    };
    const run = (threads: number, simd?: Simd) => {
      const s = openNative(model, threads, simd);
      try {
        const out = s.run(feeds);
        return [out.y.data, out.slope.data] as Float32Array[];
      } finally {
        s.close();
      }
    };
    const [gotY, gotSlope] = run(1);
    const t = Float32Array.from(x, (v, i) => v + b[i % cols]); // X + B rounded, as Add does
    const wantY = Float64Array.from(t, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    // Error in Φ(t) = Y/t: float32's z = t/√2 makes e^(−z²), and so Y, relatively inexact in the
    // far negative tail (as ORT's erf of the same z), where Y itself is below 1e-7·|t|.
    let e = 0;
    for (let i = 0; i < t.length; i++) {
      if (t[i] !== 0) e = Math.max(e, Math.abs(gotY[i] - wantY[i]) / Math.abs(t[i]));
      else assert(Object.is(gotY[i], t[i]), `GELU(${t[i]}) = ${gotY[i]}`);
    }
    assert(e < 3e-7, `Y [${rows}, ${cols}]: ${e}`);
    const ones = new Float32Array(rows * cols).fill(1);
    const slope = runOp("GeluGrad", { data: ones, dims: [rows, cols] }, {
      data: t,
      dims: [rows, cols],
    });
    assertEquals(
      gotSlope.findIndex((v, i) => !Object.is(v, slope[i])),
      -1,
      "slope = GeluGrad(1, t)",
    );
    for (const [threads, simd] of THREADS_AND_WIDTHS.slice(1)) {
      const [y2, s2] = run(threads, simd);
      const first = [y2, s2].map((a, k) =>
        a.findIndex((v, i) => !Object.is(v, [gotY, gotSlope][k][i]))
      );
      assertEquals(first, [-1, -1], `[${rows}, ${cols}] ${threads} ${simd ?? ""}`);
    }
    assert(ranNative(model, feeds, "BiasGelu"), "the native kernel ran, not the definition");
  }
});

Deno.test("SumOfSquares matches float64 Σ g², at every width and thread count", () => {
  const prng = new Prng(22);
  // The bench transformer's gradient count; 37 leaves tails at every width.
  for (const n of [103_936, 37]) {
    const g = new Graph("sum_of_squares");
    g.output(sumOfSquares(g.input("g", "float32", [n]), [n]), "s");
    const model = g.toModel();
    const data = normal(prng, n, 1e-2);
    const feeds: Record<string, NativeTensor> = { g: { data, dims: [n] } };
    const run = (threads: number, simd?: Simd) => {
      const s = openNative(model, threads, simd);
      try {
        return (s.run(feeds).s.data as Float32Array)[0];
      } finally {
        s.close();
      }
    };
    const got = run(1);
    const want = data.reduce((a, v) => a + v * v, 0);
    assert(Math.abs(got - want) / want < 1e-7, `${got} vs ${want}`);
    for (const [threads, simd] of THREADS_AND_WIDTHS.slice(1)) {
      assert(Object.is(run(threads, simd), got), `${n}: ${threads} ${simd ?? ""}`);
    }
    assert(ranNative(model, feeds, "SumOfSquares"), "the native kernel ran, not the definition");
  }
});

Deno.test("MatMulTransA matches float64 Aᵀ·B, with the same bits at every width and thread count", () => {
  const prng = new Prng(24);
  // The transformer's weight gradients ([3072, 64]ᵀ·[3072, 256] and back, the head's 30
  // columns), then shapes with row and column tails at every width, a stretch boundary (K 300)
  // and C narrower than a vector (N 3).
  const shapes = [[3072, 64, 256], [3072, 256, 64], [3072, 64, 30], [300, 37, 45], [7, 5, 3]];
  for (const [K, M, N] of shapes) {
    const g = new Graph("matmul_trans_a");
    g.output(matMulTransA(g.input("a", "float32", [K, M]), g.input("b", "float32", [K, N])), "c");
    const model = g.toModel();
    const a = normal(prng, K * M);
    const b = normal(prng, K * N, 1e-3);
    const feeds: Record<string, NativeTensor> = {
      a: { data: a, dims: [K, M] },
      b: { data: b, dims: [K, N] },
    };
    const run = (threads: number, simd?: Simd) => {
      const s = openNative(model, threads, simd);
      try {
        return s.run(feeds).c as NativeTensor;
      } finally {
        s.close();
      }
    };
    const label = `[${K}, ${M}]ᵀ·[${K}, ${N}]`;
    const got = run(1);
    assertEquals(got.dims, [M, N]);
    const c = got.data as Float32Array;
    // Each element against float64, relative to Σ|a·b| (the scale its rounding errors have).
    let worst = 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        let scale = 0;
        for (let k = 0; k < K; k++) {
          const t = a[k * M + m] * b[k * N + n];
          sum += t;
          scale += Math.abs(t);
        }
        worst = Math.max(worst, Math.abs(c[m * N + n] - sum) / scale);
      }
    }
    assert(worst < 2e-6, `${label}: error ${worst} of Σ|a·b|`);
    const bits = new Uint32Array(c.buffer.slice(0));
    for (const [threads, simd] of THREADS_AND_WIDTHS.slice(1)) {
      const other = new Uint32Array((run(threads, simd).data as Float32Array).buffer.slice(0));
      const first = other.findIndex((v, i) => v !== bits[i]);
      assertEquals(first, -1, `${label}, ${threads} threads ${simd ?? ""}: element ${first}`);
    }
    assert(ranNative(model, feeds, "MatMulTransA"), `${label}: the native kernel ran`);
  }
});

Deno.test("native ops give byte-identical outputs on 1 and 2 threads, at every vector width", () => {
  const prng = new Prng(14);
  // 4·4·47·47 = 35,344 elements: several row blocks, so both threads work; rows of 47 exercise
  // the padded last group of lanes.
  const [n, h, t, s] = [4, 4, 47, 47];
  const dims = [n, h, t, s];
  const x = normal(prng, n * h * t * s, 2);
  const other = { data: normal(prng, x.length), dims };
  const cases: [string, NativeTensor, NativeTensor][] = [
    ["GeluGrad", other, { data: x, dims }],
  ];
  for (const [op, a, b] of cases) {
    const one = bytes(runOp(op, a, b, 1));
    assertEquals(bytes(runOp(op, a, b, 2)), one, `${op}: 2 threads`);
    assertEquals(bytes(runOp(op, a, b, 2, "sse2")), one, `${op}: SSE2`);
    assertEquals(bytes(runOp(op, a, b, 1, "avx2")), one, `${op}: AVX2`);
  }
});

Deno.test("NativeSession runs a standard-op graph exactly as onnxruntime-node does", async () => {
  assertEquals(nativeOrtVersion(), ortVersion());
  const prng = new Prng(15);
  const g = new Graph("standard");
  const x = g.input("x", "float32", [8, 16]);
  const w = g.initializer("w", "float32", [16, 16], normal(prng, 256));
  const y = softmax(add(matMul(tanh(x), w), 0.5));
  g.output(y, "y");
  g.output(reduceSum(mul(y, x), [1]), "s");
  const model = g.toModel();
  const data = normal(prng, 128);

  const node = await Session.create(model, { threads: 1 });
  const ref = await node.run({ x: tensor("float32", data, [8, 16]) });
  await node.release();
  const native = NativeSession.create(model, { threads: 1 });
  const got = native.run({ x: { data, dims: [8, 16] } });
  assertEquals(native.inputNames, ["x"]);
  assertEquals(native.outputNames, ["y", "s"]);
  native.close();
  for (const k of ["y", "s"]) {
    assertEquals(got[k].dims, ref[k].dims);
    assertEquals(bytes(got[k].data as Float32Array), bytes(ref[k].data as Float32Array), k);
  }
});

Deno.test("NativeSession passes int32, int64 and float64 tensors and releases every run", () => {
  const g = new Graph("types");
  const i = g.input("i", "int32", [3]);
  const l = g.input("l", "int64", [3]);
  const d = g.input("d", "float64", [3]);
  const f = g.input("f", "float32", [512, 512]);
  g.output(add(i, i), "i2");
  g.output(add(l, l), "l2");
  g.output(add(d, d), "d2");
  g.output(add(f, 1), "f1"); // 1 MB out per run: 1,000 leaked outputs would be 1 GB
  const s = NativeSession.create(g.toModel(), { threads: 1 });
  const feeds = {
    i: { data: Int32Array.of(9, 1, -2, 3).subarray(1), dims: [3] }, // a view at an offset
    l: { data: BigInt64Array.of(4n, 5n, -6n), dims: [3] },
    d: { data: Float64Array.of(0.1, 0.2, 0.3), dims: [3] },
    f: { data: new Float32Array(512 * 512), dims: [512, 512] },
  };
  const out = s.run(feeds);
  assertEquals(Array.from(out.i2.data as Int32Array), [2, -4, 6]);
  assertEquals(Array.from(out.l2.data as BigInt64Array), [8n, 10n, -12n]);
  assertEquals(Array.from(out.d2.data as Float64Array), [0.2, 0.4, 0.6]);
  assertEquals(out.f1.dims, [512, 512]);
  for (let k = 0; k < 50; k++) s.run(feeds); // warm the arena
  const before = Deno.memoryUsage().rss;
  for (let k = 0; k < 1000; k++) s.run(feeds, ["f1"]);
  // The copies left for V8 to collect stay far below what 1,000 leaked ORT outputs would hold.
  const grown = Deno.memoryUsage().rss - before;
  assert(grown < 256 * 2 ** 20, `RSS grew by ${grown} bytes over 1,000 runs`);
  const into = { data: new Float32Array(512 * 512), dims: [512, 512] };
  const written = s.run(feeds, ["f1"], { f1: into });
  assert(written.f1 === into);
  assertEquals(into.data[7], 1); // written in place: 0 + 1
  assertThrows(() => s.run({ nope: feeds.i }), TypeError, 'unknown input "nope"');
  assertThrows(
    () => s.run({ i: { data: Int32Array.of(1), dims: [3] } }),
    TypeError,
    "shape [3] with 1",
  );
  s.close();
  s.close();
  assertThrows(() => s.run(feeds), Error, "closed");
});

Deno.test("NativeSession turns ORT errors into thrown Errors with ORT's message", () => {
  assertThrows(
    () => NativeSession.create(Uint8Array.of(1, 2, 3)),
    Error,
    "Cannot create a session:",
  );
  assertThrows(
    () => NativeSession.create(opModel("GeluGrad", [2], [2])), // library not registered
    Error,
    "GeluGrad",
  );
});

/** Runs LayerNormGrad on rows of `cols`; `simd` caps the vector width. */
function runLayerNormGrad(
  rows: number,
  cols: number,
  inputs: Float32Array[],
  threads = 1,
  simd?: Simd,
): { dx: Float32Array; dScale: Float32Array; dBias: Float32Array } {
  const g = new Graph("layer_norm_grad");
  const shapes = [[rows, cols], [rows, cols], [cols], [rows, 1], [rows, 1]];
  const vs = ["dy", "x", "scale", "mean", "invStd"].map((n, i) => g.input(n, "float32", shapes[i]));
  const [dx, dScale, dBias] = layerNormGrad(vs[0], vs[1], vs[2], vs[3], vs[4]);
  g.output(dx, "dx");
  g.output(dScale, "dScale");
  g.output(dBias, "dBias");
  const s = openNative(g.toModel(), threads, simd);
  try {
    const feeds = Object.fromEntries(
      ["dy", "x", "scale", "mean", "invStd"].map((
        n,
        i,
      ) => [n, { data: inputs[i], dims: shapes[i] }]),
    );
    const out = s.run(feeds);
    const data = (k: string) => out[k].data as Float32Array;
    return { dx: data("dx"), dScale: data("dScale"), dBias: data("dBias") };
  } finally {
    s.close();
  }
}

/** Rows of x with their float32 mean and 1/σ (as LayerNormalization saves them), dy and γ. */
function layerNormInputs(prng: Prng, rows: number, cols: number): Float32Array[] {
  const x = normal(prng, rows * cols, 2);
  const mean = new Float32Array(rows);
  const invStd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < cols; j++) m += x[r * cols + j] / cols;
    let v = 0;
    for (let j = 0; j < cols; j++) v += (x[r * cols + j] - m) ** 2 / cols;
    mean[r] = m;
    invStd[r] = 1 / Math.sqrt(v + 1e-5);
  }
  return [normal(prng, rows * cols), x, normal(prng, cols), mean, invStd];
}

Deno.test("LayerNormGrad matches float64 r·(g − mean(g) − x̂·mean(g·x̂)), Σ dY·x̂ and Σ dY, at every width", () => {
  const prng = new Prng(15);
  // 64 columns fill every vector width; 37 leave tails; 700 rows make several blocks.
  for (const [rows, cols] of [[700, 64], [300, 37]]) {
    const [dy, x, scale, mean, invStd] = layerNormInputs(prng, rows, cols);
    const got = runLayerNormGrad(rows, cols, [dy, x, scale, mean, invStd]);
    const want = new Float64Array(rows * cols);
    // Column sums of dY·x̂ and dY, and of their magnitudes (the scale of their rounding).
    const sums = { scale: new Float64Array(cols), bias: new Float64Array(cols) };
    const mags = { scale: new Float64Array(cols), bias: new Float64Array(cols) };
    for (let r = 0; r < rows; r++) {
      const xhat = (j: number) => (x[r * cols + j] - mean[r]) * invStd[r];
      for (let j = 0; j < cols; j++) {
        const d = dy[r * cols + j];
        sums.scale[j] += d * xhat(j);
        mags.scale[j] += Math.abs(d * xhat(j));
        sums.bias[j] += d;
        mags.bias[j] += Math.abs(d);
      }
      const g = (j: number) => dy[r * cols + j] * scale[j];
      let a = 0;
      let b = 0;
      for (let j = 0; j < cols; j++) {
        a += g(j) / cols;
        b += g(j) * xhat(j) / cols;
      }
      for (let j = 0; j < cols; j++) want[r * cols + j] = invStd[r] * (g(j) - a - xhat(j) * b);
    }
    // |dX| reaches ~10 where g and x̂ are large: error relative to the row's scale.
    assert(maxError(got.dx, want, 1) < 2e-6, `[${rows}, ${cols}]: ${maxError(got.dx, want, 1)}`);
    for (const k of ["scale", "bias"] as const) {
      const sum = k === "scale" ? got.dScale : got.dBias;
      let worst = 0;
      for (let j = 0; j < cols; j++) {
        worst = Math.max(worst, Math.abs(sum[j] - sums[k][j]) / mags[k][j]);
      }
      assert(worst < 1e-6, `d${k} [${rows}, ${cols}]: error ${worst} of Σ|terms|`);
    }
    const one = runLayerNormGrad(rows, cols, [dy, x, scale, mean, invStd], 1);
    for (const [threads, simd] of [[2, undefined], [1, "sse2"], [2, "avx2"]] as const) {
      const other = runLayerNormGrad(rows, cols, [dy, x, scale, mean, invStd], threads, simd);
      for (const k of ["dx", "dScale", "dBias"] as const) {
        assertEquals(bytes(other[k]), bytes(one[k]), `${k}, ${threads} threads ${simd ?? ""}`);
      }
    }
  }
});

/** Whether a native session of `model` ran `op`'s kernel (ORT's profile names each node's op). */
function ranNative(model: Uint8Array, feeds: Record<string, NativeTensor>, op: string): boolean {
  return profiledOpTypes(model, feeds, { customOpLibraries: [LIB] }).has(op);
}

Deno.test("ColumnSums: the same bits as ORT's ReduceSum over rows, at every width and thread count", async () => {
  const prng = new Prng(16);
  // 256 columns: four tasks; 37: tails at every width; 3072 rows as the transformer's biases.
  for (const [rows, cols] of [[3072, 256], [50, 37], [1, 5]]) {
    const g = new Graph("column_sums");
    g.output(columnSums(g.input("x", "float32", [rows, cols])), "y");
    const model = g.toModel();
    const x = { data: normal(prng, rows * cols), dims: [rows, cols] };
    const portable = await Session.create(model, { threads: 1 });
    const want = (await portable.run({ x: tensor("float32", x.data, x.dims) })).y;
    await portable.release();
    assertEquals(want.dims, [1, cols]);
    for (const [threads, simd] of THREADS_AND_WIDTHS) {
      const s = openNative(model, threads, simd);
      const got = s.run({ x }).y.data as Float32Array;
      s.close();
      assert(ranNative(model, { x }, "ColumnSums"), "the native kernel ran, not the definition");
      assertEquals(
        bytes(got),
        bytes(want.data as Float32Array),
        `[${rows}, ${cols}], ${threads} ${simd ?? ""}`,
      );
    }
  }
});

/**
 * Asserts that the native kernels of `model` give its ONNX definition's bits (the portable run)
 * for each of `outputs`, at every width and thread count; names the first differing element.
 */
async function assertDefinitionBits(
  model: Uint8Array,
  feeds: Record<string, NativeTensor>,
  outputs: readonly string[],
  label: string,
): Promise<void> {
  const portable = await Session.create(model, { threads: 1 });
  const want = await portable.run(
    Object.fromEntries(
      Object.entries(feeds).map(([k, t]) => [k, tensor("float32", t.data as Float32Array, t.dims)]),
    ),
  );
  await portable.release();
  for (const [threads, simd] of THREADS_AND_WIDTHS) {
    const s = openNative(model, threads, simd);
    const got = s.run(feeds);
    s.close();
    for (const k of outputs) {
      const a = new Uint32Array((got[k].data as Float32Array).slice().buffer);
      const b = new Uint32Array((want[k].data as Float32Array).slice().buffer);
      const first = a.findIndex((v, i) => v !== b[i]);
      assertEquals(first, -1, `${k} ${label}, ${threads} threads ${simd ?? ""}: element ${first}`);
    }
  }
}

Deno.test("BiasResidual: the same bits as ORT's two Adds, at every width and thread count", async () => {
  const prng = new Prng(20);
  // 64 columns: the transformer's residual stream; 37: tails at every width.
  for (const [rows, cols] of [[3072, 64], [50, 37]]) {
    const g = new Graph("bias_residual");
    const x = g.input("x", "float32", [rows, cols]);
    g.output(
      biasResidual(x, g.input("y", "float32", [rows, cols]), g.input("b", "float32", [cols])),
      "z",
    );
    const model = g.toModel();
    const feeds: Record<string, NativeTensor> = {
      x: { data: normal(prng, rows * cols, 3), dims: [rows, cols] },
      y: { data: normal(prng, rows * cols), dims: [rows, cols] },
      b: { data: normal(prng, cols, 0.1), dims: [cols] },
    };
    await assertDefinitionBits(model, feeds, ["z"], `[${rows}, ${cols}]`);
    assert(ranNative(model, feeds, "BiasResidual"), "the native kernel ran, not the definition");
  }
});

Deno.test("BiasGeluGrad: the same bits as ORT's Mul and row sums, at every width and thread count", async () => {
  const prng = new Prng(23);
  // The transformer's MLP [32, 96, 256]; [4, 25, 37]: tails at every width.
  for (const dims of [[32, 96, 256], [4, 25, 37]]) {
    const n = dims.reduce((a, b) => a * b, 1);
    const g = new Graph("bias_gelu_grad");
    const [dx, db] = biasGeluGrad(g.input("dy", "float32", dims), g.input("s", "float32", dims));
    g.output(dx, "dx");
    g.output(db, "db");
    const model = g.toModel();
    const feeds: Record<string, NativeTensor> = {
      dy: { data: normal(prng, n, 1e-3), dims },
      s: { data: normal(prng, n), dims },
    };
    await assertDefinitionBits(model, feeds, ["dx", "db"], `[${dims}]`);
    assert(ranNative(model, feeds, "BiasGeluGrad"), "the native kernel ran, not the definition");
  }
});

Deno.test("AdamW: the same bits as its ONNX definition, at every width and thread count", async () => {
  const prng = new Prng(17);
  for (const n of [40_000, 37]) {
    const g = new Graph("adamw");
    const vec = (name: string) => g.input(name, "float32", [n]);
    const sc = (name: string) => g.input(name, "float32", []);
    const [p1, m1, v1] = adamW(vec("p"), vec("m"), vec("v"), vec("g"), vec("mask"), {
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
    g.output(p1, "p1");
    g.output(m1, "m1");
    g.output(v1, "v1");
    const model = g.toModel();
    const v = normal(prng, n).map((x) => x * x * 1e-6); // second moments ≥ 0, some tiny
    const feeds: Record<string, NativeTensor> = {
      p: { data: normal(prng, n), dims: [n] },
      m: { data: normal(prng, n, 1e-3), dims: [n] },
      v: { data: v, dims: [n] },
      g: { data: normal(prng, n, 0.1), dims: [n] },
      mask: {
        data: Float32Array.from({ length: n }, () => (prng.nextFloat() < 0.7 ? 1 : 0)),
        dims: [n],
      },
      clip: { data: Float32Array.of(0.37), dims: [] },
      lrWd: { data: Float32Array.of(3e-4 * 0.1), dims: [] },
      stepSize: { data: Float32Array.of(3e-4 / (1 - 0.9 ** 7)), dims: [] },
      bc2Sqrt: { data: Float32Array.of(Math.sqrt(1 - 0.999 ** 7)), dims: [] },
    };
    await assertDefinitionBits(model, feeds, ["p1", "m1", "v1"], `[${n}]`);
    assert(ranNative(model, feeds, "AdamW"), "the native kernel ran, not the definition");
  }
});

Deno.test("RowLayerNorm matches float64 LayerNormalization, its statistics too, at every width", () => {
  const prng = new Prng(18);
  // 64 columns fill every vector width; 37 leave tails; 700 rows make several blocks.
  for (const [rows, cols] of [[700, 64], [300, 37]]) {
    const g = new Graph("row_layer_norm");
    const x = g.input("x", "float32", [rows, cols]);
    const y = rowLayerNorm(x, g.input("s", "float32", [cols]), g.input("b", "float32", [cols]));
    const [, mean, invStd] = g.nodes.find((n) => n.outputs[0] === y)!.outputs;
    g.output(y, "y");
    g.output(mean, "mean");
    g.output(invStd, "invStd");
    const model = g.toModel();
    // Rows offset from 0 and scaled, as a residual stream is.
    const xs = normal(prng, rows * cols).map((v, i) => 3 + (1 + (i % 5)) * v);
    const feeds: Record<string, NativeTensor> = {
      x: { data: xs, dims: [rows, cols] },
      s: { data: normal(prng, cols), dims: [cols] },
      b: { data: normal(prng, cols), dims: [cols] },
    };
    const run = (threads: number, simd?: Simd) => {
      const s = openNative(model, threads, simd);
      try {
        const out = s.run(feeds);
        return ["y", "mean", "invStd"].map((k) => out[k].data as Float32Array);
      } finally {
        s.close();
      }
    };
    const [gotY, gotMean, gotInv] = run(1);
    const wantY = new Float64Array(rows * cols);
    const wantMean = new Float64Array(rows);
    const wantInv = new Float64Array(rows);
    const [sc, bi] = [feeds.s.data as Float32Array, feeds.b.data as Float32Array];
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (let j = 0; j < cols; j++) m += xs[r * cols + j] / cols;
      let v = 0;
      for (let j = 0; j < cols; j++) v += (xs[r * cols + j] - m) ** 2 / cols;
      const inv = 1 / Math.sqrt(v + 1e-5);
      [wantMean[r], wantInv[r]] = [m, inv];
      for (let j = 0; j < cols; j++) {
        wantY[r * cols + j] = (xs[r * cols + j] - m) * inv * sc[j] + bi[j];
      }
    }
    assert(maxError(gotY, wantY, 1) < 2e-6, `Y [${rows}, ${cols}]: ${maxError(gotY, wantY, 1)}`);
    assert(maxError(gotMean, wantMean, 1) < 1e-6, `mean: ${maxError(gotMean, wantMean, 1)}`);
    assert(maxError(gotInv, wantInv, 0) < 1e-6, `1/σ: ${maxError(gotInv, wantInv, 0)}`);
    for (const [threads, simd] of THREADS_AND_WIDTHS.slice(1)) {
      const other = run(threads, simd);
      assertEquals(
        other.map(bytes),
        [gotY, gotMean, gotInv].map(bytes),
        `${threads} ${simd ?? ""}`,
      );
    }
    assert(ranNative(model, feeds, "RowLayerNorm"), "the native kernel ran, not the definition");
  }
});

Deno.test("MaskedCrossEntropy and its gradient match float64, at every width and thread count", () => {
  const prng = new Prng(19);
  // 30 classes (the copy task's) leave tails at every width; 700 × 37 makes two row blocks.
  for (const dims of [[4, 25, 30], [700, 37]]) {
    const v = dims.at(-1)!;
    const rowDims = dims.slice(0, -1);
    const rows = rowDims.reduce((a, b) => a * b, 1);
    const g = new Graph("masked_cross_entropy");
    const logits = g.input("logits", "float32", dims);
    const targets = g.input("targets", "int32", rowDims);
    const mask = g.input("mask", "float32", rowDims);
    const dLoss = g.input("dloss", "float32", []);
    g.output(maskedCrossEntropy(logits, targets, mask), "loss");
    g.output(maskedCrossEntropyGrad(dLoss, logits, targets, mask), "dlogits");
    const model = g.toModel();
    const x = normal(prng, rows * v, 3);
    // Targets in range but for two rows (−1 and V match no class); mask weights 0, ½ and 1.
    const t = Int32Array.from({ length: rows }, () => Math.floor(prng.nextFloat() * v));
    [t[3], t[7]] = [-1, v];
    const m = Float32Array.from({ length: rows }, (_, r) => [1, 0, 0.5, 1][r % 4]);
    const feeds: Record<string, NativeTensor> = {
      logits: { data: x, dims },
      targets: { data: t, dims: rowDims },
      mask: { data: m, dims: rowDims },
      dloss: { data: Float32Array.of(0.37), dims: [] },
    };
    let wantLoss = 0;
    let count = 0;
    const wantGrad = new Float64Array(rows * v);
    for (let r = 0; r < rows; r++) count += m[r];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * v, (r + 1) * v));
      const top = Math.max(...row);
      const z = row.reduce((a, b) => a + Math.exp(b - top), 0);
      if (t[r] < 0 || t[r] >= v) continue;
      wantLoss += m[r] * (Math.log(z) + top - row[t[r]]);
      for (let j = 0; j < v; j++) {
        const p = Math.exp(row[j] - top) / z;
        wantGrad[r * v + j] = (0.37 * m[r] / count) * (p - (j === t[r] ? 1 : 0));
      }
    }
    wantLoss /= count;
    const run = (threads: number, simd?: Simd) => {
      const s = openNative(model, threads, simd);
      try {
        const out = s.run(feeds);
        return [out.loss.data, out.dlogits.data] as Float32Array[];
      } finally {
        s.close();
      }
    };
    const [loss, grad] = run(1);
    assert(Math.abs(loss[0] - wantLoss) / wantLoss < 1e-7, `loss ${loss[0]} vs ${wantLoss}`);
    const scale = 0.37 / count;
    assert(maxError(grad, wantGrad, scale) < 2e-7, `dLogits: ${maxError(grad, wantGrad, scale)}`);
    for (const [threads, simd] of THREADS_AND_WIDTHS.slice(1)) {
      const other = run(threads, simd);
      assertEquals(other.map(bytes), [loss, grad].map(bytes), `${dims} ${threads} ${simd ?? ""}`);
    }
    for (const op of ["MaskedCrossEntropy", "MaskedCrossEntropyGrad"]) {
      assert(ranNative(model, feeds, op), `${op}: the native kernel ran, not the definition`);
    }
  }
});

Deno.test("NativeSession: profilePrefix writes ORT's trace on close, custom ops included", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const s = NativeSession.create(opModel("GeluGrad", [2, 3], [2, 3]), {
      customOpLibraries: [LIB],
      profilePrefix: `${dir}/trace`,
    });
    const t = { data: new Float32Array(6), dims: [2, 3] };
    s.run({ a: t, b: t });
    s.close();
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(files.length, 1);
    assert(files[0].startsWith("trace") && files[0].endsWith(".json"), files[0]);
    const events: { cat?: string; args?: { op_name?: string } }[] = JSON.parse(
      Deno.readTextFileSync(`${dir}/${files[0]}`),
    );
    assert(events.some((e) => e.cat === "Node" && e.args?.op_name === "GeluGrad"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
