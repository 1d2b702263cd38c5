/**
 * State-space language models over the `SelectiveScan` op (`onnx/custom/selective_scan.ts`):
 *
 *   token embedding → L × [x + layer(LN(x))] → LN → head (tied to the embedding)
 *
 * with one of three layers (`docs/claims.md` §2.1 M1 and §4.3):
 * - `mamba`: Mamba's block (`mamba_simple.py`): in_proj → (x, z); x → causal depthwise conv
 *   (k 4) → SiLU → x_proj → (dt, B, C); Δ = softplus(dt_proj(dt) + bias); the selective scan
 *   with A = −exp(A_log) and the D skip, gated by silu(z) → out_proj.
 * - `s6`: the "no gate" architecture's selective layer: the scan on the normalised input itself
 *   (channels = d_model), Δ, B, C projected from it as in the block, then out_proj.
 * - `lti`: the same with B and C learned constants [D, N] and Δ = softplus(a learned bias) per
 *   channel, independent of the input: a time-invariant (S4D-real-like) layer.
 *
 * Initialisation as §4.3: A_log = log(1..N) per channel, D = 1, dt_proj's bias softplus⁻¹(dt)
 * with dt = exp(U[log 0.001, log 0.1]) clamped ≥ 1e-4, dt_proj's weight U(±dt_rank^−½); linear
 * and conv weights PyTorch's default U(±1/√fan_in), no biases on in_proj, x_proj, out_proj;
 * embedding N(0, 0.02²) (Mamba's LM); LTI's B and C N(0, 1/N).
 * @module
 */
import type { RandomSource } from "../fixtures/prng.ts";
import { staticShape, type Value } from "../onnx/graph.ts";
import { add, exp, matMul, neg, reshape, split, transpose } from "../onnx/ops.ts";
import { batchTranspose } from "../onnx/custom/transpose.ts";
import { embedding, layerNorm, linear, silu } from "../onnx/nn.ts";
import { causalDepthwiseConv1d } from "../onnx/custom/conv.ts";
import { selectiveScan } from "../onnx/custom/selective_scan.ts";
import {
  drawParams,
  paramCount,
  type ParamLayout,
  type ParamShape,
  paramShapes,
  type ParamSpec,
} from "../onnx/optim.ts";

/** Which layer the model stacks (see the module's description). */
export type SsmLayer = "mamba" | "s6" | "lti";

/** Shape of a state-space LM. */
export interface MambaConfig {
  vocab: number;
  dModel: number;
  layers: number;
  layer: SsmLayer;
  /** N, the state size per channel. */
  dState: number;
  /** d_inner = expand·d_model (the `mamba` block; the others scan d_model channels). */
  expand?: number;
  /** The causal conv's kernel (the `mamba` block). */
  dConv?: number;
  /** Rank of Δ's projection; ⌈d_model/16⌉ by default. */
  dtRank?: number;
}

/** The sizes a config implies: channels scanned, Δ's rank, the conv's kernel. */
export function mambaSizes(c: MambaConfig): { inner: number; dtRank: number; dConv: number } {
  return {
    inner: c.layer === "mamba" ? (c.expand ?? 2) * c.dModel : c.dModel,
    dtRank: c.dtRank ?? Math.ceil(c.dModel / 16),
    dConv: c.dConv ?? 4,
  };
}

/** Validates a config; RangeError naming the field and value. */
export function checkMambaConfig(c: MambaConfig): void {
  for (const k of ["vocab", "dModel", "layers", "dState"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new RangeError(
        `Cannot build a state-space model as ${k} must be a positive integer: current value is ${
          c[k]
        }`,
      );
    }
  }
  if (!["mamba", "s6", "lti"].includes(c.layer)) {
    throw new RangeError(
      `Cannot build a state-space model with layer "${c.layer}": use mamba, s6 or lti`,
    );
  }
  const { dtRank, dConv } = mambaSizes(c);
  for (const [k, v] of [["expand", c.expand ?? 2], ["dtRank", dtRank], ["dConv", dConv]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `Cannot build a state-space model as ${k} must be a positive integer: current value is ${v}`,
      );
    }
  }
}

