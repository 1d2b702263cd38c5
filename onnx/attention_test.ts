import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import {
  applyRope,
  type AttentionParams,
  causalSelfAttention,
  headBias,
  ropeTables,
} from "./attention.ts";
import { alibiBias, alibiSlopes, causalBias, hardAlibiBias } from "./attention_bias.ts";
import { gradCheck } from "./gradcheck.ts";
import { Graph, type Value } from "./graph.ts";
import { matMul, transpose } from "./ops.ts";
import { Session, tensor } from "./runtime.ts";

/** Runs `g` once on float32 inputs and returns its first output. */
async function run1(g: Graph, feeds: Record<string, Float32Array>): Promise<Float32Array> {
  const session = await Session.create(g.toModel(), { threads: 1 });
  try {
    const inputs = Object.fromEntries(
      g.inputs.map((v) => [v.name, tensor("float32", feeds[v.name], v.shape as number[])]),
    );
    const out = await session.run(inputs);
    return out[g.outputs[0].name].data as Float32Array;
  } finally {
    await session.release();
  }
}

function normals(prng: Prng, n: number, std = 1): Float32Array {
  return new Float32Array(n).map(() => prng.normal() * std);
}

/** Random attention weights of width C as graph constants. */
function randomParams(g: Graph, C: number, prng: Prng): AttentionParams {
  return {
    qkvW: g.constant(normals(prng, C * 3 * C, 0.5), [C, 3 * C]),
    qkvB: g.constant(normals(prng, 3 * C, 0.1), [3 * C]),
    projW: g.constant(normals(prng, C * C, 0.5), [C, C]),
    projB: g.constant(normals(prng, C, 0.1), [C]),
  };
}

/**
 * Which output positions change when the input at position s changes: changed[s][t] for the
 * attention of x [B, T, C] under `bias` (per-head [T, T] arrays).
 */
async function dependence(T: number, C: number, heads: number, biases: Float32Array[]) {
  const B = 2;
  const prng = new Prng(7);
  const g = new Graph("dependence");
  const x = g.input("x", "float32", [B, T, C]);
  g.output(causalSelfAttention(x, randomParams(g, C, prng), {
    heads,
    bias: headBias(g, biases, T),
  }));
  const base = normals(prng, B * T * C);
  const y0 = await run1(g, { x: base });
  const changed: boolean[][] = [];
  for (let s = 0; s < T; s++) {
    const xs = base.slice();
    for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) xs[(b * T + s) * C + c] += 1;
    const ys = await run1(g, { x: xs });
    changed.push(Array.from({ length: T }, (_, t) => {
      let d = 0;
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          const i = (b * T + t) * C + c;
          d = Math.max(d, Math.abs(ys[i] - y0[i]));
        }
      }
      return d > 1e-5;
    }));
  }
  return changed;
}

Deno.test("causal attention: position t never sees a later token", async () => {
  const T = 7;
  const changed = await dependence(T, 8, 2, [causalBias(T)]);
  for (let s = 0; s < T; s++) {
    for (let t = 0; t < T; t++) assertEquals(changed[s][t], s <= t, `token ${s} → output ${t}`);
  }
});

Deno.test("Hard-ALiBi head with window m sees exactly the last m positions", async () => {
  const T = 8;
  for (const m of [1, 2, 3, 5]) {
    const changed = await dependence(T, 4, 1, [hardAlibiBias(T, m)]);
    for (let s = 0; s < T; s++) {
      for (let t = 0; t < T; t++) {
        assertEquals(changed[s][t], t - m < s && s <= t, `window ${m}: token ${s} → output ${t}`);
      }
    }
  }
});

Deno.test("the bias of head h weights its values by softmax(bias_h) when q·k = 0", async () => {
  // W_qkv = [0 | 0 | I] and W_proj = I: head h of the output is Σ_j softmax(bias_h[t])_j·x_j.
  const [B, T, C, H] = [1, 5, 4, 2];
  const hs = C / H;
  const g = new Graph("alibi");
  const x = g.input("x", "float32", [B, T, C]);
  const qkvW = new Float32Array(C * 3 * C);
  for (let i = 0; i < C; i++) qkvW[i * 3 * C + 2 * C + i] = 1;
  const eye = new Float32Array(C * C).map((_, i) => (i % (C + 1) === 0 ? 1 : 0));
  const slopes = alibiSlopes(H);
  const biases = slopes.map((s) => alibiBias(T, s));
  g.output(causalSelfAttention(x, {
    qkvW: g.constant(qkvW, [C, 3 * C]),
    qkvB: g.constant(new Float32Array(3 * C), [3 * C]),
    projW: g.constant(eye, [C, C]),
    projB: g.constant(new Float32Array(C), [C]),
  }, { heads: H, bias: headBias(g, biases, T) }));
  const xs = normals(new Prng(3), B * T * C);
  const y = await run1(g, { x: xs });
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      // softmax over j ≤ t of −slope·(t − j)
      const w = Array.from({ length: t + 1 }, (_, j) => Math.exp(-slopes[h] * (t - j)));
      const z = w.reduce((a, b) => a + b, 0);
      for (let e = 0; e < hs; e++) {
        const c = h * hs + e;
        const want = w.reduce((acc, wj, j) => acc + (wj / z) * xs[j * C + c], 0);
        assertAlmostEquals(y[t * C + c], want, 1e-5);
      }
    }
  }
});

