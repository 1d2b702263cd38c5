import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { copyTrainBatch } from "../fixtures/copy_task.ts";
import { gradCheck } from "../onnx/gradcheck.ts";
import { Graph, type Value } from "../onnx/graph.ts";
import { crossEntropy } from "../onnx/nn.ts";
import {
  ADAMW_DEFAULTS,
  buildTrainStep,
  learningRate,
  paramInputs,
  type ParamSpec,
} from "../onnx/optim.ts";
import { Session, type Tensor, tensor } from "../onnx/runtime.ts";
import { advanceFeeds, initialStepState, stateFeeds } from "../onnx/step_state.ts";
import {
  hardAlibiWindows,
  type PositionKind,
  type TransformerConfig,
  transformerLogits,
  transformerParamCount,
  transformerParams,
} from "./transformer.ts";

/** The copy-task model of the benchmark and CLAIMS.md §1.4 (≈104k parameters). */
const BENCH: TransformerConfig = {
  vocab: 30,
  dModel: 64,
  heads: 4,
  layers: 2,
  mlp: 256,
  position: "hard-alibi",
  hardAlibiWindows: hardAlibiWindows(4),
  tiedHead: false,
};

/** A tiny model of each position kind for the numerical tests. */
function tiny(position: PositionKind, extra: Partial<TransformerConfig> = {}): TransformerConfig {
  return {
    vocab: 11,
    dModel: 8,
    heads: 2,
    layers: 2,
    mlp: 12,
    position,
    ...(position === "learned" ? { maxLen: 9 } : {}),
    ...(position === "rope" ? { ropeFraction: 0.5 } : {}),
    ...(position === "hard-alibi" ? { hardAlibiWindows: [2, null] } : {}),
    tiedHead: position !== "learned",
    ...extra,
  };
}

const KINDS: readonly PositionKind[] = ["nope", "learned", "rope", "alibi", "hard-alibi"];

/** Parameters with the model's names and shapes but O(1) values, so every path matters. */
function randomParams(c: TransformerConfig, seed: number): ParamSpec[] {
  const prng = new Prng(seed);
  return transformerParams(c, new Prng(seed)).map((p) => {
    const isGain = p.name.endsWith(".g");
    const init = p.init.map(() => (isGain ? 1 : 0) + prng.normal() * 0.4);
    return { ...p, init };
  });
}