/** U(±bound) of n values. */
const uniform = (n: number, bound: number) => (prng: RandomSource) =>
  new Float32Array(n).map(() => (prng.nextFloat() * 2 - 1) * bound);

/** dt_proj's bias: softplus⁻¹(dt), dt = exp(U[log 0.001, log 0.1]) clamped ≥ 1e-4. */
function dtBias(n: number) {
  return (prng: RandomSource) =>
    new Float32Array(n).map(() => {
      const u = prng.nextFloat();
      const dt = Math.max(Math.exp(Math.log(0.001) + u * (Math.log(0.1) - Math.log(0.001))), 1e-4);
      return dt + Math.log(-Math.expm1(-dt));
    });
}

/** The parameters in a fixed order, each with its initialiser. */
function mambaLayout(c: MambaConfig): ParamLayout[] {
  checkMambaConfig(c);
  const d = c.dModel;
  const N = c.dState;
  const { inner, dtRank, dConv } = mambaSizes(c);
  const layout: ParamLayout[] = [{
    name: "embedding",
    shape: [c.vocab, d],
    decay: false,
    draw: (prng) => new Float32Array(c.vocab * d).map(() => 0.02 * prng.normal()),
  }];
  const ones = (n: number) => () => new Float32Array(n).fill(1);
  const zeros = (n: number) => () => new Float32Array(n);
  const aLog = () => Float32Array.from({ length: inner * N }, (_, i) => Math.log((i % N) + 1)); // log(1..N)
  for (let i = 0; i < c.layers; i++) {
    const p = `layer${i}.`;
    layout.push({ name: `${p}norm.g`, shape: [d], decay: false, draw: ones(d) });
    layout.push({ name: `${p}norm.b`, shape: [d], decay: false, draw: zeros(d) });
    if (c.layer === "mamba") {
      layout.push({
        name: `${p}in_proj.w`,
        shape: [d, 2 * inner],
        decay: true,
        draw: uniform(d * 2 * inner, 1 / Math.sqrt(d)),
      });
      layout.push({
        name: `${p}conv.w`,
        shape: [dConv, inner],
        decay: true,
        draw: uniform(dConv * inner, 1 / Math.sqrt(dConv)),
      });
      layout.push({
        name: `${p}conv.b`,
        shape: [inner],
        decay: false,
        draw: uniform(inner, 1 / Math.sqrt(dConv)),
      });
    }
    if (c.layer === "lti") {
      layout.push({
        name: `${p}B`,
        shape: [inner, N],
        decay: false,
        draw: (prng) => new Float32Array(inner * N).map(() => prng.normal() / Math.sqrt(N)),
      });
      layout.push({
        name: `${p}C`,
        shape: [inner, N],
        decay: false,
        draw: (prng) => new Float32Array(inner * N).map(() => prng.normal() / Math.sqrt(N)),
      });
      layout.push({ name: `${p}dt_bias`, shape: [inner], decay: false, draw: dtBias(inner) });
    } else {
      layout.push({
        name: `${p}x_proj.w`,
        shape: [inner, dtRank + 2 * N],
        decay: true,
        draw: uniform(inner * (dtRank + 2 * N), 1 / Math.sqrt(inner)),
      });
      layout.push({
        name: `${p}dt_proj.w`,
        shape: [dtRank, inner],
        decay: true,
        draw: uniform(dtRank * inner, 1 / Math.sqrt(dtRank)),
      });
      layout.push({ name: `${p}dt_proj.b`, shape: [inner], decay: false, draw: dtBias(inner) });
    }
    layout.push({ name: `${p}A_log`, shape: [inner, N], decay: false, draw: aLog });
    layout.push({ name: `${p}D`, shape: [inner], decay: false, draw: ones(inner) });
    layout.push({
      name: `${p}out_proj.w`,
      shape: [inner, d],
      decay: true,
      draw: uniform(inner * d, 1 / Math.sqrt(inner)),
    });
  }
  layout.push({ name: "norm.g", shape: [d], decay: false, draw: ones(d) });
  layout.push({ name: "norm.b", shape: [d], decay: false, draw: zeros(d) });
  return layout;
}

