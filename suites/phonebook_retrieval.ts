/**
 * Claim ("Repeat After Me", Jelassi et al. 2024, §4.3; CLAIMS.md §1.4 J8): a transformer looks up
 * a number in a phone book where a state-space model (GSSM) of equal or larger size fails once the
 * book is long enough: "even the smallest transformer (410M) outperforms the largest GSSM (2.8B)
 * when the phone-book size is long enough (L ≥ 70)".
 *
 * An analogue trained from scratch, not the pretrained-model reproduction: the paper prompts
 * pretrained Pythia and Mamba checkpoints (410M to 2.8B), out of CPU scope. Here the copy suites'
 * parameter-matched arms (`copy_arms.ts`, their embedding sized to the phone book's 46 tokens:
 * Hard-ALiBi and NoPE transformers, Mamba and LSTM GSSMs), and a Mamba of twice the parameters
 * for "the smallest transformer beats the largest GSSM", train on the task itself. The task is
 * `fixtures/phonebook.ts`: 32 names of one token each, numbers of 4 digit tokens, the source's
 * separators and its 2-shot layout (book, blank line, two entries of the book, blank line, the
 * query name). Books of 4–8 entries train, one example per row, with the loss on the digits of
 * the answer and of the two few-shot entries (each a lookup); books of 8 to 32 entries (4× the
 * training maximum) test, scored by the exact match of the 4 digits, teacher-forced (greedy
 * decoding's answer, CLAIMS.md §0).
 *
 * Deviations from CLAIMS.md J8's scaled set-up, each forced by a measured exploration (in
 * {@linkcode CONFIGS}' comments):
 * - Names are one token from 32, not two (first, last) from 16 × 16: the 2-layer transformer
 *   keyed its lookup on one of the two tokens and stayed at that key's ceiling (0.61 at 8
 *   entries), and 64 one-token names were not learned in 1,500 steps.
 * - Books of 4–8 entries train, not 4–16, and the checks read 16 entries (2× the training
 *   maximum, as J8's 32 is of 16) and the decay 8 → 32 (J8: 8 → 48); 32 names cap a book at 32.
 *   No arm learned books of 4–16 at a CPU budget.
 * - The few-shot entries' digits are scored in training too (J8: the answer only), 3 lookups
 *   a row instead of 1.
 * - A training book's numbers use 3 digits of 10, drawn per book; evaluation books are uniform.
 *   With uniform digits 2 of 3 pilot seeds found every digit but the first by the digits before
 *   it (an n-gram match, defeated when entries share leading digits) rather than by the name;
 *   with 3 digits a book, entries share them so often that only the name finds the number.
 *
 * Deviations from the paper, besides the scale and the training:
 * - Books beyond the training maximum ask the models to generalise in length as well as to
 *   retrieve; the paper's models were pretrained on contexts that hold their books. The checked
 *   transformer is therefore Hard-ALiBi, the copy suites' arm that generalises in length (Pythia
 *   uses RoPE), and the smallest transformer trained.
 * - The largest GSSM is 2× the transformer's parameters (the paper's: 2.8B against 410M, 7×).
 * - The answer is the 4 digits; the source also cuts the generation at its first newline, which
 *   we neither generate nor score.
 * - The GSSMs' states are far from full: 32 numbers of 4 digits are 426 bits, Mamba's state is
 *   233,472 (fp32). A GSSM that fails here fails to use its state, as the paper's 2.8B Mamba
 *   does at L = 70; no capacity bound forces it.
 *
 * Thresholds are CLAIMS.md J8's proposals; the quick profile's pilot on calibration seeds kept
 * them ({@linkcode PILOTS}); verdicts are medians over 3 training seeds.
 * @module
 */
import {
  PHONEBOOK_NUMBER_DIGITS,
  PHONEBOOK_VOCAB,
  phonebookBatch,
  phonebookExampleLength,
} from "../fixtures/phonebook.ts";
import { Prng } from "../fixtures/prng.ts";
import { dataSeed, deriveSeed } from "../fixtures/seeds.ts";
import { ADAMW_DEFAULTS } from "../onnx/optim.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import {
  type ArmOptimisation,
  armsForVocab,
  armsWithIds,
  type CopyArm,
  kvBitsPerToken,
  stateLabel,
  stringAccuracy,
  trainArm,
  type TrainBudget,
  type TrainedCopyArm,
} from "./copy_arms.ts";
import {
  acrossSeeds,
  type EvalContext,
  lowestSeedMargin,
  medianGapMargin,
  medianSeedMargin,
  medianSeedRatioMargin,
  Phases,
  type SeedResults,
  trainingSeeds,
  validityGate,
} from "./harness.ts";
import {
  calibrationOf,
  type Pilot,
  pilotOf,
  type Profile,
  round6,
  type Suite,
  type SuiteContext,
  type SuiteProfile,
} from "./suite.ts";

