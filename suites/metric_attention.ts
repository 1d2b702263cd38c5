/**
 * Claims of nlp-metaformer's README (seed 001; CLAIMS.md §3): "metric tensor" attention — scores
 * r = p M pᵀ with one projection p per head, a symmetric metric M stored packed, and the same p as
 * values — halves the attention parameters, cuts the score computation "from N_k²N_c² to
 * N_kN_c/2", and "seemed to perform the same".
 *
 * This file checks the arithmetic (MT1–MT5, float64, no training): what the quadratic forms are
 * (MT1, MT2), the parameter formulas (MT3) and the instantiated models' counts (MT3-models), the
 * README's packed kernel formula as written against the dense scores (MT4) and the operation
 * counts behind the FLOP claim (MT5); then the trained comparison (MT6, `suites/metric_lm.ts`):
 * a character-level LM with standard or metric attention. The variant is CLAIMS.md §3.1's
 * "README" one (symmetric packed M, scale 1/√N_k, values = p), with the causal mask the README
 * does not mention (the `MetricAttention` op, `onnx/custom/metric_attention.ts`).
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { dataSeed } from "../fixtures/seeds.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import {
  attentionParamFormulas,
  correctedPackedScores,
  denseScores,
  matMul64,
  maxAbs,
  maxAbsDiff,
  readmePackedScores,
  scoreOpCounts,
  singularValues,
  transpose64,
  unpackSymmetric,
} from "./metric_math.ts";
import { acrossSeeds, Phases, type SeedResults, trainingSeeds, validityGate } from "./harness.ts";
import {
  LM_ARMS,
  type LmArm,
  lmData,
  lmModel,
  type LmSeedResult,
  METRIC_LM,
  type MetricLmConfig,
  ngramLoss,
  trainLmArm,
} from "./metric_lm.ts";
import {
  calibrationOf,
  check,
  NATIVE_NOTE,
  type Pilot,
  pilotOf,
  type Profile,
  round6,
  type Suite,
  type SuiteContext,
} from "./suite.ts";
import { CHAR_ALPHABET } from "../fixtures/char_corpus.ts";
import { transformerParamCount, transformerParams } from "../models/transformer.ts";

const ID = "metric-attention";
const SOURCE = "nlp-metaformer README (seed 001); CLAIMS.md §3";

/** MT1/MT2's shapes (CLAIMS.md §3.2): batch, context, model width, heads, head dims. */
const FORMS = { B: 2, Nc: 16, Nd: 64, Nn: 4, Nk: 16 };
/** MT4's shapes: small enough to print, large enough to have off-diagonal terms. */
const PACKED = { Nc: 5, Nk: 4, trials: 20 };
/** MT5's grid. */
const GRID = { Nc: [64, 128, 256, 512, 1024], Nk: [16, 32, 64] };

function normals(prng: Prng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => prng.normal());
}

/** Relative asymmetry max|r − rᵀ| / max|r| of a square n × n matrix. */
function asymmetry(r: Float64Array, n: number): number {
  return maxAbsDiff(r, transpose64(r, n, n)) / maxAbs(r);
}

/** MT1: q·kᵀ = x·(W_Q W_Kᵀ)·xᵀ, and rank(W_Q W_Kᵀ) ≤ N_k. */
function quadraticForm(prng: Prng) {
  const { B, Nc, Nd, Nn, Nk } = FORMS;
  let err = 0, scale = 0, tail = 0;
  const x = normals(prng, B * Nc * Nd);
  for (let n = 0; n < Nn; n++) {
    const wq = normals(prng, Nd * Nk);
    const wk = normals(prng, Nd * Nk);
    const U = matMul64(wq, transpose64(wk, Nd, Nk), Nd, Nk, Nd); // [Nd, Nd]
    for (let b = 0; b < B; b++) {
      const xb = x.subarray(b * Nc * Nd, (b + 1) * Nc * Nd); // [Nc, Nd]
      const q = matMul64(xb, wq, Nc, Nd, Nk);
      const k = matMul64(xb, wk, Nc, Nd, Nk);
      const rQK = matMul64(q, transpose64(k, Nc, Nk), Nc, Nk, Nc);
      const rU = matMul64(matMul64(xb, U, Nc, Nd, Nd), transpose64(xb, Nc, Nd), Nc, Nd, Nc);
      err = Math.max(err, maxAbsDiff(rQK, rU));
      scale = Math.max(scale, maxAbs(rQK));
    }
    const s = singularValues(U, Nd, Nd);
    tail = Math.max(tail, s[Nk] / s[0]);
  }
  return { relErr: err / scale, tail };
}