/** Logits [B, T, V] of the model run in ORT. */
async function forward(
  c: TransformerConfig,
  params: readonly ParamSpec[],
  ids: Int32Array,
  B: number,
): Promise<Float32Array> {
  const T = ids.length / B;
  const g = new Graph("forward");
  const p = paramInputs(g, params);
  g.output(transformerLogits(c, p, g.input("ids", "int32", [B, T])), "logits");
  const session = await Session.create(g.toModel(), { threads: 1 });
  try {
    const feeds: Record<string, Tensor> = { ids: tensor("int32", ids, [B, T]) };
    for (const s of params) feeds[`p.${s.name}`] = tensor("float32", s.init, s.shape);
    return (await session.run(feeds)).logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// A plain float64 reference, written from the GPT-2 / GPT-NeoX definitions.

/** erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7). */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly = t * (0.254829592 +
    t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const y = 1 - poly * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

function layerNormRef(x: number[], g: Float32Array, b: Float32Array): number[] {
  const mu = x.reduce((s, v) => s + v, 0) / x.length;
  const variance = x.reduce((s, v) => s + (v - mu) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mu) / Math.sqrt(variance + 1e-5)) * g[i] + b[i]);
}

/** rows [n, in] · W [in, out] (+ bias). */
function affine(rows: number[][], w: Float32Array, out: number, b?: Float32Array): number[][] {
  return rows.map((r) =>
    Array.from(
      { length: out },
      (_, o) => r.reduce((s, v, i) => s + v * w[i * out + o], b?.[o] ?? 0),
    )
  );
}

/** Logits [T, V] of one sequence. */
function reference(c: TransformerConfig, params: readonly ParamSpec[], ids: number[]): number[][] {
  const P = new Map(params.map((p) => [p.name, p.init]));
  const get = (n: string) => P.get(n)!;
  const T = ids.length;
  const C = c.dModel;
  const H = c.heads;
  const hs = C / H;
  const M = c.mlp ?? 4 * C;
  const wte = get("wte");
  let x = ids.map((id, t) =>
    Array.from(
      { length: C },
      (_, i) => wte[id * C + i] + (c.position === "learned" ? get("wpe")[t * C + i] : 0),
    )
  );
  const rd = Math.floor(hs * (c.ropeFraction ?? 0.25));
  const rope = (v: number[], t: number) =>
    v.map((val, d) => {
      if (d >= rd) return val;
      const half = rd / 2;
      const angle = t * 10000 ** (-2 * (d % half) / rd);
      const rot = d < half ? -v[d + half] : v[d - half];
      return val * Math.cos(angle) + rot * Math.sin(angle);
    });
  const visible = (h: number, i: number, j: number) => {
    if (j > i) return false;
    const m = c.position === "hard-alibi" ? c.hardAlibiWindows![h] : null;
    return m === null || i - j < m;
  };
  const slope = (h: number) => 2 ** (-8 * (h + 1) / H);
  for (let l = 0; l < c.layers; l++) {
    const n = `h${l}`;
    const a = x.map((r) => layerNormRef(r, get(`${n}.ln1.g`), get(`${n}.ln1.b`)));
    // Metric heads (CLAIMS.md §3.1): q = p, k = p·A with A the head's dense symmetric metric, v = p.
    const metric = c.attention === "metric";
    const qkv = metric
      ? affine(a, get(`${n}.attn.p.w`), C, get(`${n}.attn.p.b`))
      : affine(a, get(`${n}.attn.qkv.w`), 3 * C, get(`${n}.attn.qkv.b`));
    const y = x.map(() => new Array(C).fill(0));
    for (let h = 0; h < H; h++) {
      const packed = metric ? get(`${n}.attn.m`).subarray(h * hs * (hs + 1) / 2) : undefined;
      const dense = (i: number, j: number) => {
        const [lo, hi] = i <= j ? [i, j] : [j, i];
        return packed![lo * hs - (lo * (lo - 1)) / 2 + (hi - lo)];
      };
      const head = (t: number, part: number) => {
        if (!metric) return qkv[t].slice(part * C + h * hs, part * C + (h + 1) * hs);
        const pt = qkv[t].slice(h * hs, (h + 1) * hs);
        if (part !== 1) return pt;
        return pt.map((_, d) => pt.reduce((acc, v, e) => acc + v * dense(e, d), 0));
      };
      const q = x.map((_, t) => (c.position === "rope" ? rope(head(t, 0), t) : head(t, 0)));
      const k = x.map((_, t) => (c.position === "rope" ? rope(head(t, 1), t) : head(t, 1)));
      for (let i = 0; i < T; i++) {
        const s = q.map((_, j) => {
          if (!visible(h, i, j)) return -Infinity;
          const dot = q[i].reduce((acc, v, d) => acc + v * k[j][d], 0) / Math.sqrt(hs);
          return dot - (c.position === "alibi" ? slope(h) * (i - j) : 0);
        });
        const mx = Math.max(...s);
        const e = s.map((v) => Math.exp(v - mx));
        const z = e.reduce((acc, v) => acc + v, 0);
        for (let j = 0; j < T; j++) {
          const v = head(j, 2);
          for (let d = 0; d < hs; d++) y[i][h * hs + d] += (e[j] / z) * v[d];
        }
      }
    }
    const proj = affine(y, get(`${n}.attn.proj.w`), C, get(`${n}.attn.proj.b`));
    x = x.map((r, t) => r.map((v, i) => v + proj[t][i]));
    const m = x.map((r) => layerNormRef(r, get(`${n}.ln2.g`), get(`${n}.ln2.b`)));
    const hidden = affine(m, get(`${n}.mlp.fc.w`), M, get(`${n}.mlp.fc.b`))
      .map((r) => r.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))));
    const out = affine(hidden, get(`${n}.mlp.proj.w`), C, get(`${n}.mlp.proj.b`));
    x = x.map((r, t) => r.map((v, i) => v + out[t][i]));
  }
  const f = x.map((r) => layerNormRef(r, get("lnf.g"), get("lnf.b")));
  const head = c.tiedHead
    ? Float32Array.from(
      { length: C * c.vocab },
      (_, k) => wte[(k % c.vocab) * C + Math.floor(k / c.vocab)],
    )
    : get("head.w");
  return affine(f, head, c.vocab);
}