const ID = "phonebook-retrieval";
const SOURCE = "Jelassi et al. 2024 (arXiv 2402.01032) §4.3; CLAIMS.md §1.4 J8";
const ANALOGUE = "analogue trained from scratch, not the pretrained-model reproduction";

/** The paper's crossover: Pythia 410M ahead of Mamba 2.8B from this book size on. */
const PAPER_CROSSOVER = 70;
const PAPER_CLAIM = `410M transformer ahead of 2.8B Mamba from L ≥ ${PAPER_CROSSOVER}`;

/** The copy arms, their embedding sized to the phone book's vocabulary, in `ARMS` order. */
const ARMS: readonly CopyArm[] = armsForVocab(PHONEBOOK_VOCAB.size);

/** A profile: the arms and their training, the evaluation and its thresholds. */
export interface PhonebookConfig extends ArmOptimisation {
  /** The arms trained (`copy_arms.ts` ids) and each one's steps and peak learning rate. */
  train: Readonly<Record<string, TrainBudget>>;
  /** Fewest entries of a training book. */
  trainMinEntries: number;
  /** Most entries of a training book; `context` holds its example. */
  trainMaxEntries: number;
  /**
   * Train on the few-shot entries' digits as well as the answer's (`phonebookBatch`'s
   * `scoreShots`): 3 lookups per row. Evaluation scores the answer only.
   */
  scoreShots: boolean;
  /**
   * Distinct digits of a training book's numbers (`phonebookBatch`'s `digitsPerBook`); 10 is
   * uniform. Evaluation books are uniform.
   */
  digitsPerBook: number;
  seeds: number;
  /**
   * Book sizes evaluated; they include `gateEntries`, `trainMaxEntries`, `checkEntries`,
   * `decayFrom` and `decayTo`.
   */
  evalEntries: number[];
  /** Books per evaluated size. */
  evalCount: number;
  /** Held-out accuracy at `gateEntries` recorded every `every` steps. */
  curve: { every: number; count: number };
  /** Book size at which the validity gate asks that every trained arm has learned the lookup. */
  gateEntries: number;
  /** Validity gate: every trained arm and seed at `gateEntries`, at least. */
  gate: number;
  /** Book size of the checks of each arm and of the gap (CLAIMS.md J8: 32, 2× training). */
  checkEntries: number;
  /** Hard-ALiBi at `checkEntries`, at least. */
  haAtCheck: number;
  /** Each GSSM at `checkEntries`, at most. */
  gssmAtCheck: number;
  /** The decay check's short book: a size in the training range. */
  decayFrom: number;
  /** The decay check's long book. */
  decayTo: number;
  /** Each GSSM's accuracy at `decayTo` over that at `decayFrom`, at most. */
  gssmDecay: number;
  /** Hard-ALiBi minus the largest GSSM at `checkEntries`, at least. */
  smallestVsLargest: number;
}

const THRESHOLDS = {
  gate: 0.9,
  haAtCheck: 0.9,
  gssmAtCheck: 0.5,
  gssmDecay: 0.5,
  smallestVsLargest: 0,
};