/** MT2: metric scores = standard scores with W_Q = P, W_K = P·M; symmetric; random W's are not. */
function metricForm(prng: Prng) {
  const { Nc, Nd, Nn, Nk } = FORMS;
  let tied = 0, metricAsym = 0, randomAsym = Infinity;
  const x = normals(prng, Nc * Nd); // [Nc, Nd]
  for (let n = 0; n < Nn; n++) {
    const P = normals(prng, Nd * Nk);
    const M = unpackSymmetric(normals(prng, (Nk * (Nk + 1)) / 2), Nk);
    const p = matMul64(x, P, Nc, Nd, Nk); // [Nc, Nk]
    const r = denseScores(p, M, Nc, Nk);
    const k = matMul64(x, matMul64(P, M, Nd, Nk, Nk), Nc, Nd, Nk); // x·(P M)
    const rStd = matMul64(p, transpose64(k, Nc, Nk), Nc, Nk, Nc);
    tied = Math.max(tied, maxAbsDiff(r, rStd) / maxAbs(r));
    metricAsym = Math.max(metricAsym, asymmetry(r, Nc));
    const q = matMul64(x, normals(prng, Nd * Nk), Nc, Nd, Nk);
    const kr = matMul64(x, normals(prng, Nd * Nk), Nc, Nd, Nk);
    randomAsym = Math.min(
      randomAsym,
      asymmetry(matMul64(q, transpose64(kr, Nc, Nk), Nc, Nk, Nc), Nc),
    );
  }
  return { tied, metricAsym, randomAsym };
}

/** MT4: the README's packed formula and the corrected one against the dense scores. */
function packedKernels(prng: Prng) {
  const { Nc, Nk, trials } = PACKED;
  let diagErr = 0, offErr = 0, offMean = 0, offCount = 0, corrected = 0;
  const offDiagonal = (i: number) => Math.floor(i / Nc) !== i % Nc;
  for (let t = 0; t < trials; t++) {
    const p = normals(prng, Nc * Nk);
    const m = normals(prng, (Nk * (Nk + 1)) / 2);
    const dense = denseScores(p, unpackSymmetric(m, Nk), Nc, Nk);
    const readme = readmePackedScores(p, m, Nc, Nk);
    diagErr = Math.max(diagErr, maxAbsDiff(readme, dense, (i) => !offDiagonal(i)));
    offErr = Math.max(offErr, maxAbsDiff(readme, dense, offDiagonal));
    for (let i = 0; i < dense.length; i++) {
      if (offDiagonal(i)) [offMean, offCount] = [offMean + Math.abs(dense[i]), offCount + 1];
    }
    corrected = Math.max(
      corrected,
      maxAbsDiff(correctedPackedScores(p, m, Nc, Nk), dense) / maxAbs(dense),
    );
  }
  return { diagErr, offErr, offMean: offMean / offCount, corrected };
}