// ---------------------------------------------------------------------------------------------

Deno.test("parameter counts follow the formula and the generated parameters", () => {
  // V·C + L·(4C² + 2C·M + 9C + M) + 2C (+ C·V untied, + maxLen·C learned)
  assertEquals(transformerParamCount(BENCH), 103_936);
  assertEquals(transformerParamCount({ ...BENCH, tiedHead: true }), 102_016);
  assertEquals(
    transformerParamCount({
      ...BENCH,
      position: "learned",
      maxLen: 96,
      hardAlibiWindows: undefined,
    }),
    110_080,
  );
  // GPT-NeoX 160M shape of CLAIMS.md §1.2: 12 layers of 12·1024² + 13·1024 non-embedding.
  const neox = {
    ...BENCH,
    vocab: 50_304,
    dModel: 1024,
    heads: 16,
    layers: 12,
    mlp: 4096,
    hardAlibiWindows: hardAlibiWindows(16, 8),
  };
  const nonEmbedding = transformerParamCount({ ...neox, tiedHead: true }) - 50_304 * 1024 - 2048;
  assertEquals(nonEmbedding, 12 * (12 * 1024 ** 2 + 13 * 1024));
  // Metric attention, CLAIMS.md MT3's worked example (N_d 64, N_n 4, N_k 16): the standard
  // block's 4C² = 16,384 attention weights become P 4,096 + M 544 + output 4,096 = 8,736, and
  // the biases 4C = 256 become 2C = 128.
  assertEquals(
    transformerParamCount({ ...BENCH, position: "nope", attention: "metric" }),
    103_936 - (16_384 + 256 - 8_736 - 128) * 2,
  );
  for (const kind of [...KINDS, "nope metric", "learned metric"]) {
    for (const tiedHead of [true, false]) {
      const [position, attention] = kind.split(" ") as [PositionKind, "metric" | undefined];
      const c = tiny(position, { tiedHead, ...(attention ? { attention } : {}) });
      const params = transformerParams(c, new Prng(1));
      assertEquals(params.reduce((n, p) => n + p.init.length, 0), transformerParamCount(c), kind);
    }
  }
});

Deno.test("initialisation: N(0, 0.02), residual projections /√(2L), decay on matrices only", () => {
  const params = transformerParams({ ...BENCH, layers: 4 }, new Prng(3));
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  const byName = new Map(params.map((p) => [p.name, p]));
  assertAlmostEquals(std(byName.get("h0.mlp.fc.w")!.init), 0.02, 0.001);
  assertAlmostEquals(std(byName.get("h0.mlp.proj.w")!.init), 0.02 / Math.sqrt(8), 0.0005);
  assertAlmostEquals(std(byName.get("h3.attn.proj.w")!.init), 0.02 / Math.sqrt(8), 0.0005);
  assertEquals(byName.get("h1.ln2.g")!.init.every((v) => v === 1), true);
  assertEquals(byName.get("h1.attn.qkv.b")!.init.every((v) => v === 0), true);
  for (const p of params) assertEquals(p.decay, p.shape.length === 2 && p.name !== "wte", p.name);
  // Metric heads start as tied-key heads: M = I per head (packed K = 3: m00 m01 m02 m11 m12
  // m22), and M takes no decay.
  const metric = transformerParams(tiny("nope", { attention: "metric", dModel: 6 }), new Prng(3));
  const m = metric.find((p) => p.name === "h1.attn.m")!;
  assertEquals(m.shape, [2, 6]);
  assertEquals(Array.from(m.init), [1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1]);
  assertEquals(m.decay, false);
  assertEquals(metric.find((p) => p.name === "h0.attn.p.w")!.decay, true);
});