// Exploration on calibration seed 1000 (lr 3e-3, native engine), scoring the few-shot entries'
// digits too unless said:
// - Names of 2 tokens (CLAIMS.md J8: 16 first × 16 last), Hard-ALiBi: books of 4–16 at batch 32
//   (1,500 and 3,000 steps) and at batch 128 (1,000 steps) left the loss at ln 10. Books of 4–8
//   at batch 128 learned from step ≈ 650: 0.61 / 0.36 / 0.19 / 0.10 at 8 / 16 / 24 / 32 entries
//   after 1,500 steps, 0.58 / 0.28 / 0.09 / 0.04 after 3,000. That is just under what a lookup
//   keyed on one name token reaches (right only when no other entry shares the queried last
//   name: C(240, L−1)/C(255, L−1) = 0.65 / 0.39 / 0.23 / 0.14): the model did not learn the
//   (first, last) conjunction, and more steps did not teach it. Mamba (1,500 steps) and NoPE
//   (4 layers, 1,500 steps) learned nothing (exact match 0).
// - One-token names, Hard-ALiBi, books of 4–8: 64 names at batch 128 (1,500 steps) or batch 64
//   (4,000 steps) stayed on the plateau (loss 2.20 and 2.03, exact match 0); 32 names at batch 64
//   (2,500 steps) had only begun (0.05 at 8 entries); 32 names at batch 128 learned between steps
//   750 and 1,000 (0.96 at 8 entries) and reached 0.969 / 0.957 / 0.895 / 0.852 at 8 / 16 / 24 /
//   32 entries after 2,000 steps (12 steps/s, 3 minutes). Books of 4–16 at batch 32 stayed at
//   ln 10 for 1,500 steps. Hence 32 names, books of 4–8, batch 128.
// - Mamba at that recipe: 2.8 steps/s, so 1,500 steps take 9 minutes a seed; the loss left ln 10
//   at step ≈ 1,000 and reached 1.82 at 1,500, exact match still 0 at every size.
// - That recipe (uniform digits) learned the lookup on 1 of 3 pilot seeds; the others stopped at
//   0.85 and 0.82 at 8 entries. Each digit apart (seeds 1001, 1002 at 8 / 32 entries): the first
//   digit 1.0 / 1.0, the second 0.89 / 0.43, the third and fourth ≈ 0.97 / 0.87. The first digit
//   is found by the name; the others lean on the digits before them (an n-gram match), which
//   goes wrong where other entries share those digits, the more often the longer the book. Seed
//   1000 finds every digit by the name (≥ 0.88 each at 32). Neither books of 4–12 (seed 1001,
//   2,000 steps: loss 2.21, not learned) nor a curriculum of 4–8 then 4–16 from step 1,000 (2,250
//   steps: first digit 0.29 at 8) helped.
// - Numbers of 3 digits a book in training (digitsPerBook 3; evaluation uniform): entries share
//   their leading digits so often that only the name tells them apart. Seed 1001 learned by step
//   750 and reached 0.984 / 0.961 / 0.883 / 0.879 at 8 / 16 / 24 / 32 entries in 2,000 steps.
// - Looking for a cheaper quick profile (CI ran 50 minutes with 3,000 steps), 1,500 steps on
//   calibration seed 1000, the slowest to learn: lr 6e-3 and 1e-2 left it on the plateau (loss
//   ≈ ln 3 = 1.10; at 6e-3 exact match 0.004 at 8 entries, at 1e-2 below the gate too), and
//   numbers of 2 digits a book at 3e-3 learned nothing (exact match 0 at 8 entries) on seed 1000
//   nor on seed 1001, which learns by step 750 with 3 digits. 3,000 steps stay.
// - The full profile's other arms at the frozen recipe, seed 1000, one run each (exact match at
//   8 entries; each digit at 8; the held-out curve at 8, every 250 steps): Mamba at lr 1e-2,
//   3,000 steps: 0.059 (digits 0.28 / 0.48 / 0.82 / 0.59; loss 0.53; curve up to 0.086); at
//   6e-3: 0.023 (loss 0.62); at 1e-2 for 6,000 steps (2 threads, 5.1 steps/s, 20 minutes):
//   0.059 (digits 0.27 / 0.55 / 0.69 / 0.80; loss 0.48; curve flat at 0.04–0.09 from step
//   1,000). Mamba 2× at 1e-2, 3,000 steps: 0.004 (loss 0.61). NoPE at 3e-3, 3,000 steps: 0.008
//   (digits ≈ 0.26–0.37; loss 0.85). The first digit stays near 0.27, about a guess among a
//   book's 3 digits: no arm but Hard-ALiBi finds the entry by its name, and neither a higher
//   learning rate nor twice the steps changed that for Mamba.
const FULL: PhonebookConfig = {
  // Hard-ALiBi: 3,000 steps, the quick pilot's budget ({@linkcode PILOTS}). The other arms'
  // budgets are not piloted: a guess from the exploration above (with uniform digits), for the
  // full profile, which nobody has run (3 seeds of each would take about 4 hours). With 3 digits
  // a training book, on calibration seed 1000 (1 thread each, two runs side by side), none of them
  // learned the lookup: exact match at 8 entries Mamba 0.008 after 3,000 steps (loss 0.66; its
  // digits 0.25 / 0.41 / 0.37 / 0.39, where a guess does 0.1 in uniform books; held-out curve
  // 0.03 at the end, barely rising), LSTM 0 after 3,000 (digits ≈ 0.12, loss 1.05), NoPE 0 after
  // 1,500 (digits ≈ 0.14, loss 1.07); nor at the larger budgets and learning rates of the
  // exploration above. At these budgets the full profile's gate would fail, and the GSSM checks
  // be inconclusive, as J4's are (copy_length_generalisation.ts).
  train: {
    "hard-alibi": { steps: 3000, lr: 3e-3 },
    nope: { steps: 1500, lr: 3e-3 },
    mamba: { steps: 3000, lr: 3e-3 },
    "mamba-2x": { steps: 3000, lr: 3e-3 },
    lstm: { steps: 3000, lr: 3e-3 },
  },
  trainMinEntries: 4,
  trainMaxEntries: 8,
  scoreShots: true,
  digitsPerBook: 3,
  // One example per row: a book of 8 entries is 7·8 + 24 = 80 tokens, a row holds context + 1.
  context: phonebookExampleLength(8) - 1, // 79
  batch: 128,
  warmupSteps: 100,
  minLrRatio: 0.1,
  optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0.1, clipNorm: 1.0 },
  seeds: 3,
  evalEntries: [8, 16, 24, 32],
  // 256 books put a 95% half-width of ≈ 0.04 around 0.9.
  evalCount: 256,
  curve: { every: 250, count: 128 },
  gateEntries: 8,
  checkEntries: 16,
  decayFrom: 8,
  decayTo: 32,
  ...THRESHOLDS,
};