/**
 * The pilots of MT6 on calibration seeds, frozen: re-run with `deno task reproduce --profile
 * quick --suite metric-attention --seed 1000` (and `--profile full`).
 */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  quick: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided:
      "Recipe and threshold kept (CLAIMS.md MT6: |Δ| ≤ max(0.05 nats, 3% of the standard loss)). " +
      "Both arms beat the bigram model (2.2999 nats/char; worst median 1.7200), but the metric " +
      "arm is 0.30 nats/char worse on every seed: standard 1.4188, 1.4436, 1.4100; metric 1.7200, " +
      "1.7172, 1.7285 (+0.3012, +0.2737, +0.3185), so MT6 is pre-registered to fail. Explored on " +
      "the same seeds: M drawn N(0, 0.02) instead of the identity gave metric 1.7278, 1.7036, " +
      "1.7091 (+0.289): the gap is not the initialisation. (These losses are the portable " +
      "engine's.)" + NATIVE_NOTE + "the figures above; on native the metric arm's median is " +
      "1.7249 and the gap +0.300 (+0.3008, +0.2812, +0.3185).",
    checks: {
      "MT6-gate": { measured: 1.72488, perSeed: [1.71958, 1.72488, 1.7285], actual: "pass" },
      "MT6": { measured: 0.300161, perSeed: [0.300805, 0.28115, 0.318529], actual: "fail" },
    },
  },
  full: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided:
      "Recipe and threshold kept (CLAIMS.md MT6, as the quick profile). With 2,000 steps instead " +
      "of 600 the gap all but closes: standard 1.2746, 1.2846, 1.2877; metric 1.3093, 1.3022, " +
      "1.3121 (+0.0347, +0.0176, +0.0244), inside max(0.05, 3%) on every seed, so MT6 is " +
      "pre-registered to pass here and to fail in the quick profile: the metric arm learns " +
      "slower, and ends close. Both arms beat the bigram model (2.2999; worst median 1.3093).",
    checks: {
      "MT6-gate": { measured: 1.30932, perSeed: [1.30932, 1.30219, 1.31211], actual: "pass" },
      "MT6": { measured: 0.0255748, perSeed: [0.0347056, 0.0176092, 0.0244097], actual: "pass" },
    },
  },
};

/** Attention weights of layer 0 of an instantiated model: every `h0.attn.*` matrix and M. */
function attentionWeights(c: MetricLmConfig, arm: LmArm): number {
  return transformerParams(lmModel(c, arm), new Prng(0))
    .filter((p) =>
      p.name.startsWith("h0.attn.") && (p.name.endsWith(".w") || p.name === "h0.attn.m")
    )
    .reduce((n, p) => n + p.init.length, 0);
}

