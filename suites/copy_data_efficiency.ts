/**
 * Claim ("Repeat After Me", Jelassi et al. 2024, §3.2; seed 002; CLAIMS.md §1.4 J5): transformers
 * need far fewer training examples than GSSMs to learn to copy ("100x less samples than the best
 * GSSMs" at 300 tokens).
 *
 * Read from the learning curves the copy arms record while `copy-length-generalisation` trains
 * them (`suites/copy_arms.ts`, the same cache entries): string accuracy at the training length on
 * held-out strings every few steps. E₉₀ is the number of training strings seen when an arm first
 * reaches 0.9; every arm of a seed sees the same batches, so the strings counted are the same.
 * Deviation from CLAIMS.md J5 (train on L ≤ 32, evaluate L = 32): one training serves both
 * claims, at J4's L ≤ 20, where a GSSM's state is ample (J3), so the paper's 100× is not expected
 * and the check is directional.
 * @module
 */
import type { CheckResult, FigureData } from "../reports/schema.ts";
import {
  COPY_TRAINING,
  type CopyArm,
  copyArm,
  examplesSeen,
  trainCopyArm,
  type TrainedCopyArm,
} from "./copy_arms.ts";
import { acrossSeeds, Phases, type SeedResults, trainingSeeds } from "./harness.ts";
import {
  calibrationOf,
  check,
  median,
  type Pilot,
  pilotOf,
  type Profile,
  round6,
  type Suite,
  type SuiteContext,
} from "./suite.ts";

const ID = "copy-data-efficiency";
const SOURCE = "Jelassi et al. 2024 (arXiv 2402.01032) §3.2, seed 002; CLAIMS.md §1.4 J5";

/** The level whose first crossing E₉₀ counts. */
const LEVEL = 0.9;
/** E₉₀(best GSSM) / E₉₀(Hard-ALiBi) must reach this (CLAIMS.md J5, directional). */
const RATIO = 3;

/**
 * The pilots on calibration seeds, frozen: re-run with `deno task reproduce --profile full
 * --suite copy-length-generalisation --suite copy-data-efficiency --seed 1000 --engine native`.
 */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  full: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided:
      "Budgets and curves as copy-length-generalisation's full pilot (the same models); the " +
      "threshold kept (CLAIMS.md J5). E₉₀ per seed: Hard-ALiBi 188,646, 376,827, 211,646; " +
      "Mamba 565,649 then never within its 706,907 strings; LSTM never. The best GSSM's median " +
      "is censored at its budget, so the ratio (3.34) is a lower bound that passes.",
    checks: { "J5-ratio": { measured: 3.34004, actual: "pass" } },
  },
};

/** One arm's learning on one seed: the curve against strings seen, and E₉₀ (null: never). */
export interface Learning {
  curve: { step: number; examples: number; accuracy: number }[];
  e90: number | null;
  seconds: number;
}

/** E₉₀ of a curve: the strings seen at its first point at or above {@linkcode LEVEL}, or null. */
export function firstReaching(
  curve: readonly { examples: number; accuracy: number }[],
  level = LEVEL,
): number | null {
  return curve.find((p) => p.accuracy >= level)?.examples ?? null;
}

/**
 * The median of E₉₀ over seeds, a seed that never reached the level counting as more than any
 * that did (it sorts last); null when the median seed never reached it.
 */
export function medianE90(e90s: readonly (number | null)[]): number | null {
  const sorted = [...e90s].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  return sorted[(sorted.length - 1) >> 1];
}

function learning(trained: TrainedCopyArm, seen: readonly number[]): Learning {
  const curve = trained.curve.map((p) => ({
    step: p.step,
    examples: seen[p.step - 1],
    accuracy: round6(p.accuracy),
  }));
  return { curve, e90: firstReaching(curve), seconds: trained.seconds };
}