/** Initial parameters, drawn from `prng` in a fixed order. */
export function mambaParams(c: MambaConfig, prng: RandomSource): ParamSpec[] {
  return drawParams(mambaLayout(c), prng);
}

/** Parameter names and shapes, for graphs that take trained values. */
export function mambaParamShapes(c: MambaConfig): ParamShape[] {
  return paramShapes(mambaLayout(c));
}

/** The number of parameters (the head is tied to the embedding). */
export function mambaParamCount(c: MambaConfig): number {
  return paramCount(mambaLayout(c));
}

/**
 * The recurrent state a model carries from one token to the next, in bits (float32): per layer
 * the scan's d_inner·N values, plus the causal conv's last k − 1 inputs in the `mamba` block.
 * What the copy claims' capacity argument counts (`docs/claims.md` §1.3).
 */
export function mambaStateBits(c: MambaConfig): number {
  const { inner, dConv } = mambaSizes(c);
  const perLayer = inner * c.dState + (c.layer === "mamba" ? (dConv - 1) * inner : 0);
  return 32 * c.layers * perLayer;
}

/** One layer on h = LN(x) [B, L, d] → [B, L, d] (before the residual add). */
function ssmLayer(c: MambaConfig, p: Record<string, Value>, prefix: string, h: Value): Value {
  const N = c.dState;
  const { dtRank } = mambaSizes(c);
  const at = (name: string) => p[`${prefix}${name}`];
  let x = h; // [B, L, channels]
  let z: Value | undefined;
  if (c.layer === "mamba") {
    [x, z] = split(linear(h, at("in_proj.w")), { parts: 2 }, 2);
    x = silu(causalDepthwiseConv1d(x, at("conv.w"), at("conv.b")));
  }
  const [batch, length, channels] = staticShape(x, "build a state-space layer");
  const A = neg(exp(at("A_log"))); // [channels, N]
  const u = batchTranspose(x); // [B, channels, L]
  let out: Value;
  if (c.layer === "lti") {
    // Δ independent of the input: zeros plus the learned bias, through the softplus.
    const zero = x.graph.constant(new Float32Array(batch * channels * length), [
      batch,
      channels,
      length,
    ]);
    out = selectiveScan(u, zero, A, at("B"), at("C"), {
      D: at("D"),
      deltaBias: at("dt_bias"),
      deltaSoftplus: true,
    }).y;
  } else {
    const [dt, B, C] = split(linear(x, at("x_proj.w")), [dtRank, N, N], 2); // [B, L, ·]
    const delta = batchTranspose(linear(dt, at("dt_proj.w"))); // [B, channels, L]
    out = selectiveScan(
      u,
      delta,
      A,
      batchTranspose(B), // [B, N, L]
      batchTranspose(C),
      {
        D: at("D"),
        z: z && batchTranspose(z),
        deltaBias: at("dt_proj.b"),
        deltaSoftplus: true,
      },
    ).y;
  }
  return linear(batchTranspose(out), at("out_proj.w")); // [B, L, d]
}

/** Logits [batch, length, vocab] for token ids [batch, length]. */
export function mambaLogits(c: MambaConfig, p: Record<string, Value>, ids: Value): Value {
  let x = embedding(p.embedding, ids); // [B, L, d]
  for (let i = 0; i < c.layers; i++) {
    const prefix = `layer${i}.`;
    const h = layerNorm(x, p[`${prefix}norm.g`], p[`${prefix}norm.b`]);
    x = add(x, ssmLayer(c, p, prefix, h));
  }
  x = layerNorm(x, p["norm.g"], p["norm.b"]);
  const [b, l, d] = staticShape(x, "project to logits");
  return reshape(matMul(reshape(x, [b * l, d]), transpose(p.embedding)), [b, l, c.vocab]);
}