async function run(ctx: SuiteContext) {
  const prng = new Prng(dataSeed(ID, "test", 0));
  const mt1 = quadraticForm(prng);
  const mt2 = metricForm(prng);
  const mt4 = packedKernels(prng);
  const checks: CheckResult[] = [];
  const arithmetic = { evidence: "arithmetic" as const, expected: "pass" as const };

  checks.push(check({
    id: "MT1",
    title: "Attention scores are a quadratic form: q·kᵀ = x·U·xᵀ with U = W_Q·W_Kᵀ",
    source: `${SOURCE} §3.2 MT1`,
    metric: `max |r_qk − r_U| / max |r|, float64, B ${FORMS.B}, N_c ${FORMS.Nc}, N_d ` +
      `${FORMS.Nd}, ${FORMS.Nn} heads of N_k ${FORMS.Nk}`,
    measured: round6(mt1.relErr),
    threshold: 1e-10,
    direction: "<=",
    ...arithmetic,
    detail: "Random normal x and weights; the README writes U as K·Q contracted over k.",
  }));
  checks.push(check({
    id: "MT1-rank",
    title: "U = W_Q·W_Kᵀ has rank at most N_k",
    source: `${SOURCE} §3.2 MT1`,
    metric: `largest σ_{N_k+1}/σ₁ of U over heads (one-sided Jacobi SVD, float64)`,
    measured: round6(mt1.tail),
    threshold: 1e-8,
    direction: "<",
    ...arithmetic,
    detail: `U is ${FORMS.Nd} × ${FORMS.Nd}; singular values beyond the ${FORMS.Nk}th vanish.`,
  }));
  checks.push(check({
    id: "MT2",
    title: "Metric scores p·M·pᵀ equal standard scores with W_Q = P and W_K = P·M",
    source: `${SOURCE} §3.2 MT2`,
    metric: "max |r_metric − r_standard| / max |r|, float64",
    measured: round6(mt2.tied),
    threshold: 1e-10,
    direction: "<=",
    ...arithmetic,
    detail: "So metric attention is standard attention with tied keys: what it constrains is " +
      "the form of the scores, not their cost.",
  }));
  checks.push(check({
    id: "MT2-symmetric",
    title: "Metric scores are symmetric before the mask: r(c, c') = r(c', c)",
    source: `${SOURCE} §3.2 MT2`,
    metric: "max over heads of max |r − rᵀ| / max |r|",
    measured: round6(mt2.metricAsym),
    threshold: 1e-6,
    direction: "<=",
    ...arithmetic,
    detail: "U = P·M·Pᵀ is symmetric because M is.",
  }));
  checks.push(check({
    id: "MT2-random",
    title: "Standard scores with independent W_Q, W_K are not symmetric",
    source: `${SOURCE} §3.2 MT2`,
    metric: "min over heads of max |r − rᵀ| / max |r|, random W_Q, W_K",
    measured: round6(mt2.randomAsym),
    threshold: 0.1,
    direction: ">=",
    ...arithmetic,
    detail: "The control: symmetry is the metric form's constraint, not a property of any " +
      "attention score.",
  }));

  // MT3's worked example (CLAIMS.md §3.2): N_d 64, N_n 4, N_k 16.
  const f = attentionParamFormulas(64, 4, 16);
  const claimed: [string, number, number][] = [
    ["quadratic U", f.quadratic, 16384],
    ["standard Q + K", f.queryKey, 8192],
    ["metric P", f.metricP, 4096],
    ["metric packed M", f.metricM, 544],
    ["metric P + M", f.metricP + f.metricM, 4640],
    ["standard block QKV + out", f.standardBlock, 16384],
    ["metric block P + M + E", f.metricBlock, 8736],
  ];
  const wrong = claimed.filter(([, got, want]) => got !== want);
  checks.push(check({
    id: "MT3",
    title: "Attention parameter formulas reproduce CLAIMS.md's worked example",
    source: `${SOURCE} §3.2 MT3: "halved … down to N_d N_n N_k"`,
    metric: "formula outputs that differ from the worked example (N_d 64, N_n 4, N_k 16)",
    measured: wrong.length,
    threshold: 0,
    direction: "==",
    ...arithmetic,
    detail: `${claimed.map(([name, got]) => `${name} ${got.toLocaleString("en-US")}`).join("; ")}` +
      `. The metric block is ${
        (100 * (1 - f.metricBlock / f.standardBlock)).toFixed(1)
      }% smaller than the standard one: not half, since the README's count leaves M out.`,
  }));
  let iffMismatches = 0, iffCases = 0;
  for (let Nd = 2; Nd <= 256; Nd += 2) {
    for (let Nk = 1; Nk <= Nd; Nk++) {
      for (const Nn of [1, 2, 4, 8]) {
        const g = attentionParamFormulas(Nd, Nn, Nk);
        if ((g.queryKey < g.quadratic) !== (Nk < Nd / 2)) iffMismatches++;
        iffCases++;
      }
    }
  }
  checks.push(check({
    id: "MT3-iff",
    title: "Standard Q + K is smaller than the quadratic U exactly when N_k < N_d/2",
    source: `${SOURCE} §3.2 MT3`,
    metric: `grid points where the two sides disagree (N_d 2..256 even, N_k 1..N_d, N_n 1, 2, ` +
      `4, 8: ${iffCases.toLocaleString("en-US")} points)`,
    measured: iffMismatches,
    threshold: 0,
    direction: "==",
    ...arithmetic,
    detail: "2·N_n·N_d·N_k < N_n·N_d² ⇔ N_k < N_d/2; with N_k = N_d/N_n it reads N_n > 2.",
  }));

  checks.push(check({
    id: "MT4-readme",
    title: "The README's packed kernel formula computes the dense scores p·M·pᵀ",
    source: `${SOURCE} §3.1 (metric_attention.cu's weights 1, 2, 4), §3.2 MT4`,
    metric: `max |r_README − r_dense| off the diagonal, ${PACKED.trials} random draws of N_c ` +
      `${PACKED.Nc}, N_k ${PACKED.Nk}`,
    measured: round6(mt4.offErr),
    threshold: 1e-5,
    direction: "<=",
    evidence: "arithmetic",
    expected: "fail",
    claimed: "pass",
    detail: `On the diagonal it matches (max error ${mt4.diagErr.toExponential(1)}); off it the ` +
      `error reaches ${mt4.offErr.toFixed(2)} against a mean off-diagonal score of ` +
      `${mt4.offMean.toFixed(2)}. Expected to fail by derivation (CLAIMS.md MT4): for c ≠ c' an ` +
      "off-diagonal M[k,k'] must multiply p[c,k]p[c',k'] + p[c,k']p[c',k], and the extra factor 2 " +
      "for c ≠ c' doubles what symmetry only lets one mirror.",
  }));
  checks.push(check({
    id: "MT4-corrected",
    title: "The corrected packed formula computes the dense scores",
    source: `${SOURCE} §3.2 MT4`,
    metric: "max |r_corrected − r_dense| / max |r_dense|, same draws",
    measured: round6(mt4.corrected),
    threshold: 1e-12,
    direction: "<=",
    ...arithmetic,
    detail: "M[k,k] once; M[k,k'] (k < k') times both cross products; c ≤ c' computed, mirrored.",
  }));

  const counts = GRID.Nk.flatMap((Nk) =>
    GRID.Nc.map((Nc) => ({ Nc, Nk, ...scoreOpCounts(Nc, Nk) }))
  );
  const overClaim = Math.min(...counts.map((x) => x.packed / x.claim));
  const overGemm = Math.min(...counts.map((x) => x.packed / x.gemm));
  const ex = scoreOpCounts(256, 64);
  checks.push(check({
    id: "MT5",
    title: "The packed scheme computes the scores in N_k·N_c/2 operations",
    source: `${SOURCE}: "reduced from N_k²N_c² to N_kN_c/2 (note to self: verify this)"`,
    metric: `smallest packed-kernel terms / (N_k·N_c/2) over N_c ${GRID.Nc.join(", ")} × N_k ` +
      `${GRID.Nk.join(", ")}`,
    measured: round6(overClaim),
    threshold: 1,
    direction: "<=",
    evidence: "arithmetic",
    expected: "fail",
    claimed: "pass",
    detail: `Exact counts at N_c 256, N_k 64: naive ${ex.naive.toLocaleString("en-US")} terms, ` +
      `packed ${ex.packed.toLocaleString("en-US")}, factored GEMM ` +
      `${ex.gemm.toLocaleString("en-US")} multiply-adds (c ≤ c' only ` +
      `${ex.gemmSymmetric.toLocaleString("en-US")}), claim ${ex.claim.toLocaleString("en-US")}. ` +
      "The claim is below the N_c(N_c+1)/2 distinct scores themselves, each a sum over N_k " +
      "terms: expected to fail by counting (CLAIMS.md MT5). The packed scheme saves a constant " +
      "≈ 4× over the naive sum ((N_c+1)(N_k+1)/(4N_cN_k) exactly).",
  }));
  checks.push(check({
    id: "MT5-gemm",
    title: "The packed scheme does more work than the factored GEMM (P·M)·Pᵀ",
    source: `${SOURCE} §3.2 MT5`,
    metric: "smallest packed terms / GEMM multiply-adds over the grid",
    measured: round6(overGemm),
    threshold: 1,
    direction: ">",
    ...arithmetic,
    detail: `At N_c 256, N_k 64 the packed scheme is ${(ex.packed / ex.gemm).toFixed(1)}× the ` +
      `GEMM and needs a ${(ex.packed * 4 / 1e6).toFixed(0)} MB float32 intermediate per (batch, ` +
      "head). Timed on this machine by `bench/metric_packed_bench.ts` (README, Performance).",
  }));

  const lm = await languageModels(ctx);
  checks.push(...lm.checks);

  const figures: FigureData[] = [{
    id: "score-operations",
    title: "Operations to compute one head's scores vs context length (N_k 64)",
    caption:
      "Exact counts (CLAIMS.md §3.2 MT5): naive quadruple sum (terms), the README's packed " +
      "kernel (terms), factored GEMM (multiply-adds, all pairs and c ≤ c' only), and the README's " +
      "claimed N_k·N_c/2. Log-log.",
    mark: "line",
    data: counts.filter((x) => x.Nk === 64).flatMap((x) => [
      { scheme: "naive N_c²N_k²", Nc: x.Nc, operations: x.naive },
      { scheme: "packed, as written", Nc: x.Nc, operations: x.packed },
      { scheme: "GEMM (P·M)·Pᵀ", Nc: x.Nc, operations: x.gemm },
      { scheme: "GEMM, c ≤ c' only", Nc: x.Nc, operations: x.gemmSymmetric },
      { scheme: "claim N_kN_c/2", Nc: x.Nc, operations: x.claim },
    ]),
    x: { field: "Nc", title: "context length N_c (log scale)", type: "quantitative", scale: "log" },
    y: { field: "operations", title: "operations (log scale)", type: "quantitative", scale: "log" },
    color: { field: "scheme", title: "scheme", type: "nominal" },
  }, lm.figure];
  return {
    config: {
      profile: ctx.profile,
      forms: FORMS,
      packed: PACKED,
      grid: GRID,
      lm: { ...lm.config, seedsUsed: lm.seeds, calibration: lm.pilot ?? null },
    },
    checks,
    metrics: { operationCounts: counts, languageModels: lm.metrics },
    figures,
    phases: lm.phases,
  };
}