/** The profiles. */
export const CONFIGS: Record<SuiteProfile, PhonebookConfig> = {
  full: FULL,
  // CI's budget: the transformer's half (the full profile's Hard-ALiBi models, the same cache
  // entries). A GSSM arm costs ≈ 9 minutes a seed for 1,500 steps, and had not learned by then.
  quick: { ...FULL, train: { "hard-alibi": FULL.train["hard-alibi"] } },
  // Tests only: every arm, 3 steps of 4 books, 8 books per size; the models learn nothing.
  smoke: {
    ...FULL,
    train: {
      "hard-alibi": { steps: 3, lr: 1e-3 },
      nope: { steps: 3, lr: 1e-3 },
      mamba: { steps: 3, lr: 1e-3 },
      "mamba-2x": { steps: 3, lr: 1e-3 },
      lstm: { steps: 3, lr: 1e-3 },
    },
    batch: 4,
    warmupSteps: 1,
    seeds: 1,
    evalCount: 8,
    curve: { every: 3, count: 8 },
  },
};

/**
 * The pilots on calibration seeds, frozen:
 * `deno task reproduce --suite phonebook-retrieval --seed 1000`.
 */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  quick: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "Hard-ALiBi, 3,000 steps at lr 3e-3, batch 128, books of 4–8 whose numbers use 3 " +
      "digits a book (the exploration in CONFIGS' comments), CLAIMS.md J8's thresholds kept; " +
      "777 s for 3 seeds. Every seed learns the lookup (0.980, 0.996, 0.996 at 8 entries; " +
      "0.949, 0.969, 0.953 at 16; 0.844, 0.879, 0.879 at 32), its weakest digit the third " +
      "(0.88–0.91 at 32). The first pilot (uniform digits, 2,000 steps, 545 s) learned on one " +
      "seed: 0.969, 0.852, 0.816 at 8, 0.957, 0.605, 0.648 at 16 (gate fail, J8-HA " +
      "inconclusive), its partial seeds finding all digits but the first by the digits before " +
      "them; the verdict seeds, run once at that recipe, gave 0.781, 0.824, 0.969 at 8 and " +
      "0.594, 0.590, 0.922 at 16 (the same verdicts). With 3 digits a book at 2,000 steps two " +
      "seeds learned by step 750 and seed 1000 had not (0.043 at 8), hence 3,000 steps.",
    checks: {
      "J8-gate": { measured: 0.980469, perSeed: [0.980469, 0.996094, 0.996094], actual: "pass" },
      "J8-HA": { measured: 0.953125, perSeed: [0.949219, 0.96875, 0.953125], actual: "pass" },
    },
  },
};