async function run(ctx: SuiteContext) {
  const c = COPY_TRAINING[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const arms = c.arms.map(copyArm);
  const seeds = trainingSeeds(ctx, c.seeds);
  const phases = new Phases();
  const longest = Math.max(...arms.map((a) => c.armBudgets[a.id]?.steps ?? c.steps));
  const seen = new Map<number, number[]>();
  for (const seed of seeds) {
    seen.set(
      seed,
      await phases.time(`count strings seed ${seed}`, () => {
        return Promise.resolve(examplesSeen(c, seed, longest));
      }),
    );
  }
  const learned = new Map<string, SeedResults<Learning>>();
  for (const arm of arms) {
    learned.set(
      arm.id,
      await acrossSeeds(seeds, phases, arm.id, async (seed) => {
        const trained = await trainCopyArm(ctx, c, arm, seed);
        return learning(trained, seen.get(seed)!);
      }),
    );
  }
  const e90s = (a: CopyArm) => learned.get(a.id)!.results.map((l) => l.e90);
  const budgetOf = (a: CopyArm) => seen.get(seeds[0])![(c.armBudgets[a.id]?.steps ?? c.steps) - 1];
  const shown = (e: number | null, a: CopyArm) =>
    e === null ? `never (> ${budgetOf(a).toLocaleString("en-US")})` : e.toLocaleString("en-US");
  const summary = arms.map((a) => `${a.label}: ${e90s(a).map((e) => shown(e, a)).join(", ")}`)
    .join("; ");

  const ha = arms[0];
  const gssms = arms.filter((a) => a.family === "gssm");
  const checks: CheckResult[] = [];
  if (gssms.length) {
    const haE90 = medianE90(e90s(ha));
    // A GSSM that never reached the level is censored at its budget: the ratio is then a lower
    // bound, which passes only if the bound itself clears the threshold.
    const effective = (a: CopyArm) => medianE90(e90s(a)) ?? budgetOf(a);
    const best = gssms.reduce((b, g) => (effective(g) < effective(b) ? g : b));
    const censored = medianE90(e90s(best)) === null;
    checks.push(check({
      id: "J5-ratio",
      title: "The best GSSM needs several times more training strings than Hard-ALiBi to copy",
      source: `${SOURCE}: "transformers need 100x less samples than the best GSSMs"`,
      metric: `E₉₀(${best.label}) / E₉₀(${ha.label}), medians over seeds, strings seen before ` +
        `string accuracy ≥ ${LEVEL} at L = ${c.trainMaxLen}` +
        (censored ? " (the GSSM never reached it: its budget, a lower bound)" : ""),
      measured: haE90 === null ? null : round6(effective(best) / haE90),
      threshold: RATIO,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J5-ratio"),
      detail: `E₉₀ per seed (${seeds.join(", ")}) — ${summary}. Accuracy on ` +
        `${c.learningCurve.count} held-out strings every ${c.learningCurve.every} steps ` +
        `(${c.batch} rows of ${c.context} tokens). CLAIMS.md J5's directional threshold; the ` +
        "paper's 100× is at 300 tokens, where a GSSM's state is the bottleneck." +
        (haE90 === null
          ? ` INCONCLUSIVE: ${ha.label} never reached ${LEVEL} on the median seed.`
          : ""),
    }));
  }

  const data: FigureData["data"] = [];
  for (const arm of arms) {
    const curves = learned.get(arm.id)!.results.map((l) => l.curve);
    for (let k = 0; k < curves[0].length; k++) {
      const at = curves.map((cv) => cv[k].accuracy);
      data.push({
        arm: arm.label,
        examples: curves[0][k].examples,
        accuracy: median(at),
        lo: Math.min(...at),
        hi: Math.max(...at),
      });
    }
  }
  const figures: FigureData[] = [{
    id: "accuracy-vs-examples",
    title: "String accuracy vs training strings seen",
    caption: `String accuracy at L = ${c.trainMaxLen} on ${c.learningCurve.count} held-out ` +
      `strings while training on lengths 1–${c.trainMaxLen}; median over seeds ` +
      `${seeds.join(", ")} (strings seen on seed ${seeds[0]}), band min–max; E₉₀ is where a ` +
      `curve first crosses ${LEVEL}.` +
      (gssms.length ? "" : " This profile trains no GSSM: the ratio needs the full profile."),
    mark: "line",
    data,
    x: {
      field: "examples",
      title: "training strings seen (log scale)",
      type: "quantitative",
      scale: "log",
    },
    y: { field: "accuracy", title: "string accuracy", type: "quantitative" },
    color: { field: "arm", title: "arm", type: "nominal" },
    band: { lower: "lo", upper: "hi" },
    rules: [{ axis: "y", value: LEVEL, label: `${LEVEL}` }],
  }];
  return {
    config: {
      training: c,
      level: LEVEL,
      ratio: RATIO,
      seedsUsed: seeds,
      calibration: pilot ?? null,
      arms: arms.map((a) => ({ id: a.id, family: a.family, params: a.paramCount })),
    } as unknown as Record<string, unknown>,
    checks,
    metrics: {
      e90: Object.fromEntries(arms.map((a) => [a.id, e90s(a)])),
      medianE90: Object.fromEntries(arms.map((a) => [a.id, medianE90(e90s(a))])),
    },
    figures,
    phases: phases.seconds,
  };
}

/** The `copy-data-efficiency` suite. */
export const copyDataEfficiency: Suite = {
  id: ID,
  title: "Data efficiency of copying: transformers against GSSMs",
  claim: "A transformer learns to copy from several times fewer training strings than a " +
    "state-space model (Mamba, LSTM) of its size (the paper: 100× fewer at 300 tokens).",
  source: SOURCE,
  pilots: PILOTS,
  run,
};