/** MT3-models and MT6: the instantiated models' counts, then the trained comparison. */
async function languageModels(ctx: SuiteContext) {
  const c = METRIC_LM[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const [standard, metric] = LM_ARMS;
  const Nk = c.dModel / c.heads;
  const f = attentionParamFormulas(c.dModel, c.heads, Nk);
  const counted = { standard: attentionWeights(c, standard), metric: attentionWeights(c, metric) };
  const total = {
    standard: transformerParamCount(lmModel(c, standard)),
    metric: transformerParamCount(lmModel(c, metric)),
  };
  const checks: CheckResult[] = [check({
    id: "MT3-models",
    title: "The instantiated models' attention weights match the parameter formulas",
    source: `${SOURCE} §3.2 MT3`,
    metric: `formula outputs that differ from the counts of MT6's models (N_d ${c.dModel}, N_n ` +
      `${c.heads}, N_k ${Nk}; weights of one layer's attention)`,
    measured: Number(counted.standard !== f.standardBlock) +
      Number(counted.metric !== f.metricBlock),
    threshold: 0,
    direction: "==",
    evidence: "constructed",
    expected: "pass",
    detail: `Standard QKV + output: ${counted.standard.toLocaleString("en-US")} instantiated, ` +
      `${f.standardBlock.toLocaleString("en-US")} by formula; metric P + M + output: ` +
      `${counted.metric.toLocaleString("en-US")} and ${f.metricBlock.toLocaleString("en-US")}. ` +
      `Whole models (${c.layers} layers, biases, embeddings, MLPs): ` +
      `${total.standard.toLocaleString("en-US")} and ${total.metric.toLocaleString("en-US")} ` +
      `parameters (${(100 * (1 - total.metric / total.standard)).toFixed(1)}% fewer).`,
  })];

  const phases = new Phases();
  const data = await phases.time("generate corpus", () => Promise.resolve(lmData(ID, c)));
  const V = CHAR_ALPHABET.length;
  const bigram = ngramLoss(data, c.context, 2, V);
  const unigram = ngramLoss(data, c.context, 1, V);
  const seeds = trainingSeeds(ctx, c.seeds);
  const results = new Map<string, SeedResults<LmSeedResult>>();
  for (const arm of LM_ARMS) {
    results.set(
      arm.id,
      await acrossSeeds(seeds, phases, arm.id, (seed) => trainLmArm(ctx, ID, c, data, arm, seed)),
    );
  }
  const loss = (r: LmSeedResult) => r.valLoss;
  const s = results.get(standard.id)!;
  const m = results.get(metric.id)!;
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

  // The gate: "performs the same" means something only if both models learned more than the
  // previous character tells (a bigram model of the training text).
  const worst = Math.max(s.median(loss), m.median(loss));
  const worstArm = s.median(loss) >= m.median(loss) ? standard : metric;
  const gate = validityGate({
    id: "MT6-gate",
    title: "Validity gate: both language models beat a bigram model of the corpus",
    source: `${SOURCE} §3.2 MT6; equal losses mean nothing if neither model learned`,
    metric: `highest median validation loss over the arms (${worstArm.label}), nats/char`,
    measured: round6(worst),
    threshold: round6(bigram),
    direction: "<",
    expected: "pass",
    evidence: "trained",
    calibration: calibrationOf(pilot, "MT6-gate"),
    detail: `Held-out loss of count models of the training text (add-one): unigram ` +
      `${unigram.toFixed(4)}, bigram ${bigram.toFixed(4)} nats/char. If the gate fails, MT6 is ` +
      "inconclusive, not failed.",
    ...results.get(worstArm.id)!.record(loss),
  });
  checks.push(gate.result);
  const diff = mean(m.values(loss)) - mean(s.values(loss));
  const tolerance = Math.max(0.05, 0.03 * mean(s.values(loss)));
  // Induction gain: how much the repeat's loss drops below the first occurrence's.
  const induction = (r: LmSeedResult) => r.inductionFirst - r.inductionRepeat;
  checks.push(gate.check({
    id: "MT6",
    title: "A character LM with metric attention performs the same as with standard attention",
    source: `${SOURCE}: "the network seemed to perform the same during and after training"`,
    metric: `|mean validation loss, metric − standard| over ${seeds.length} seeds (nats/char), ` +
      `${c.steps} steps of ${c.batch} × ${c.context} characters`,
    measured: round6(Math.abs(diff)),
    threshold: round6(tolerance),
    direction: "<=",
    expected: "pass",
    evidence: "trained",
    calibration: calibrationOf(pilot, "MT6"),
    detail: `Validation loss per seed — standard ${
      s.values(loss).map((v) => v.toFixed(4)).join(
        ", ",
      )
    }; metric ${m.values(loss).map((v) => v.toFixed(4)).join(", ")} (metric − standard ` +
      `${diff >= 0 ? "+" : ""}${diff.toFixed(4)}). Threshold max(0.05 nats, 3% of the standard ` +
      `loss) as CLAIMS.md MT6. Parameters ${total.standard.toLocaleString("en-US")} and ` +
      `${total.metric.toLocaleString("en-US")} (MT3-models). Exploratory, no threshold: ` +
      `induction gain, the loss on ${c.inductionRows} random ${c.context / 2}-letter strings ` +
      `minus the loss on their repeat (nats/char; 0 = no copying) — standard ` +
      `${s.values(induction).map((v) => v.toFixed(3)).join(", ")}; metric ` +
      `${m.values(induction).map((v) => v.toFixed(3)).join(", ")}.`,
    seeds: [...seeds],
    perSeed: m.values(loss).map((v, i) => round6(v - s.values(loss)[i])),
  }));

  const curve: FigureData["data"] = [];
  for (const arm of LM_ARMS) {
    const rs = results.get(arm.id)!;
    rs.results[0].curve.forEach((pt, k) => {
      const { median, lo, hi } = rs.spread((r) => r.curve[k].valLoss);
      curve.push({ arm: arm.label, step: pt.step, valLoss: median, lo, hi });
    });
  }
  const figure: FigureData = {
    id: "lm-validation-loss",
    title: "Character LM: validation loss vs step, standard and metric attention",
    caption: `Median over seeds ${seeds.join(", ")} (band: min–max) on ${data.validRows} ` +
      `windows of ${c.context} characters of the held-out synthetic text; the bigram model's ` +
      `loss as a rule.`,
    mark: "line",
    data: curve,
    x: { field: "step", title: "training step", type: "quantitative" },
    y: { field: "valLoss", title: "validation loss (nats/char)", type: "quantitative" },
    color: { field: "arm", title: "attention", type: "nominal" },
    band: { lower: "lo", upper: "hi" },
    rules: [{ axis: "y", value: round6(bigram), label: "bigram model" }],
  };
  const metrics = {
    params: total,
    attentionWeights: counted,
    unigramLoss: round6(unigram),
    bigramLoss: round6(bigram),
    perSeed: Object.fromEntries(
      [...results].map(([id, rs]) => [
        id,
        rs.results.map((r) => ({
          seed: r.seed,
          valLoss: round6(r.valLoss),
          inductionFirst: round6(r.inductionFirst),
          inductionRepeat: round6(r.inductionRepeat),
        })),
      ]),
    ),
  };
  return { checks, figure, metrics, config: c, seeds, pilot, phases: phases.seconds };
}

/** The `metric-attention` suite. */
export const metricAttention: Suite = {
  id: ID,
  title: "Metric tensor attention (nlp-metaformer)",
  claim: "Metric attention (scores p·M·pᵀ, symmetric packed M, values = p) halves attention's " +
    "parameters and computes its scores in N_k·N_c/2 operations.",
  source: SOURCE,
  pilots: PILOTS,
  run,
};
