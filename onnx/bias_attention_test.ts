import { assert, assertEquals, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { buildNativeOps } from "../native/build.ts";
import { headBias } from "./attention.ts";
import { alibiBias, causalBias, hardAlibiBias, MASKED } from "./attention_bias.ts";
import { gradients } from "./autodiff.ts";
import { Graph, type Value } from "./graph.ts";
import { NativeSession, type NativeTensor } from "./native_session.ts";
import { add, matMul, mul, reduceSum, reshape, softmax, split, transpose } from "./ops.ts";
import { biasAttention, biasAttentionGrad } from "./custom/attention.ts";
import { nativeEngine, PORTABLE_ENGINE, Session, tensor } from "./runtime.ts";

const LIB = await buildNativeOps();

function normal(prng: Prng, n: number, std = 1): Float32Array {
  return Float32Array.from({ length: n }, () => std * prng.normal());
}

function bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Asserts that `got` and `want` hold the same float32 bits, naming the first that differs and how
 * many do (assertEquals' diff of long arrays takes minutes).
 */
function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assertEquals(got.length, want.length, `${what}: length`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let first = -1;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  assert(
    first < 0,
    `${what}: ${count} of ${a.length} differ, first [${first}]: ${got[first]} vs ${want[first]}`,
  );
}

/** Per-head biases [T, T]: Hard-ALiBi window 3, causal, ALiBi slope 0.3, cycled over H heads. */
function mixedBiases(H: number, T: number): Float32Array[] {
  const kinds = [hardAlibiBias(T, 3), causalBias(T), alibiBias(T, 0.3)];
  return Array.from({ length: H }, (_, h) => kinds[h % kinds.length]);
}

/** A graph of y = BiasAttention(qkv) and dqkv = BiasAttentionGrad(dy, qkv). */
function attentionModel(B: number, T: number, H: number, hs: number, biases: Float32Array[]) {
  const g = new Graph("bias_attention");
  const C = H * hs;
  const qkv = g.input("qkv", "float32", [B, T, 3 * C]);
  const dy = g.input("dy", "float32", [B, T, C]);
  const bias = headBias(g, biases, T);
  g.output(biasAttention(qkv, bias, 0.35), "y");
  g.output(biasAttentionGrad(dy, qkv, bias, g.scalar(0.35, "float32")), "dqkv");
  return g.toModel();
}

interface Case {
  B: number;
  T: number;
  H: number;
  hs: number;
  biases: Float32Array[];
  qkv: Float32Array;
  dy: Float32Array;
}

function randomCase(seed: number, B: number, T: number, H: number, hs: number): Case {
  const prng = new Prng(seed);
  const C = H * hs;
  return {
    B,
    T,
    H,
    hs,
    biases: mixedBiases(H, T),
    qkv: normal(prng, B * T * 3 * C),
    dy: normal(prng, B * T * C),
  };
}

/**
 * Runs the native kernels at the widest vectors the CPU has, or at most `simd` ("sse2": 4
 * lanes, "avx2": 8).
 */
function runNative(
  c: Case,
  threads: number,
  simd?: "sse2" | "avx2",
): { y: Float32Array; dqkv: Float32Array } {
  if (simd) Deno.env.set("CLAIMBENCH_NATIVE_SIMD", simd);
  let s: NativeSession;
  try {
    s = NativeSession.create(attentionModel(c.B, c.T, c.H, c.hs, c.biases), {
      threads,
      customOpLibraries: [LIB],
    });
  } finally {
    Deno.env.delete("CLAIMBENCH_NATIVE_SIMD");
  }
  try {
    const C = c.H * c.hs;
    const out = s.run({
      qkv: { data: c.qkv, dims: [c.B, c.T, 3 * C] } as NativeTensor,
      dy: { data: c.dy, dims: [c.B, c.T, C] } as NativeTensor,
    });
    return { y: out.y.data as Float32Array, dqkv: out.dqkv.data as Float32Array };
  } finally {
    s.close();
  }
}

/**
 * The attention and its gradient in float64 from the definition (every key computed), but for
 * the biased scores, rounded to float32 as the kernels and ORT round them.
 */
function reference(c: Case): { y: Float64Array; dqkv: Float64Array } {
  const { B, T, H, hs } = c;
  const C = H * hs;
  const scale = Math.fround(0.35);
  const y = new Float64Array(B * T * C);
  const dqkv = new Float64Array(B * T * 3 * C);
  const at = (b: number, t: number, part: number, h: number, d: number) =>
    (b * T + t) * 3 * C + part * C + h * hs + d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const s = Array.from({ length: T }, (_, j) => {
          let dot = 0;
          for (let d = 0; d < hs; d++) dot += c.qkv[at(b, i, 0, h, d)] * c.qkv[at(b, j, 1, h, d)];
          // Rounded as float32 adds the bias: in a fully masked row −1e9 + s rounds to −1e9 for
          // every key, so the weights are uniform, as in any float32 implementation.
          return Math.fround(Math.fround(scale * dot) + c.biases[h][i * T + j]);
        });
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, v) => a + v, 0);
        const p = e.map((v) => v / z);
        const dyi = (d: number) => c.dy[(b * T + i) * C + h * hs + d];
        const dp = p.map((_, j) => {
          let dot = 0;
          for (let d = 0; d < hs; d++) dot += dyi(d) * c.qkv[at(b, j, 2, h, d)];
          return dot;
        });
        const cc = p.reduce((a, v, j) => a + v * dp[j], 0);
        for (let j = 0; j < T; j++) {
          const ds = p[j] * (dp[j] - cc);
          for (let d = 0; d < hs; d++) {
            y[(b * T + i) * C + h * hs + d] += p[j] * c.qkv[at(b, j, 2, h, d)];
            dqkv[at(b, i, 0, h, d)] += scale * ds * c.qkv[at(b, j, 1, h, d)];
            dqkv[at(b, j, 1, h, d)] += scale * ds * c.qkv[at(b, i, 0, h, d)];
            dqkv[at(b, j, 2, h, d)] += p[j] * dyi(d);
          }
        }
      }
    }
  }
  return { y, dqkv };
}

