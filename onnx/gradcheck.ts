/**
 * Gradient checking: compares the gradients autodiff emits with central finite differences of
 * the same graph, run in ONNX Runtime. The checked function is reduced to a scalar with fixed
 * random weights, L = Σ w ⊙ f(x), so every output element's gradient is exercised.
 * @module
 */
import { type DType, Graph, numel, type TensorArray, toTypedArray, type Value } from "./graph.ts";
import { gradients } from "./autodiff.ts";
import { mul, reduceSum } from "./ops.ts";
import { Session, tensor } from "./runtime.ts";

/** One input of a checked function. */
export interface CheckInput {
  shape: number[];
  dtype?: DType;
  /** Fixed data; otherwise drawn from the `uniform` source in [−1, 1). */
  data?: readonly number[];
  /** Whether to check the gradient of this input (default: true for float inputs). */
  differentiable?: boolean;
}

/** A function to check and how. */
export interface GradCheckCase {
  inputs: CheckInput[];
  build: (xs: Value[]) => Value;
  /** float64 where ORT has kernels for every op involved, else float32. */
  dtype: "float32" | "float64";
  /** Absolute + relative tolerance of the comparison. */
  tolerance?: number;
  /** Finite-difference step (default 1e-6 for float64, 1e-2 for float32). */
  step?: number;
}

/** The largest mismatch found, scaled as |analytic − numeric| / (1 + |numeric|). */
export interface GradCheckResult {
  maxError: number;
  worst: { input: number; index: number; analytic: number; numeric: number };
  count: number;
}

/**
 * Checks `c` and returns the worst mismatch; `uniform` must return numbers in [0, 1)
 * (pass the project's seeded PRNG).
 */
export async function gradCheck(c: GradCheckCase, uniform: () => number): Promise<GradCheckResult> {
  const g = new Graph("gradcheck");
  const xs = c.inputs.map((inp, i) => g.input(`x${i}`, inp.dtype ?? c.dtype, inp.shape));
  const y = c.build(xs);
  const weights = Array.from({ length: numel(y.shape) }, () => uniform() * 2 - 1);
  const loss = reduceSum(mul(y, g.constant(toTypedArray(weights, c.dtype), y.shape as number[])));
  const diffIdx = c.inputs.flatMap((inp, i) =>
    (inp.differentiable ?? (xs[i].dtype === c.dtype)) ? [i] : []
  );
  const grads = gradients(loss, diffIdx.map((i) => xs[i]));
  g.output(loss, "loss");
  grads.forEach((gr, k) => g.output(gr, `grad${k}`));
  const session = await Session.create(g.toModel(), { threads: 1 });

  const data: TensorArray[] = c.inputs.map((inp, i) =>
    toTypedArray(
      inp.data ?? Array.from({ length: numel(inp.shape) }, () => uniform() * 2 - 1),
      xs[i].dtype,
    )
  );
  const feeds = () =>
    Object.fromEntries(xs.map((x, i) => [x.name, tensor(x.dtype, data[i], c.inputs[i].shape)]));
  const base = await session.run(feeds());
  const h = c.step ?? (c.dtype === "float64" ? 1e-6 : 1e-2);
  let result: GradCheckResult = {
    maxError: 0,
    worst: { input: -1, index: -1, analytic: 0, numeric: 0 },
    count: 0,
  };
  for (const [k, i] of diffIdx.entries()) {
    const analytic = base[`grad${k}`].data as Float32Array | Float64Array;
    const arr = data[i] as Float32Array | Float64Array;
    for (let j = 0; j < arr.length; j++) {
      const orig = arr[j];
      arr[j] = orig + h;
      const up = Number((await session.run(feeds(), ["loss"])).loss.data[0]);
      arr[j] = orig - h;
      const down = Number((await session.run(feeds(), ["loss"])).loss.data[0]);
      arr[j] = orig;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(analytic[j] - numeric) / (1 + Math.abs(numeric));
      result.count++;
      if (err > result.maxError || result.worst.input < 0) {
        result = { ...result, maxError: Math.max(err, result.maxError) };
        if (err >= result.maxError) {
          result.worst = { input: i, index: j, analytic: analytic[j], numeric };
        }
      }
    }
  }
  await session.release();
  return result;
}
