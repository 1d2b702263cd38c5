/**
 * What the suites share, so that a suite file reads as its claim: the training seeds and the
 * loop over them (train, then measure, with per-phase wall times), medians over seeds with their
 * range and per-seed record, chunked evaluation of a trained model, and validity gates that make
 * later checks inconclusive rather than failed; and the smoke run that unit tests drive every
 * suite's `run()` with.
 * @module
 */
import type { Value } from "../onnx/graph.ts";
import { forwardSession } from "../onnx/inference.ts";
import type { ParamShape } from "../onnx/optim.ts";
import { type Engine, type Tensor, tensor } from "../onnx/runtime.ts";
import type { CheckResult, Margin } from "../reports/schema.ts";
import { wilsonInterval } from "./stats.ts";
import type { EngineInfo } from "../runner/engine.ts";
import { Progress } from "../runner/progress.ts";
import {
  check,
  type CheckSpec,
  median,
  round6,
  type Suite,
  type SuiteContext,
  type SuiteOutcome,
} from "./suite.ts";

/** What evaluating a trained model needs from the context: its engine and thread count. */
export interface EvalContext {
  engine: Engine;
  threads: number;
}

/**
 * The training seeds of a run: `ctx.seed`, `ctx.seed + 1`, … (`count` of them), so `--seed 3`
 * trains on seeds 3, 4, 5.
 */
export function trainingSeeds(ctx: Pick<SuiteContext, "seed">, count: number): number[] {
  return Array.from({ length: count }, (_, i) => ctx.seed + i);
}

/** Wall-clock seconds per phase of a suite, for `timings.json` (never `results.json`). */
export class Phases {
  readonly seconds: Record<string, number> = {};

  /** Records `seconds` for `name`. */
  record(name: string, seconds: number): void {
    this.seconds[name] = round6(seconds);
  }

  /** Runs `fn` and records its wall time under `name`. */
  async time<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    const result = await fn();
    this.record(name, (performance.now() - t0) / 1000);
    return result;
  }
}

/**
 * The margin of a median over seeds of a proportion measured on `trials` items per seed (string
 * or position accuracies): one-sided Wilson bounds at `confidence` of the median seed's count, or
 * for an even number of seeds of the two middle seeds' counts pooled (per seed, not pooled over
 * all seeds: the seeds differ more than the items do).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { medianSeedMargin } from "./harness.ts";
 *
 * const m = medianSeedMargin([0.754, 0.793, 0.754], 256); // 193 of 256 strings
 * assertAlmostEquals(m.lower, 0.7071, 1e-4);
 * ```
 */
export function medianSeedMargin(
  values: readonly number[],
  trials: number,
  confidence = 0.95,
): Margin {
  if (values.length === 0) throw new RangeError("Cannot bound the median of no seeds");
  const sorted = [...values].sort((a, b) => a - b);
  const m = (sorted.length - 1) >> 1;
  const middle = sorted.length % 2 ? [sorted[m]] : [sorted[m], sorted[m + 1]];
  const k = middle.reduce((n, v) => n + Math.round(v * trials), 0);
  const n = middle.length * trials;
  // A two-sided interval at 1 − 2α has one-sided bounds at 1 − α.
  const { lower, upper } = wilsonInterval(k, n, 2 * confidence - 1);
  const which = middle.length === 1 ? "the median seed" : "the two middle seeds";
  return { lower, upper, confidence, basis: `${which}, ${k} of ${n}` };
}

/**
 * The margin of the lowest seed's proportion (a validity gate's: every seed must clear it):
 * one-sided Wilson bounds at `confidence` of that seed's count of `trials`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { lowestSeedMargin } from "./harness.ts";
 *
 * assertEquals(lowestSeedMargin([0.98, 0.367, 0.99], 256).basis, "the lowest seed, 94 of 256");
 * ```
 */
export function lowestSeedMargin(
  values: readonly number[],
  trials: number,
  confidence = 0.95,
): Margin {
  if (values.length === 0) throw new RangeError("Cannot bound the lowest of no seeds");
  const k = Math.round(Math.min(...values) * trials);
  const { lower, upper } = wilsonInterval(k, trials, 2 * confidence - 1);
  return { lower, upper, confidence, basis: `the lowest seed, ${k} of ${trials}` };
}

/**
 * The margin of a median over seeds of a ratio of two proportions, `num[s] / den[s]` (e.g. an
 * accuracy over a baseline accuracy), each measured on `trials` items per seed. The measured
 * value is the median seed's ratio; its one-sided bounds at `confidence` divide the numerator's
 * and denominator's one-sided Wilson bounds at 1 − (1 − confidence)/2 each (Bonferroni: both
 * hold together with probability ≥ `confidence`). Needs an odd number of seeds.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { medianSeedRatioMargin } from "./harness.ts";
 *
 * const { ratio, margin } = medianSeedRatioMargin([0.5], [1], 256); // 128/256 over 256/256
 * assert(ratio === 0.5 && margin.lower < 0.5 && margin.upper > 0.5);
 * ```
 */