/** Trains (or loads) one arm on books of trainMinEntries..trainMaxEntries entries. */
function trainPhonebookArm(
  ctx: SuiteContext,
  c: PhonebookConfig,
  arm: CopyArm,
  seed: number,
): Promise<TrainedCopyArm> {
  const longest = phonebookExampleLength(c.trainMaxEntries);
  if (longest > c.context + 1) {
    throw new RangeError(
      `Cannot train ${ID} as context must hold an example of the training maximum (${
        longest - 1
      } tokens): current value is ${c.context}`,
    );
  }
  const budget = c.train[arm.id];
  const trainSeed = dataSeed(ID, "train", seed);
  const curveContext = phonebookExampleLength(c.gateEntries) - 1;
  return trainArm(ctx, {
    suite: ID,
    task: "phonebook",
    arm,
    seed,
    key: {
      trainMinEntries: c.trainMinEntries,
      trainMaxEntries: c.trainMaxEntries,
      scoreShots: c.scoreShots,
      digitsPerBook: c.digitsPerBook,
      context: c.context,
      batch: c.batch,
      lr: budget.lr,
      warmupSteps: c.warmupSteps,
      minLrRatio: c.minLrRatio,
      optimizer: c.optimizer,
      curve: c.curve,
      gateEntries: c.gateEntries,
    },
    budget,
    training: c,
    rows: (step) =>
      phonebookBatch(new Prng(deriveSeed("batch", trainSeed, step)), {
        count: c.batch,
        context: c.context,
        minEntries: c.trainMinEntries,
        maxEntries: c.trainMaxEntries,
        scoreShots: c.scoreShots,
        digitsPerBook: c.digitsPerBook,
      }),
    curve: {
      every: c.curve.every,
      count: c.curve.count,
      context: curveContext,
      rows: phonebookBatch(new Prng(dataSeed(ID, "valid", c.gateEntries)), {
        count: c.curve.count,
        context: curveContext,
        minEntries: c.gateEntries,
        maxEntries: c.gateEntries,
      }),
    },
  });
}

/** One trained arm's scores per evaluated book size (`evalEntries` order). */
interface EntryScores {
  /** Exact match of the 4 digits. */
  exact: number[];
  /** Accuracy of each digit of the answer, teacher-forced: [size][digit]. */
  digits: number[][];
}

/** Exact match of the 4 digits, and each digit's accuracy, per evaluated book size. */
async function evaluateEntries(
  ctx: EvalContext,
  c: PhonebookConfig,
  arm: CopyArm,
  values: Map<string, Float32Array>,
): Promise<EntryScores> {
  const out: EntryScores = { exact: [], digits: [] };
  for (const L of c.evalEntries) {
    // Each size its own width, so that no row is mostly PAD.
    const context = phonebookExampleLength(L) - 1;
    const rows = phonebookBatch(new Prng(dataSeed(ID, "test", L)), {
      count: c.evalCount,
      context,
      minEntries: L,
      maxEntries: L,
    });
    const scored = await stringAccuracy(ctx, arm, values, rows, c.evalCount, context);
    out.exact.push(scored.accuracy);
    out.digits.push(scored.positionAccuracy);
  }
  return out;
}

/** An arm's parameters and state, for details. */
function sizeOf(arm: CopyArm): string {
  return `${arm.paramCount.toLocaleString("en-US")} parameters, state ${stateLabel(arm)}`;
}