Deno.test("RoPE matches GPT-NeoX's rotate_half formula on the rotated dims only", async () => {
  const [T, hs, rd] = [6, 8, 4];
  const g = new Graph("rope");
  const x = g.input("x", "float32", [1, 1, T, hs]);
  g.output(applyRope(x, ropeTables(g, T, hs, rd)));
  const xs = normals(new Prng(5), T * hs);
  const y = await run1(g, { x: xs });
  const half = rd / 2;
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < hs; d++) {
      const xv = xs[t * hs + d];
      let want = xv;
      if (d < rd) {
        const i = d % half;
        const angle = t * 10000 ** (-2 * i / rd);
        // rotate_half(x) = cat(−x[half:rd], x[:half])
        const rot = d < half ? -xs[t * hs + d + half] : xs[t * hs + d - half];
        want = xv * Math.cos(angle) + rot * Math.sin(angle);
      }
      assertAlmostEquals(y[t * hs + d], want, 1e-5, `t ${t}, dim ${d}`);
    }
  }
});

Deno.test("RoPE scores depend only on the relative position (shift invariance)", async () => {
  // The same query vector at every position against the same key vector at every position:
  // S[i][j] = rope(q, i)·rope(k, j) must equal S[i + d][j + d].
  const [T, hs, rd] = [12, 8, 4];
  const g = new Graph("rope-shift");
  const q = g.input("q", "float32", [1, 1, T, hs]);
  const k = g.input("k", "float32", [1, 1, T, hs]);
  const tables = ropeTables(g, T, hs, rd);
  g.output(matMul(applyRope(q, tables), transpose(applyRope(k, tables), [0, 1, 3, 2])));
  const prng = new Prng(11);
  const q0 = normals(prng, hs);
  const k0 = normals(prng, hs);
  const tile = (v: Float32Array) => new Float32Array(T * hs).map((_, i) => v[i % hs]);
  const s = await run1(g, { q: tile(q0), k: tile(k0) });
  let spread = 0;
  for (let i = 0; i + 1 < T; i++) {
    for (let j = 0; j + 1 < T; j++) {
      assertAlmostEquals(s[(i + 1) * T + j + 1], s[i * T + j], 1e-4, `(${i}, ${j})`);
      spread = Math.max(spread, Math.abs(s[i * T + j] - s[0]));
    }
  }
  assertLess(1e-2, spread, "scores should vary with i − j");
});

Deno.test("gradients of attention with ALiBi and RoPE match finite differences", async () => {
  const [B, T, C, H] = [2, 4, 4, 2];
  const prng = new Prng(13);
  const r = await gradCheck({
    dtype: "float64",
    inputs: [
      { shape: [B, T, C] },
      { shape: [C, 3 * C] },
      { shape: [3 * C] },
      { shape: [C, C] },
      { shape: [C] },
    ],
    build: ([x, qkvW, qkvB, projW, projB]: Value[]) => {
      const g = x.graph;
      const bias = headBias(g, alibiSlopes(H).map((s) => alibiBias(T, s)), T, "float64");
      const rope = ropeTables(g, T, C / H, 2, { dtype: "float64" });
      return causalSelfAttention(x, { qkvW, qkvB, projW, projB }, { heads: H, bias, rope });
    },
  }, () => prng.nextFloat());
  assertLess(r.maxError, 1e-6, JSON.stringify(r.worst));
});

Deno.test("attention errors name what is wrong", () => {
  const g = new Graph("errors");
  const x = g.input("x", "float32", [1, 4, 6]);
  const p = randomParams(g, 6, new Prng(1));
  assertThrows(
    () => causalSelfAttention(x, p, { heads: 4, bias: headBias(g, [causalBias(4)], 4) }),
    RangeError,
    "heads must divide the width 6: current value is 4",
  );
  assertThrows(
    () => causalSelfAttention(x, p, { heads: 2, bias: headBias(g, [causalBias(3)], 3) }),
    TypeError,
    "the bias must be [2 or 1, 4, 4]",
  );
  assertThrows(() => headBias(g, [causalBias(3)], 4), TypeError, "head 0 is not [4, 4]");
  assertThrows(() => ropeTables(g, 4, 6, 3), RangeError, "rotaryDims must be even");
});