export function medianSeedRatioMargin(
  num: readonly number[],
  den: readonly number[],
  trials: number,
  confidence = 0.95,
): { ratio: number; margin: Margin } {
  if (num.length !== den.length || num.length % 2 === 0) {
    throw new RangeError(
      `Cannot bound a median ratio as there must be an odd number of seeds with one numerator and denominator each: current value is ${num.length} numerators, ${den.length} denominators`,
    );
  }
  const ratios = num.map((n, i) => (den[i] > 0 ? n / den[i] : 0));
  const order = ratios.map((_, i) => i).sort((a, b) => ratios[a] - ratios[b]);
  const s = order[(order.length - 1) >> 1];
  const kNum = Math.round(num[s] * trials);
  const kDen = Math.round(den[s] * trials);
  // A two-sided interval at `confidence` has one-sided bounds at 1 − (1 − confidence)/2: each
  // bound gets half the error rate, Bonferroni's share.
  const n = wilsonInterval(kNum, trials, confidence);
  const d = wilsonInterval(kDen, trials, confidence);
  return {
    ratio: ratios[s],
    margin: {
      lower: d.upper > 0 ? n.lower / d.upper : 0,
      // A denominator that may be 0 bounds nothing above.
      upper: d.lower > 0 ? n.upper / d.lower : Number.MAX_VALUE,
      confidence,
      basis: `the median seed's ${kNum} of ${trials} over ${kDen} of ${trials}; ` +
        "Bonferroni of one-sided Wilson bounds",
    },
  };
}

/** One result per training seed, and the statistics suites report over them. */
export class SeedResults<R> {
  readonly seeds: readonly number[];
  readonly results: readonly R[];

  constructor(seeds: readonly number[], results: readonly R[]) {
    if (seeds.length !== results.length || seeds.length === 0) {
      throw new RangeError(
        `Cannot hold per-seed results as there must be one per seed: current value is ${results.length} for ${seeds.length} seeds`,
      );
    }
    this.seeds = seeds;
    this.results = results;
  }

  /** One quantity of every seed's result, in seed order. */
  values(of: (r: R) => number): number[] {
    return this.results.map(of);
  }

  /** The median over seeds of a quantity (unrounded: checks and gates compare it). */
  median(of: (r: R) => number): number {
    return median(this.values(of));
  }

  /** Median, lowest and highest value over seeds of a quantity, rounded for results files. */
  spread(of: (r: R) => number): { median: number; lo: number; hi: number } {
    const v = this.values(of);
    return { median: round6(median(v)), lo: round6(Math.min(...v)), hi: round6(Math.max(...v)) };
  }

  /** The seeds and each one's value of a quantity, rounded: a check's per-seed record. */
  record(of: (r: R) => number): { seeds: number[]; perSeed: number[] } {
    return { seeds: [...this.seeds], perSeed: this.values(of).map(round6) };
  }
}

/**
 * The per-seed loop: for each seed in order, trains (or loads) a model with `train` and measures
 * it with `measure` (default: the trained result itself). Records the phases
 * `train <label> seed <s>` (training seconds in this process, 0 when cached) and
 * `<measureName> <label> seed <s>` (wall time of the measurement).
 */
export async function acrossSeeds<M extends { seconds: number }, R = M>(
  seeds: readonly number[],
  phases: Phases,
  label: string,
  train: (seed: number) => Promise<M>,
  measure?: { name: string; run: (model: M, seed: number) => Promise<R> },
): Promise<SeedResults<R>> {
  const results: R[] = [];
  for (const seed of seeds) {
    const model = await train(seed);
    phases.record(`train ${label} seed ${seed}`, model.seconds);
    if (!measure) {
      results.push(model as unknown as R);
      continue;
    }
    const name = `${measure.name} ${label} seed ${seed}`;
    results.push(await phases.time(name, () => measure.run(model, seed)));
  }
  return new SeedResults(seeds, results);
}

/** A row input of a chunked evaluation: each row holds `width` values. */
export interface RowInput {
  name: string;
  dtype: "int32" | "float32";
  width: number;
}

/** A forward graph over trained parameters, evaluated on fixed rows in chunks. */
export interface ChunkedEvalSpec {
  name: string;
  params: readonly ParamShape[];
  inputs: readonly RowInput[];
  /** Rows per session run (the graph's batch); a last, partial chunk is padded with zero rows. */
  chunk: number;
  /** Builds the named outputs from parameter and input values. */
  outputs: (params: Record<string, Value>, inputs: Record<string, Value>) => Record<string, Value>;
}

/** Runs a {@linkcode ChunkedEvalSpec}'s graph over every row of an evaluation set. */
export interface ChunkedEvaluator {
  /**
   * Runs rows 0..rows−1 of `data` (each input [rows, width], row-major) with the trained
   * `values`; `collect` receives each chunk's outputs ([chunk, …]), the index of its first row
   * and its number of real (unpadded) rows, in row order.
   */
  run(
    values: ReadonlyMap<string, Float32Array>,
    rows: number,
    data: Readonly<Record<string, Int32Array | Float32Array>>,
    collect: (out: Record<string, Tensor>, start: number, n: number) => void,
  ): Promise<void>;
}