Deno.test("config errors name the field and value", () => {
  const build = (c: TransformerConfig) => () => transformerParams(c, new Prng(0));
  assertThrows(build({ ...BENCH, heads: 3 }), RangeError, "heads must divide dModel = 64");
  assertThrows(build({ ...BENCH, layers: 0 }), RangeError, "layers must be a positive integer");
  assertThrows(
    build({ ...BENCH, hardAlibiWindows: [1, 2] }),
    RangeError,
    "hardAlibiWindows must hold one entry per head: current value is [1,2]",
  );
  assertThrows(
    build({ ...BENCH, hardAlibiWindows: [1, 0, null, null] }),
    RangeError,
    "hardAlibiWindows[1]",
  );
  assertThrows(
    build({ ...BENCH, position: "rope", ropeFraction: 0.1 }),
    RangeError,
    "ropeFraction must rotate an even number",
  );
  assertThrows(build({ ...BENCH, position: "learned" }), RangeError, "maxLen");
  assertThrows(
    build({ ...BENCH, position: "sinusoidal" as PositionKind }),
    RangeError,
    "position must be one of",
  );
  assertThrows(
    build({ ...BENCH, attention: "linear" as "metric" }),
    RangeError,
    'attention must be one of standard,metric: current value is "linear"',
  );
  assertThrows(
    build({ ...BENCH, attention: "metric" }),
    RangeError,
    'position must be one of nope,learned under metric attention: current value is "hard-alibi"',
  );
  assertThrows(
    build({ ...BENCH, dropout: 0.1 } as TransformerConfig),
    TypeError,
    "dropout is not a config field",
  );
  assertEquals(hardAlibiWindows(16, 8), [1, 2, 3, 4, 5, 6, 7, 8, ...new Array(8).fill(null)]);
  const g = new Graph("too-long");
  const c = tiny("learned");
  assertThrows(
    () =>
      transformerLogits(
        c,
        paramInputs(g, transformerParams(c, new Prng(0))),
        g.input("ids", "int32", [1, 10]),
      ),
    RangeError,
    "maxLen is 9",
  );
});

/** Tiny metric-attention models, with each position the op allows. */
const METRIC_MODELS: readonly TransformerConfig[] = [
  tiny("nope", { attention: "metric" }),
  tiny("learned", { attention: "metric", heads: 1 }),
];

Deno.test("logits match a plain float64 reference for every position kind", async () => {
  const [B, T] = [2, 7];
  for (const c of [...KINDS.map((kind) => tiny(kind)), ...METRIC_MODELS]) {
    const kind = `${c.position} ${c.attention ?? "standard"}`;
    const params = randomParams(c, 21);
    const prng = new Prng(22);
    const ids = new Int32Array(B * T).map(() => prng.nextInt(c.vocab));
    const got = await forward(c, params, ids, B);
    for (let b = 0; b < B; b++) {
      const want = reference(c, params, Array.from(ids.subarray(b * T, (b + 1) * T)));
      want.forEach((row, t) =>
        row.forEach((v, o) =>
          assertAlmostEquals(got[(b * T + t) * c.vocab + o], v, 2e-4 * (1 + Math.abs(v)), `${kind}`)
        )
      );
    }
  }
});

/** changed[s][t]: does changing token s change the logits at position t (batch of 2)? */
async function dependence(c: TransformerConfig, T: number): Promise<boolean[][]> {
  const B = 2;
  const params = randomParams(c, 31);
  const prng = new Prng(32);
  const ids = new Int32Array(B * T).map(() => prng.nextInt(c.vocab));
  const base = await forward(c, params, ids, B);
  const V = c.vocab;
  const changed: boolean[][] = [];
  for (let s = 0; s < T; s++) {
    const alt = ids.slice();
    for (let b = 0; b < B; b++) alt[b * T + s] = (alt[b * T + s] + 1 + b) % V;
    const out = await forward(c, params, alt, B);
    changed.push(Array.from({ length: T }, (_, t) => {
      let d = 0;
      for (let b = 0; b < B; b++) {
        for (let o = 0; o < V; o++) {
          d = Math.max(d, Math.abs(out[(b * T + t) * V + o] - base[(b * T + t) * V + o]));
        }
      }
      return d > 1e-5;
    }));
  }
  return changed;
}

Deno.test("causality: changing token s never changes the logits before s", async () => {
  const T = 6;
  for (const c of [...KINDS.map((kind) => tiny(kind)), ...METRIC_MODELS]) {
    const kind = `${c.position} ${c.attention ?? "standard"}`;
    const changed = await dependence(c, T);
    for (let s = 0; s < T; s++) {
      for (let t = 0; t < s; t++) assertEquals(changed[s][t], false, `${kind}: ${s} → ${t}`);
      assertEquals(changed[s][s], true, `${kind}: ${s} → ${s}`);
    }
  }
});

