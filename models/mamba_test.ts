import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { Graph, type Value } from "../onnx/graph.ts";
import { gradCheck } from "../onnx/gradcheck.ts";
import { causalDepthwiseConv1d } from "../onnx/custom/conv.ts";
import { paramInputs } from "../onnx/optim.ts";
import { Session, tensor } from "../onnx/runtime.ts";
import {
  type MambaConfig,
  mambaLogits,
  mambaParamCount,
  mambaParams,
  mambaStateBits,
  type SsmLayer,
} from "./mamba.ts";

const LAYERS: readonly SsmLayer[] = ["mamba", "s6", "lti"];
const tiny = (layer: SsmLayer, over: Partial<MambaConfig> = {}): MambaConfig => ({
  vocab: 7,
  dModel: 8,
  layers: 2,
  layer,
  dState: 4,
  ...over,
});

Deno.test("parameter counts: the copy claims' GSSM arm is 3 × 32,768 + embedding and norms", () => {
  // docs/claims.md §1.4: d_model 64, expand 2, d_state 16, d_conv 4, dt_rank 4, 3 layers ≈ 3 × 32.7k.
  const arm: MambaConfig = { vocab: 30, dModel: 64, layers: 3, layer: "mamba", dState: 16 };
  // in_proj 64·256 + conv 4·128 + 128 + x_proj 128·36 + dt_proj 4·128 + 128 + A_log 128·16
  // + D 128 + out_proj 128·64 + norm 2·64
  assertEquals(mambaParamCount(arm), 3 * 32_768 + 30 * 64 + 2 * 64);
  const params = mambaParams(arm, new Prng(1));
  assertEquals(params.reduce((n, p) => n + p.init.length, 0), mambaParamCount(arm));
  // The no-gate layers scan d_model channels: norm, x_proj 32·(2 + 32), dt_proj 2·32 + 32,
  // A_log, D, out_proj; LTI: norm, B, C and A_log 32·16 each, dt_bias, D, out_proj.
  const s6: MambaConfig = { vocab: 10, dModel: 32, layers: 2, layer: "s6", dState: 16 };
  assertEquals(
    mambaParamCount(s6),
    10 * 32 + 2 * (64 + 32 * 34 + 2 * 32 + 32 + 32 * 16 + 32 + 32 * 32) + 64,
  );
  const lti: MambaConfig = { ...s6, layer: "lti" };
  assertEquals(mambaParamCount(lti), 10 * 32 + 2 * (64 + 3 * 32 * 16 + 32 + 32 + 32 * 32) + 64);
});

Deno.test("state bits: d_inner·N floats per layer, plus the conv's k − 1 inputs in the block", () => {
  assertEquals(
    mambaStateBits({ vocab: 30, dModel: 64, layers: 3, layer: "mamba", dState: 16 }),
    32 * 3 * (128 * 16 + 3 * 128),
  );
  assertEquals(
    mambaStateBits({ vocab: 10, dModel: 32, layers: 2, layer: "lti", dState: 16 }),
    32 * 2 * 32 * 16,
  );
});

Deno.test("initialisation follows Mamba: A_log = log(1..N), D = 1, Δ's bias in softplus⁻¹[1e-3, 0.1]", () => {
  const params = new Map(mambaParams(tiny("mamba"), new Prng(3)).map((p) => [p.name, p]));
  assertEquals(
    [...params.get("layer0.A_log")!.init.slice(0, 4)],
    [0, Math.log(2), Math.log(3), Math.log(4)].map(Math.fround),
  );
  assertEquals([...params.get("layer1.D")!.init], new Array(16).fill(1));
  for (const b of params.get("layer0.dt_proj.b")!.init) {
    const dt = Math.log1p(Math.exp(b));
    assertLess(0.001 - 1e-6, dt);
    assertLess(dt, 0.1 + 1e-6);
  }
  assertEquals(params.get("layer0.A_log")!.decay, false);
  assertEquals(params.get("layer0.in_proj.w")!.decay, true);
});

Deno.test("config errors name the field and value", () => {
  assertThrows(() => mambaParams(tiny("s6", { dState: 0 }), new Prng(0)), RangeError, "dState");
  assertThrows(
    () => mambaParams(tiny("s4" as SsmLayer), new Prng(0)),
    RangeError,
    'layer "s4": use mamba, s6 or lti',
  );
});