/** Largest |got − want| relative to the largest |want|. */
function relativeError(got: Float32Array, want: Float64Array): number {
  let e = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return e / scale;
}

Deno.test("BiasAttention's native kernels match float64 attention and its gradient", () => {
  // hs 16 and 8 fill whole AVX2 vectors; hs 5 takes the one-lane path; T 37 and 40 leave
  // partial groups of keys.
  for (const [seed, B, T, H, hs] of [[1, 2, 40, 3, 16], [2, 3, 37, 3, 8], [3, 2, 9, 3, 5]]) {
    const c = randomCase(seed, B, T, H, hs);
    const got = runNative(c, 1);
    const want = reference(c);
    const ey = relativeError(got.y, want.y);
    const eg = relativeError(got.dqkv, want.dqkv);
    assert(ey < 2e-6 && eg < 2e-6, `[${B}, ${T}, ${H}, ${hs}]: y ${ey}, dqkv ${eg}`);
  }
});

Deno.test("BiasAttention's native kernels give the same bits on 1 and 2 threads, at every width", () => {
  for (const [seed, hs] of [[4, 16], [5, 8], [6, 5]]) {
    const c = randomCase(seed, 3, 41, 3, hs);
    const one = runNative(c, 1);
    for (const [threads, simd] of [[2, undefined], [1, "sse2"], [2, "avx2"]] as const) {
      const other = runNative(c, threads, simd);
      assertSameBits(other.y, one.y, `hs ${hs}: y, ${threads} threads ${simd ?? ""}`);
      assertSameBits(other.dqkv, one.dqkv, `hs ${hs}: dqkv, ${threads} threads ${simd ?? ""}`);
    }
  }
});

Deno.test("BiasAttention's banded rows (Hard-ALiBi windows 1 to 9) give the general path's bits", () => {
  // Windows up to 8 keys go 8 or 16 query rows per vector on the AVX2 and AVX-512 paths; the
  // SSE2 path computes every row alone. T 70 leaves rows of each head outside whole bands, and
  // window 9 stays on the general path. hs 5 makes an odd number of dims.
  for (const [seed, hs] of [[8, 16], [9, 5]]) {
    const T = 70;
    const c: Case = {
      ...randomCase(seed, 2, T, 9, hs),
      biases: Array.from({ length: 9 }, (_, h) => hardAlibiBias(T, h + 1)),
    };
    const sse2 = runNative(c, 1, "sse2");
    for (const [threads, simd] of [[1, undefined], [2, "avx2"]] as const) {
      const other = runNative(c, threads, simd);
      assertSameBits(other.y, sse2.y, `hs ${hs}: y, ${simd ?? "widest"}`);
      assertSameBits(other.dqkv, sse2.dqkv, `hs ${hs}: dqkv, ${simd ?? "widest"}`);
    }
    const want = reference(c);
    const ey = relativeError(sse2.y, want.y);
    const eg = relativeError(sse2.dqkv, want.dqkv);
    assert(ey < 2e-6 && eg < 2e-6, `hs ${hs}: y ${ey}, dqkv ${eg}`);
  }
});

