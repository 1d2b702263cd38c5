/**
 * An LSTM language model, the "Repeat After Me" paper's other GSSM (docs/claims.md §1.4):
 *
 *   token embedding (dim = hidden) → L × LSTM(hidden) → head tied to the embedding
 *
 * as PyTorch's `nn.LSTM` computes a layer: gates = x·W_ih + b_ih + h·W_hh + b_hh split into
 * i, f, g, o; c ← σ(f)·c + σ(i)·tanh(g); h ← σ(o)·tanh(c), from h = c = 0. The recurrence is
 * unrolled over the sequence (ONNX's `LSTM` has no gradient in ONNX Runtime); the input
 * projection of every step is one MatMul. Initialisation as PyTorch: every weight and bias
 * U(±1/√hidden); the embedding N(0, 1).
 * @module
 */
import type { RandomSource } from "../fixtures/prng.ts";
import { staticShape, type Value } from "../onnx/graph.ts";
import { add, concat, matMul, mul, reshape, sigmoid, split, tanh, transpose } from "../onnx/ops.ts";
import { embedding } from "../onnx/nn.ts";
import {
  drawParams,
  paramCount,
  type ParamLayout,
  type ParamShape,
  paramShapes,
  type ParamSpec,
} from "../onnx/optim.ts";

/** Shape of an LSTM LM. */
export interface LstmConfig {
  vocab: number;
  hidden: number;
  layers: number;
}

/** Validates a config; RangeError naming the field and value. */
export function checkLstmConfig(c: LstmConfig): void {
  for (const k of ["vocab", "hidden", "layers"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new RangeError(
        `Cannot build an LSTM as ${k} must be a positive integer: current value is ${c[k]}`,
      );
    }
  }
}

function lstmLayout(c: LstmConfig): ParamLayout[] {
  checkLstmConfig(c);
  const h = c.hidden;
  const bound = 1 / Math.sqrt(h);
  const uniform = (n: number) => (prng: RandomSource) =>
    new Float32Array(n).map(() => (prng.nextFloat() * 2 - 1) * bound);
  const layout: ParamLayout[] = [{
    name: "embedding",
    shape: [c.vocab, h],
    decay: false,
    draw: (prng) => new Float32Array(c.vocab * h).map(() => prng.normal()),
  }];
  for (let i = 0; i < c.layers; i++) {
    // Gate order i, f, g, o along the 4·hidden columns, as PyTorch's weight_ih_l{i}ᵀ.
    layout.push({
      name: `lstm${i}.w_ih`,
      shape: [h, 4 * h],
      decay: true,
      draw: uniform(4 * h * h),
    });
    layout.push({
      name: `lstm${i}.w_hh`,
      shape: [h, 4 * h],
      decay: true,
      draw: uniform(4 * h * h),
    });
    layout.push({ name: `lstm${i}.b_ih`, shape: [4 * h], decay: false, draw: uniform(4 * h) });
    layout.push({ name: `lstm${i}.b_hh`, shape: [4 * h], decay: false, draw: uniform(4 * h) });
  }
  return layout;
}

/** Initial parameters, drawn from `prng` in a fixed order. */
export function lstmParams(c: LstmConfig, prng: RandomSource): ParamSpec[] {
  return drawParams(lstmLayout(c), prng);
}

/** Parameter names and shapes, for graphs that take trained values. */
export function lstmParamShapes(c: LstmConfig): ParamShape[] {
  return paramShapes(lstmLayout(c));
}

/** The number of parameters: V·h + layers·(8h² + 8h) (the head is tied to the embedding). */
export function lstmParamCount(c: LstmConfig): number {
  return paramCount(lstmLayout(c));
}

/** The recurrent state in bits (float32): h and c of every layer. */
export function lstmStateBits(c: LstmConfig): number {
  return 32 * 2 * c.hidden * c.layers;
}

/** Logits [batch, length, vocab] for token ids [batch, length]. */
export function lstmLogits(c: LstmConfig, p: Record<string, Value>, ids: Value): Value {
  const h = c.hidden;
  let x = embedding(p.embedding, ids); // [B, L, h]
  const [batch, length] = staticShape(x, "run an LSTM");
  const g = x.graph;
  for (let i = 0; i < c.layers; i++) {
    const at = (name: string) => p[`lstm${i}.${name}`];
    // Every step's input projection at once: [B·L, 4h] → [B, L, 4h].
    const xw = reshape(
      add(matMul(reshape(x, [batch * length, h]), at("w_ih")), add(at("b_ih"), at("b_hh"))),
      [batch, length, 4 * h],
    );
    let hPrev = g.constant(new Array(batch * h).fill(0), [batch, h], x.dtype);
    let cPrev = hPrev;
    const outs: Value[] = [];
    // One Split, not a Slice per step: Slice's gradient pads each step's [B, 4h] back to
    // [B, L, 4h] and sums L of them (O(L²) traffic); Split's is one Concat.
    const steps = split(xw, { parts: length }, 1); // L × [B, 1, 4h]
    for (let t = 0; t < length; t++) {
      const step = reshape(steps[t], [batch, 4 * h]);
      const gates = add(step, matMul(hPrev, at("w_hh"))); // [B, 4h]
      const [gi, gf, gg, go] = split(gates, { parts: 4 }, 1);
      cPrev = add(mul(sigmoid(gf), cPrev), mul(sigmoid(gi), tanh(gg)));
      hPrev = mul(sigmoid(go), tanh(cPrev));
      outs.push(reshape(hPrev, [batch, 1, h]));
    }
    x = concat(outs, 1); // [B, L, h]
  }
  const logits = matMul(reshape(x, [batch * length, h]), transpose(p.embedding));
  return reshape(logits, [batch, length, c.vocab]);
}