Deno.test("Hard-ALiBi: L layers of windows ≤ m see only the last L·(m − 1) + 1 tokens", async () => {
  const T = 9;
  for (const [layers, windows] of [[1, [3, 2]], [2, [3, 1]], [1, [1, 1]]] as const) {
    const m = Math.max(...windows);
    const reach = layers * (m - 1); // tokens further back than this cannot matter
    const changed = await dependence(
      tiny("hard-alibi", { layers, hardAlibiWindows: [...windows] }),
      T,
    );
    for (let s = 0; s < T; s++) {
      for (let t = 0; t < T; t++) {
        assertEquals(changed[s][t], s <= t && t - s <= reach, `L ${layers}, m ${m}: ${s} → ${t}`);
      }
    }
  }
});

Deno.test("gradients of a tiny transformer match finite differences (float32)", async () => {
  // float32 (ORT's Gelu is float32 only): central differences with step 1e-2 agree with the
  // analytic gradient to ≈ 1–2e-3 (scaled error) at these sizes; 5e-3 leaves headroom, while a
  // wrong rule shows errors of order 1e-1. Covers RoPE + tied head and learned positions + head.
  const [B, T] = [1, 4];
  for (
    const c of [
      tiny("rope", { layers: 1, vocab: 7 }),
      tiny("learned", { layers: 2, vocab: 7 }),
      tiny("learned", { layers: 1, vocab: 7, attention: "metric" }),
    ]
  ) {
    const params = randomParams(c, 41);
    const prng = new Prng(42);
    const ids = new Int32Array(B * T).map(() => prng.nextInt(c.vocab));
    const r = await gradCheck({
      dtype: "float32",
      tolerance: 5e-3,
      inputs: params.map((p) => ({ shape: p.shape, data: Array.from(p.init) })),
      build: (xs: Value[]) => {
        const p = Object.fromEntries(params.map((s, i) => [s.name, xs[i]]));
        return transformerLogits(c, p, xs[0].graph.constant(ids, [B, T], "int32"));
      },
    }, () => prng.nextFloat());
    assertLess(r.maxError, 5e-3, `${c.position} ${c.attention}: ${JSON.stringify(r.worst)}`);
  }
});

Deno.test("training smoke test: 200 AdamW steps learn to copy short strings", async () => {
  // Copy task (CLAIMS.md §1.1) with 4 letters and strings of 1–2 letters, packed in 24 tokens.
  // The answer loss starts near ln 8 ≈ 2.1; guessing the letters would leave ≈ 0.9.
  const [B, T, D] = [16, 24, 4];
  const c: TransformerConfig = {
    vocab: D + 4,
    dModel: 32,
    heads: 4,
    layers: 2,
    mlp: 64,
    position: "hard-alibi",
    hardAlibiWindows: hardAlibiWindows(4),
    tiedHead: false,
  };
  const params = transformerParams(c, new Prng(2));
  const step = buildTrainStep({
    name: "copy-smoke",
    params,
    batch: [
      { name: "input", dtype: "int32", shape: [B, T] },
      { name: "target", dtype: "int32", shape: [B, T] },
      { name: "mask", dtype: "float32", shape: [B, T] },
    ],
    loss: (p, b) => crossEntropy(transformerLogits(c, p, b.input), b.target, b.mask),
    optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0.1 },
  });
  const prng = new Prng(102);
  const losses: number[] = [];
  const schedule = { lr: 1e-2, warmupSteps: 20, totalSteps: 200 };
  const session = await Session.create(step.toModel(), { threads: 1 });
  const feeds = stateFeeds(initialStepState(params), params);
  try {
    for (let t = 1; t <= schedule.totalSteps; t++) {
      const d = copyTrainBatch(prng, { batch: B, context: T, minLen: 1, maxLen: 2, D });
      feeds.step = tensor("float32", Float32Array.of(t), []);
      feeds.lr = tensor("float32", Float32Array.of(learningRate(t, schedule)), []);
      feeds.input = tensor("int32", d.input, [B, T]);
      feeds.target = tensor("int32", d.target, [B, T]);
      feeds.mask = tensor("float32", d.lossMask, [B, T]);
      const out = await session.run(feeds);
      losses.push(Number(out.loss.data[0]));
      advanceFeeds(feeds, out);
    }
  } finally {
    await session.release();
  }
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  assertLess(1.5, mean(losses.slice(0, 5)), "initial loss");
  assertLess(mean(losses.slice(-20)), 0.4, "final loss (mean of the last 20 steps)");
});