/** Opens the (cached) session of `spec` on the context's engine and threads. */
export async function chunkedEvaluator(
  ctx: EvalContext,
  spec: ChunkedEvalSpec,
): Promise<ChunkedEvaluator> {
  const { chunk } = spec;
  const session = await forwardSession({
    name: spec.name,
    params: spec.params,
    inputs: spec.inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: [chunk, i.width] })),
    outputs: spec.outputs,
    threads: ctx.threads,
    engine: ctx.engine,
  });
  return {
    async run(values, rows, data, collect) {
      for (const input of spec.inputs) {
        const got = data[input.name]?.length;
        if (got !== rows * input.width) {
          throw new RangeError(
            `Cannot evaluate ${spec.name} as input ${input.name} must hold ${rows} rows of ${input.width}: current length is ${got}`,
          );
        }
      }
      for (let start = 0; start < rows; start += chunk) {
        const n = Math.min(chunk, rows - start);
        const feeds: Record<string, Tensor> = {};
        for (const input of spec.inputs) {
          const w = input.width;
          let part = data[input.name].subarray(start * w, (start + n) * w);
          if (n < chunk) {
            const padded = input.dtype === "int32"
              ? new Int32Array(chunk * w)
              : new Float32Array(chunk * w);
            padded.set(part);
            part = padded;
          }
          feeds[input.name] = tensor(input.dtype, part, [chunk, w]);
        }
        collect(await session.run(values, feeds), start, n);
      }
    },
  };
}

/**
 * A validity gate: a check that the suite's measurements mean something (e.g. every model
 * learned the task in distribution). Checks made through {@linkcode Gate.check} are
 * inconclusive, not failed, when the gate does not hold.
 */
export interface Gate {
  /** The gate's own check. */
  result: CheckResult;
  /** Why the checks behind the gate are inconclusive; undefined when the gate holds. */
  failure: string | undefined;
  /** The verdict of a check behind the gate. */
  check(spec: CheckSpec): CheckResult;
}

/**
 * The gate of `spec`; `failure` says why it does not hold (undefined when it does). Without a
 * `failure`, a gate check that does not pass makes the checks behind it inconclusive with a
 * reason naming the gate.
 */
export function validityGate(spec: CheckSpec, failure?: string): Gate {
  const result = check(spec);
  const reason = failure ??
    (result.actual === "pass" ? undefined : `the validity gate ${spec.id} did not pass`);
  return {
    result,
    failure: reason,
    check: (s) => check({ ...s, inconclusive: s.inconclusive ?? reason }),
  };
}

/**
 * Runs `suite` at the `smoke` profile as unit tests do (`registry_test.ts`, each suite's test):
 * seed 0, `--fresh` into a new temporary model cache (removed afterwards), silent progress and
 * log. Seconds per suite; the trained models are too bad to pass a validity gate.
 */
export async function smokeRun(
  suite: Suite,
  engine: EngineInfo,
  threads = 1,
): Promise<SuiteOutcome> {
  const cacheDir = await Deno.makeTempDir({ prefix: `claimbench-smoke-${suite.id}-` });
  try {
    return await suite.run({
      profile: "smoke",
      seed: 0,
      engine,
      threads,
      fresh: true,
      trainedThisRun: new Set(),
      cacheDir,
      progress: (label, total, unit) => new Progress(label, total, { unit, write: () => {} }),
      log: () => {},
    });
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
}

/**
 * The margin of a difference of two medians over seeds of proportions (each on `trials` items
 * per seed): the first's lower bound minus the second's upper bound and vice versa, each bound
 * one-sided at 1 − (1 − confidence)/2 of its median seed's count (Bonferroni: both hold with
 * probability ≥ `confidence`). Needs an odd number of seeds.
 */
export function medianGapMargin(
  a: readonly number[],
  b: readonly number[],
  trials: number,
  confidence = 0.95,
): Margin {
  const mid = (v: readonly number[]) => [...v].sort((x, y) => x - y)[(v.length - 1) >> 1];
  if (a.length % 2 === 0 || b.length % 2 === 0) {
    throw new RangeError("Cannot bound a gap of medians over an even number of seeds");
  }
  const each = 1 - (1 - confidence) / 2;
  const [ka, kb] = [Math.round(mid(a) * trials), Math.round(mid(b) * trials)];
  const ia = wilsonInterval(ka, trials, 2 * each - 1);
  const ib = wilsonInterval(kb, trials, 2 * each - 1);
  return {
    lower: round6(ia.lower - ib.upper),
    upper: round6(ia.upper - ib.lower),
    confidence,
    basis: `the median seeds, ${ka} and ${kb} of ${trials} each (Bonferroni)`,
  };
}