Deno.test("causalDepthwiseConv1d equals its definition, and its gradients finite differences", async () => {
  const g = new Graph("conv");
  const x = g.input("x", "float32", [2, 5, 3]);
  const w = g.input("w", "float32", [4, 3]);
  const b = g.input("b", "float32", [3]);
  g.output(causalDepthwiseConv1d(x, w, b), "y");
  const p = new Prng(4);
  const xd = Float32Array.from({ length: 30 }, () => p.normal());
  const wd = Float32Array.from({ length: 12 }, () => p.normal());
  const bd = Float32Array.from({ length: 3 }, () => p.normal());
  const s = await Session.create(g.toModel(), { threads: 1 });
  const y = (await s.run({
    x: tensor("float32", xd, [2, 5, 3]),
    w: tensor("float32", wd, [4, 3]),
    b: tensor("float32", bd, [3]),
  })).y.data as Float32Array;
  await s.release();
  for (let n = 0; n < 2; n++) {
    for (let t = 0; t < 5; t++) {
      for (let c = 0; c < 3; c++) {
        let want = bd[c];
        for (let j = 0; j < 4; j++) {
          const at = t - 3 + j;
          if (at >= 0) want += wd[j * 3 + c] * xd[(n * 5 + at) * 3 + c];
        }
        assertAlmostEquals(y[(n * 5 + t) * 3 + c], want, 1e-5);
      }
    }
  }
  const r = await gradCheck({
    dtype: "float64",
    inputs: [{ shape: [2, 5, 3] }, { shape: [4, 3] }, { shape: [3] }],
    build: ([x, w, b]) => causalDepthwiseConv1d(x, w, b),
  }, () => p.nextFloat());
  assertLess(r.maxError, 1e-6);
});

/** Logits of `c` for ids [B, T]. */
async function forward(c: MambaConfig, seed: number, ids: Int32Array, B: number) {
  const T = ids.length / B;
  const g = new Graph("mamba");
  const params = mambaParams(c, new Prng(seed));
  g.output(mambaLogits(c, paramInputs(g, params), g.input("ids", "int32", [B, T])), "logits");
  const s = await Session.create(g.toModel(), { threads: 1 });
  const feeds: Record<string, ReturnType<typeof tensor>> = { ids: tensor("int32", ids, [B, T]) };
  for (const p of params) feeds[`p.${p.name}`] = tensor("float32", p.init, p.shape);
  const out = (await s.run(feeds)).logits.data as Float32Array;
  await s.release();
  return out;
}

Deno.test("causality: changing token s changes the logits at s and after, never before", async () => {
  const [B, T] = [2, 6];
  for (const layer of LAYERS) {
    const c = tiny(layer);
    const prng = new Prng(5);
    const ids = new Int32Array(B * T).map(() => prng.nextInt(c.vocab));
    const base = await forward(c, 6, ids, B);
    for (let s = 0; s < T; s++) {
      const alt = ids.slice();
      for (let b = 0; b < B; b++) alt[b * T + s] = (alt[b * T + s] + 1) % c.vocab;
      const out = await forward(c, 6, alt, B);
      for (let t = 0; t < T; t++) {
        let d = 0;
        for (let b = 0; b < B; b++) {
          for (let o = 0; o < c.vocab; o++) {
            const i = (b * T + t) * c.vocab + o;
            d = Math.max(d, Math.abs(out[i] - base[i]));
          }
        }
        assertEquals(d > 1e-7, t >= s, `${layer}: token ${s} → logits ${t} (change ${d})`);
      }
    }
  }
});

Deno.test("gradients of tiny state-space LMs match finite differences (float32)", async () => {
  // float32 (ORT's Softplus is float32 only), central differences with step 1e-2, as the
  // transformer's check: a wrong rule shows errors of order 1e-1.
  const [B, T] = [1, 5];
  for (const layer of LAYERS) {
    const c = tiny(layer, { layers: 1, dModel: 4, dState: 2 });
    // The embedding at unit scale: at Mamba's 0.02 the LayerNorm after it would be far from
    // linear over a finite-difference step of 1e-2.
    const params = mambaParams(c, new Prng(7)).map((p) =>
      p.name === "embedding" ? { ...p, init: p.init.map((v) => v * 50) } : p
    );
    const prng = new Prng(8);
    const ids = new Int32Array(B * T).map(() => prng.nextInt(c.vocab));
    const r = await gradCheck({
      dtype: "float32",
      tolerance: 5e-3,
      inputs: params.map((p) => ({ shape: p.shape, data: Array.from(p.init) })),
      build: (xs: Value[]) => {
        const p = Object.fromEntries(params.map((s, i) => [s.name, xs[i]]));
        return mambaLogits(c, p, xs[0].graph.constant(ids, [B, T], "int32"));
      },
    }, () => prng.nextFloat());
    assertLess(r.maxError, 5e-3, `${layer}: ${JSON.stringify(r.worst)}`);
  }
});
