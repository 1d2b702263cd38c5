/**
 * The dilated 1-D CNN of seed 000 (nn-experiments, "Efficiently solving the Selective Copying
 * Problem with a Very Small Language Model"; code `experiments/textmask/textmodel.py`):
 *
 *   Embedding(256, C) → L × [Conv1d(C→C, kernel k, dilation dᵢ, same padding) → GELU → + x]
 *   → Linear(C→256) tied to the embedding.
 *
 * Activations are channel-last [batch, length, C] so each convolution is one im2col MatMul.
 * Initialisation follows PyTorch's defaults: embedding N(0, 1); conv weight and bias
 * U(±1/√(C·k)) (kaiming-uniform with a = √5).
 * @module
 */
import type { RandomSource } from "../fixtures/prng.ts";
import type { Value } from "../onnx/graph.ts";
import { add, gelu, matMul, reshape, transpose } from "../onnx/ops.ts";
import { conv1d, embedding } from "../onnx/nn.ts";
import {
  drawParams,
  type ParamLayout,
  type ParamShape,
  paramShapes,
  type ParamSpec,
} from "../onnx/optim.ts";
import { staticShape } from "../onnx/graph.ts";

/** Shape of a dilated CNN. */
export interface DilatedCnnConfig {
  /** Vocabulary (256 raw bytes in the seed). */
  vocab: number;
  channels: number;
  kernel: number;
  /** One dilation per layer; the layer count is its length. */
  dilations: readonly number[];
}

/** Parameter count: L·(C·C·k + C) + V·C (the head is tied to the embedding). */
export function dilatedCnnParamCount(c: DilatedCnnConfig): number {
  const conv = c.channels * c.channels * c.kernel + c.channels;
  return c.dilations.length * conv + c.vocab * c.channels;
}

/** Validates a config; RangeError naming the field and value. */
export function checkDilatedCnnConfig(c: DilatedCnnConfig): void {
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `Cannot build a dilated CNN as ${name} must be a positive integer: current value is ${v}`,
      );
    }
  };
  positive("vocab", c.vocab);
  positive("channels", c.channels);
  positive("kernel", c.kernel);
  if (c.kernel % 2 !== 1) {
    throw new RangeError(
      `Cannot build a dilated CNN as kernel must be odd: current value is ${c.kernel}`,
    );
  }
  if (c.dilations.length === 0) {
    throw new RangeError("Cannot build a dilated CNN as dilations is empty: current value is []");
  }
  c.dilations.forEach((d, i) => positive(`dilations[${i}]`, d));
}

/** The parameters in a fixed order, each with its initialiser (PyTorch's defaults). */
function dilatedCnnLayout(c: DilatedCnnConfig): ParamLayout[] {
  checkDilatedCnnConfig(c);
  const C = c.channels;
  const k = c.kernel;
  const layout: ParamLayout[] = [{
    name: "embedding",
    shape: [c.vocab, C],
    decay: false,
    draw: (prng) => new Float32Array(c.vocab * C).map(() => prng.normal()),
  }];
  const bound = 1 / Math.sqrt(C * k);
  const uniform = (n: number) => (prng: RandomSource) =>
    new Float32Array(n).map(() => (prng.nextFloat() * 2 - 1) * bound);
  c.dilations.forEach((_, i) => {
    // w[j·C + i, o] = W_torch[o, i, j]: im2col layout (see onnx/nn.ts conv1d).
    layout.push({ name: `conv${i}.w`, shape: [k * C, C], decay: true, draw: uniform(k * C * C) });
    layout.push({ name: `conv${i}.b`, shape: [C], decay: false, draw: uniform(C) });
  });
  return layout;
}

/** Initial parameters, drawn from `prng` in a fixed order. */
export function dilatedCnnParams(c: DilatedCnnConfig, prng: RandomSource): ParamSpec[] {
  return drawParams(dilatedCnnLayout(c), prng);
}

/** Parameter names and shapes, for graphs that take trained values (no initial values drawn). */
export function dilatedCnnParamShapes(c: DilatedCnnConfig): ParamShape[] {
  return paramShapes(dilatedCnnLayout(c));
}

/** Logits [batch, length, vocab] for byte ids [batch, length]. */
export function dilatedCnnLogits(
  c: DilatedCnnConfig,
  p: Record<string, Value>,
  ids: Value,
): Value {
  let x = embedding(p.embedding, ids); // [B, L, C]
  c.dilations.forEach((d, i) => {
    const y = gelu(conv1d(x, p[`conv${i}.w`], p[`conv${i}.b`], { kernel: c.kernel, dilation: d }));
    x = add(x, y); // residual
  });
  const [b, l, ch] = staticShape(x, "project to logits");
  const logits = matMul(reshape(x, [b * l, ch]), transpose(p.embedding)); // [B·L, V] tied head
  return reshape(logits, [b, l, c.vocab]);
}

/**
 * Receptive field of the stack: one-sided radius R = ⌊k/2⌋·Σdᵢ, and contiguous coverage R_c,
 * the largest r such that every offset in [−r, r] is a sum Σ dᵢ·tᵢ with |tᵢ| ≤ ⌊k/2⌋
 * (uniform dilation 2 reaches only even offsets, so R_c = 0).
 */
export function receptiveField(c: Pick<DilatedCnnConfig, "kernel" | "dilations">): {
  radius: number;
  contiguous: number;
} {
  const h = Math.floor(c.kernel / 2);
  const radius = h * c.dilations.reduce((a, b) => a + b, 0);
  let reach = new Set<number>([0]);
  for (const d of c.dilations) {
    const next = new Set<number>();
    for (const r of reach) for (let t = -h; t <= h; t++) next.add(r + t * d);
    reach = next;
  }
  let contiguous = 0;
  while (reach.has(contiguous + 1) && reach.has(-(contiguous + 1))) contiguous++;
  return { radius, contiguous };
}