Deno.test("BiasAttention's native kernels handle fully masked rows and scattered masks", () => {
  const T = 12;
  const prng = new Prng(6);
  // Head 0: row 0 fully masked (computed in full, as the definition does); head 1: a random
  // pattern with holes inside rows, whose key ranges do not grow with the row.
  const full = causalBias(T);
  full.fill(MASKED, 0, T);
  const holes = Float32Array.from({ length: T * T }, () => (prng.nextInt(3) === 0 ? MASKED : 0.2));
  for (let i = 0; i < T; i++) holes[i * T + ((i * 5) % T)] = 0;
  const c: Case = { ...randomCase(7, 2, T, 2, 8), biases: [full, holes] };
  const got = runNative(c, 2);
  const want = reference(c);
  const ey = relativeError(got.y, want.y);
  const eg = relativeError(got.dqkv, want.dqkv);
  assert(ey < 2e-6 && eg < 2e-6, `y ${ey}, dqkv ${eg}`);
});

Deno.test("BiasAttention's portable definition computes the composition's bits", async () => {
  // The ONNX definitions mirror the composition and what autodiff emits for it, so the
  // portable engine trains exactly as it did before the op existed.
  const [B, T, H, hs] = [2, 11, 3, 4];
  const C = H * hs;
  const biases = mixedBiases(H, T);
  const build = (fused: boolean) => {
    const g = new Graph("attention");
    const qkv = g.input("qkv", "float32", [B, T, 3 * C]);
    const w = g.input("w", "float32", [B, T, C]);
    const bias = headBias(g, biases, T);
    let y: Value;
    if (fused) {
      y = biasAttention(qkv, bias, 1 / Math.sqrt(hs));
    } else {
      const heads = transpose(reshape(qkv, [B, T, 3 * H, hs]), [0, 2, 1, 3]);
      const [q, k, v] = split(heads, [H, H, H], 1);
      const scores = matMul(mul(q, 1 / Math.sqrt(hs)), transpose(k, [0, 1, 3, 2]));
      const att = softmax(add(scores, bias), { axis: -1 });
      y = reshape(transpose(matMul(att, v), [0, 2, 1, 3]), [B, T, C]);
    }
    g.output(y, "y");
    g.output(gradients(reduceSum(mul(y, w)), [qkv])[0], "dqkv");
    return g.toModel();
  };
  const prng = new Prng(8);
  const feeds = {
    qkv: tensor("float32", normal(prng, B * T * 3 * C), [B, T, 3 * C]),
    w: tensor("float32", normal(prng, B * T * C), [B, T, C]),
  };
  const outs = [];
  for (const fused of [false, true]) {
    const s = await Session.create(build(fused), { threads: 1, engine: PORTABLE_ENGINE });
    outs.push(await s.run(feeds));
    await s.release();
  }
  for (const name of ["y", "dqkv"]) {
    assertEquals(
      bytes(outs[1][name].data as Float32Array),
      bytes(outs[0][name].data as Float32Array),
      name,
    );
  }
});

Deno.test("Session runs BiasAttention natively when given the library, portably otherwise", async () => {
  const c = randomCase(9, 2, 10, 3, 8);
  const C = c.H * c.hs;
  const model = attentionModel(c.B, c.T, c.H, c.hs, c.biases);
  const feeds = {
    qkv: tensor("float32", c.qkv, [c.B, c.T, 3 * C]),
    dy: tensor("float32", c.dy, [c.B, c.T, C]),
  };
  const native = await Session.create(model, { threads: 1, engine: nativeEngine(LIB) });
  const portable = await Session.create(model, { threads: 1, engine: PORTABLE_ENGINE });
  try {
    assert(native.native && !portable.native);
    const a = await native.run(feeds);
    const b = await portable.run(feeds);
    assertEquals(bytes(a.y.data as Float32Array), bytes(runNative(c, 1).y));
    assertEquals(a.dqkv.dims, [c.B, c.T, 3 * C]);
    const want = reference(c);
    assert(relativeError(b.y.data as Float32Array, want.y) < 2e-6);
  } finally {
    await native.release();
    await portable.release();
  }
});

Deno.test("BiasAttention names what is wrong with its shapes", () => {
  const g = new Graph("bad");
  const qkv = g.input("qkv", "float32", [2, 5, 18]);
  const ok = headBias(g, mixedBiases(2, 5), 5);
  assertThrows(
    () => biasAttention(qkv, headBias(g, mixedBiases(2, 4), 4), 1),
    TypeError,
    "QKV must be [B, 4, 3·2·hs]",
  );
  assertThrows(
    () => biasAttention(g.input("q2", "float32", [2, 5, 20]), ok, 1),
    TypeError,
    "current shape is [2,5,20]",
  );
  assertThrows(
    () => biasAttentionGrad(g.input("dy", "float32", [2, 5, 7]), qkv, ok, g.scalar(1, "float32")),
    TypeError,
    "dY must be [2,5,6]",
  );
});