async function run(ctx: SuiteContext) {
  const c = CONFIGS[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const arms = armsWithIds(ARMS, Object.keys(c.train));
  const seeds = trainingSeeds(ctx, c.seeds);
  const phases = new Phases();
  // arm id → seed → scores per evaluated book size
  const acc = new Map<string, SeedResults<EntryScores>>();
  const curves: Record<string, { step: number; accuracy: number }[][]> = {};
  for (const arm of arms) {
    const models: TrainedCopyArm[] = [];
    acc.set(
      arm.id,
      await acrossSeeds(seeds, phases, arm.id, async (seed) => {
        const t = await trainPhonebookArm(ctx, c, arm, seed);
        models.push(t);
        return t;
      }, {
        name: "eval",
        run: (t) => evaluateEntries(ctx, c, arm, t.params),
      }),
    );
    curves[arm.id] = models.map((t) => t.curve);
  }
  const at = (L: number) => {
    const k = c.evalEntries.indexOf(L);
    if (k < 0) {
      throw new RangeError(
        `Cannot read the accuracy at ${L} entries as evalEntries must include it: current value is ${c.evalEntries}`,
      );
    }
    return (s: EntryScores) => s.exact[k];
  };
  const of = (arm: CopyArm) => acc.get(arm.id)!;
  const medianAt = (arm: CopyArm, L: number) => of(arm).median(at(L));
  const Lg = c.gateEntries;
  const Lc = c.checkEntries;
  const [Ls, Ll] = [c.decayFrom, c.decayTo];
  // A profile may train fewer arms (quick, pilots); the checks of missing arms are left out.
  const ha = arms.find((a) => a.id === "hard-alibi");
  const gssms = arms.filter((a) => a.family === "gssm");
  const lowest = (arm: CopyArm) => Math.min(...of(arm).values(at(Lg)));
  const weakest = arms.reduce((w, a) => (lowest(a) < lowest(w) ? a : w));
  const notLearned = arms.filter((a) => lowest(a) < c.gate);
  const budgets = arms.map((a) =>
    `${a.label} ${c.train[a.id].steps} steps at lr ${c.train[a.id].lr}`
  )
    .join(", ");
  const inDistribution = arms.map((a) =>
    `${a.label} ${medianAt(a, Lg).toFixed(3)} at ${Lg}, ${
      medianAt(a, c.trainMaxEntries).toFixed(3)
    } at ${c.trainMaxEntries}`
  ).join("; ");
  const gate = validityGate(
    {
      id: "J8-gate",
      title: `Validity gate: every arm has learned the lookup in books of ${Lg} entries (in the ` +
        "training range), every seed",
      source: `${SOURCE}: the models are trained on the task, then tested on longer books`,
      metric:
        `lowest exact match of the 4 digits at L = ${Lg} over arms and seeds (${weakest.label}), ${c.evalCount} books`,
      measured: round6(lowest(weakest)),
      margin: lowestSeedMargin(of(weakest).values(at(Lg)), c.evalCount),
      threshold: c.gate,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J8-gate"),
      detail: `In distribution (median) — ${inDistribution}. Budgets: ${budgets}. If the gate ` +
        "fails, the checks below are inconclusive, not failed.",
      ...of(weakest).record(at(Lg)),
    },
    notLearned.length
      ? `${notLearned.map((a) => a.label).join(", ")} did not learn the lookup at L = ${Lg} ` +
        "on every seed"
      : undefined,
  );
  const checks: CheckResult[] = [gate.result];
  const claim: CheckResult[] = [];
  const times = `${Lc / c.trainMaxEntries}× the training maximum`;
  if (ha) {
    claim.push(gate.check({
      id: "J8-HA",
      title: `Hard-ALiBi retrieves from books of ${Lc} entries, ${times}`,
      source: `${SOURCE}: the transformers' accuracy holds as the book grows`,
      metric: `median exact match of the 4 digits at L = ${Lc}, ${c.evalCount} books`,
      measured: round6(medianAt(ha, Lc)),
      margin: medianSeedMargin(of(ha).values(at(Lc)), c.evalCount),
      threshold: c.haAtCheck,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J8-HA"),
      detail: `Seeds ${seeds.join(", ")}; ${sizeOf(ha)} (a prompt of L = ${Lc} is ${
        phonebookExampleLength(Lc) - 1
      } tokens, a KV cache of ${
        (kvBitsPerToken(ha)! * (phonebookExampleLength(Lc) - 1)).toLocaleString("en-US")
      } bits). Threshold as CLAIMS.md J8 proposes (to be calibrated).`,
      ...of(ha).record(at(Lc)),
    }));
  }
  for (const g of gssms) {
    claim.push(gate.check({
      id: `J8-${g.id}`,
      title: `${g.label} fails to retrieve from books of ${Lc} entries`,
      source: `${SOURCE}: the GSSMs' accuracy falls as the book grows`,
      metric: `median exact match of the 4 digits at L = ${Lc}, ${c.evalCount} books`,
      measured: round6(medianAt(g, Lc)),
      margin: medianSeedMargin(of(g).values(at(Lc)), c.evalCount),
      threshold: c.gssmAtCheck,
      direction: "<=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, `J8-${g.id}`),
      detail: `Seeds ${seeds.join(", ")}; ${sizeOf(g)}` +
        (ha ? `, against ${ha.label}'s ${ha.paramCount.toLocaleString("en-US")} parameters` : "") +
        ". Threshold as CLAIMS.md J8 proposes (to be calibrated).",
      ...of(g).record(at(Lc)),
    }));
    // The ratio form: harness.ts bounds a median ratio of two proportions (medianSeedRatioMargin);
    // the gate keeps the denominator ≥ 0.9, so the ratio is not a 0/0.
    const long = of(g).values(at(Ll));
    const short = of(g).values(at(Ls));
    const { ratio, margin } = medianSeedRatioMargin(long, short, c.evalCount);
    claim.push(gate.check({
      id: `J8-decay-${g.id}`,
      title: `${g.label}'s accuracy at least halves from ${Ls} to ${Ll} entries`,
      source: `${SOURCE}: the GSSMs' accuracy falls as the book grows`,
      metric: `median over seeds of exact match at L = ${Ll} over exact match at L = ${Ls}, ` +
        `${c.evalCount} books each`,
      measured: round6(ratio),
      margin,
      threshold: c.gssmDecay,
      direction: "<=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, `J8-decay-${g.id}`),
      detail:
        `Median at L = ${Ls}: ${medianAt(g, Ls).toFixed(3)}, at L = ${Ll}: ${
          medianAt(g, Ll).toFixed(3)
        }; seeds ${seeds.join(", ")}; ${
          sizeOf(g)
        }. CLAIMS.md J8: GSSM(L = ${Ll}) ≤ ${c.gssmDecay}` +
        `·GSSM(L = ${Ls}), as a ratio (to be calibrated).`,
      seeds: [...seeds],
      perSeed: long.map((v, i) => round6(short[i] > 0 ? v / short[i] : 0)),
    }));
  }
  if (ha && gssms.length) {
    // The largest GSSM trained, by parameters (Mamba 2× where the profile trains it).
    const largest = gssms.reduce((b, g) => (g.paramCount > b.paramCount ? g : b));
    const haAt = of(ha).values(at(Lc));
    const largestAt = of(largest).values(at(Lc));
    claim.push(gate.check({
      id: "J8-smallest-vs-largest",
      title: "The smallest transformer beats the largest GSSM",
      source: `${SOURCE}: "even the smallest transformer (410M) outperforms the largest GSSM ` +
        `(2.8B) when the phone-book size is long enough (L ≥ ${PAPER_CROSSOVER})"`,
      metric: `${ha.label} minus ${largest.label}, median exact match at L = ${Lc}`,
      measured: round6(medianAt(ha, Lc) - medianAt(largest, Lc)),
      margin: medianGapMargin(haAt, largestAt, c.evalCount),
      threshold: c.smallestVsLargest,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J8-smallest-vs-largest"),
      detail:
        `${ha.label}: ${sizeOf(ha)}; ${largest.label}: ${sizeOf(largest)} (${
          (largest.paramCount / ha.paramCount).toFixed(2)
        }×; the paper's 2.8B over 410M is 6.8×). Per seed: ${ha.label} minus ${largest.label}. ` +
        `An ${ANALOGUE}.`,
      seeds: [...seeds],
      perSeed: haAt.map((v, i) => round6(v - largestAt[i])),
    }));
  }
  checks.push(...claim);
  const missed = claim.filter((x) => x.actual !== "pass");
  // The claim is a comparison: a profile without a GSSM (quick) checks the transformer's half only.
  if (ha && gssms.length) {
    checks.push(gate.check({
      id: "J8",
      title: "The transformer retrieves from long books and the GSSMs do not",
      source: `${SOURCE}: transformers outperform GSSMs at retrieving from the context, ` +
        `"even the smallest transformer" the largest GSSM`,
      metric: "checks of the claim that do not pass",
      measured: missed.length,
      threshold: 0,
      direction: "==",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J8"),
      detail: missed.length
        ? `Not passing: ${missed.map((x) => `${x.id} (${x.actual})`).join(", ")}.`
        : `All of ${claim.map((x) => x.id).join(", ")} pass.`,
    }));
  }

  const labels = new Map(arms.map((a) => [a.id, `${a.label} (state ${stateLabel(a)})`]));
  const data: FigureData["data"] = [];
  for (const arm of arms) {
    for (const L of c.evalEntries) {
      const { median, lo, hi } = of(arm).spread(at(L));
      data.push({ arm: labels.get(arm.id)!, entries: L, accuracy: median, lo, hi });
    }
  }
  const figures: FigureData[] = [{
    id: "accuracy-vs-entries",
    title: `Phone-book lookup: exact match vs book size (${ANALOGUE})`,
    caption: `Trained on books of ${c.trainMinEntries}–${c.trainMaxEntries} entries (shaded); ` +
      `median over seeds ${seeds.join(", ")}, band min–max; ${c.evalCount} books per point, ` +
      "teacher-forced exact match of the 4 answer digits. The legend gives each arm's state: a " +
      "GSSM's is fixed, a transformer's KV cache grows with the prompt (7 tokens per entry). " +
      `The rule at L = ${PAPER_CROSSOVER} is the paper's claim (${PAPER_CLAIM}), a result of ` +
      "pretrained models at another scale, drawn for reference only.",
    mark: "line",
    data,
    x: { field: "entries", title: "book size L (entries)", type: "quantitative" },
    y: { field: "accuracy", title: "exact match of the number", type: "quantitative" },
    color: { field: "arm", title: "arm", type: "nominal" },
    band: { lower: "lo", upper: "hi" },
    spans: [{ from: c.trainMinEntries, to: c.trainMaxEntries, label: "training" }],
    rules: [
      { axis: "x", value: PAPER_CROSSOVER, label: `paper: ${PAPER_CLAIM}` },
    ],
  }];
  // Where a partial lookup goes wrong: each digit of the answer apart, per arm.
  const digitData: FigureData["data"] = [];
  for (const arm of arms) {
    c.evalEntries.forEach((L, k) => {
      for (let d = 0; d < PHONEBOOK_NUMBER_DIGITS; d++) {
        const { median, lo, hi } = of(arm).spread((s) => s.digits[k][d]);
        digitData.push({
          arm: arm.label,
          digit: `digit ${d + 1}`,
          entries: L,
          accuracy: median,
          lo,
          hi,
        });
      }
    });
  }
  figures.push({
    id: "digit-accuracy",
    title: "Phone-book lookup: accuracy of each digit of the number vs book size",
    caption: `Teacher-forced accuracy of each of the 4 answer digits, one panel per arm; median ` +
      `over seeds ${seeds.join(", ")}, band min–max; ${c.evalCount} books per point, trained on ` +
      `books of ${c.trainMinEntries}–${c.trainMaxEntries} entries (shaded; their numbers drawn ` +
      `from ${c.digitsPerBook} digits a book, these books' from 10). A model that finds the ` +
      "entry by its name gets every digit; a digit falling alone is found some other way, " +
      "such as by the digits before it, which other entries may share.",
    mark: "line",
    data: digitData,
    x: { field: "entries", title: "book size L (entries)", type: "quantitative" },
    y: { field: "accuracy", title: "accuracy of the digit", type: "quantitative" },
    color: { field: "digit", title: "digit", type: "nominal" },
    column: { field: "arm", title: "arm", type: "nominal" },
    band: { lower: "lo", upper: "hi" },
    spans: [{ from: c.trainMinEntries, to: c.trainMaxEntries, label: "training" }],
  });
  const armRecord = (a: CopyArm) => ({
    id: a.id,
    label: a.label,
    params: a.paramCount,
    stateBits: a.stateBits,
    kvBitsPerToken: kvBitsPerToken(a),
  });
  return {
    config: {
      ...c,
      seedsUsed: seeds,
      calibration: pilot ?? null,
      arms: arms.map((a) => ({ ...armRecord(a), config: a.config, state: stateLabel(a) })),
    } as unknown as Record<string, unknown>,
    checks,
    metrics: {
      accuracy: Object.fromEntries(
        [...acc].map(([k, r]) => [k, r.results.map((s) => s.exact.map(round6))]),
      ),
      // arm id → seed → size → digit: which digit of the number a partial lookup gets wrong.
      digitAccuracy: Object.fromEntries(
        [...acc].map(([k, r]) => [k, r.results.map((s) => s.digits.map((d) => d.map(round6)))]),
      ),
      evalEntries: c.evalEntries,
      // The state-size column beside each curve: a GSSM's bits, a transformer's bits per token.
      arms: arms.map(armRecord),
      curves,
    },
    figures,
    phases: phases.seconds,
  };
}

/** The `phonebook-retrieval` suite. */
export const phonebookRetrieval: Suite = {
  id: ID,
  title: `Phone-book lookup: transformers vs GSSMs (${ANALOGUE})`,
  claim: "A Hard-ALiBi transformer trained on books of 4–8 entries retrieves a number from " +
    "books of 16; Mamba and LSTM models of its size, and a Mamba of twice its size, do not, " +
    "and their accuracy at least halves from 8 to 32 entries.",
  source: SOURCE,
  pilots: PILOTS,
  run,
};
