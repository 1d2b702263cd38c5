import { assert, assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import { openEngine } from "../runner/engine.ts";
import { Progress } from "../runner/progress.ts";
import {
  agreementCheck,
  copiesString,
  COPY_LENGTH_EXPONENT_CONFIGS,
  copyLengthExponent,
  type CopyLengthExponentConfig,
  floorCheck,
  growthCheck,
  growthFit,
  gssmBoundCheck,
  gssmTightnessCheck,
  j1Check,
  j1Point,
  j2Check,
  j2Point,
  largestPassing,
  lCrit,
  lCritCheck,
  ngramBound,
  runCopyLengthExponent,
} from "./copy_length_exponent.ts";
import { smokeRun } from "./harness.ts";
import type { SuiteContext } from "./suite.ts";

Deno.test("Lemma 2.4's bound and the copy score of a teacher-forced row", () => {
  assertEquals(ngramBound(16, 5, 26), 256 / 26 ** 5);
  // Row `$ab|ab` (L = 2): the answer letters sit at 3 and 4 of the predictions.
  assertEquals(copiesString([9, 9, 9, 0, 1, 9], [0, 1]), true);
  assertEquals(copiesString([0, 1, 9, 0, 2, 9], [0, 1]), false);
});

Deno.test("J1: a point fails only when its lower bound is above L²D⁻ⁿ", () => {
  const ok = j1Point(16, 2, 26, 2000, 300); // p̂ 0.15 < bound 0.38
  assertEquals(ok.violates, false);
  const bad = j1Point(16, 5, 26, 2000, 100); // p̂ 0.05 ≫ bound 2.2e-5
  assertEquals(bad.violates, true);
  const zero = j1Point(16, 5, 26, 20000, 0); // no hits: lower bound 0, never a violation
  assertEquals([zero.lower95, zero.violates], [0, false]);
  const pass = j1Check([ok, zero], 26);
  assertEquals([pass.measured, pass.actual, pass.matches], [0, "pass", true]);
  const fail = j1Check([ok, bad], 26);
  assertEquals([fail.measured, fail.actual, fail.matches], [1, "fail", false]);
  assert(fail.detail.includes("(n 5, L 16)"));
});

Deno.test("J2: errors above p̂, above the bound, or without a repeat each fail", () => {
  const base = {
    L: 32,
    n: 3,
    strings: 1000,
    errors: 40,
    errorsWithoutRepeat: 0,
    modelStrings: 100,
    modelErrors: 4,
    modelRepeats: 5,
    mismatches: 0,
    repeats: 50,
  };
  assertEquals(j2Point(base, 26).violates, false);
  assertEquals(j2Point({ ...base, errors: 51 }, 26).violates, true);
  assertEquals(j2Point({ ...base, modelErrors: 6 }, 26).violates, true);
  assertEquals(j2Point({ ...base, errorsWithoutRepeat: 1 }, 26).violates, true);
  // n = 6, L = 32: bound 1.3e-6; 40 errors in 1000 are far above it
  assertEquals(j2Point({ ...base, n: 6 }, 26).violates, true);
  assertEquals(j2Check([j2Point(base, 26)], 26).actual, "pass");
  assertEquals(j2Check([j2Point({ ...base, errors: 51 }, 26)], 26).actual, "fail");
  assertEquals(agreementCheck(0, 10).actual, "pass");
  assertEquals(agreementCheck(1, 10).actual, "fail");
});

Deno.test("largestPassing() finds the last passing length of a threshold", async () => {
  const seen: number[] = [];
  const r = await largestPassing(3, (L) => {
    seen.push(L);
    return Promise.resolve(L <= 37);
  });
  assertEquals(r.lstar, 37);
  assertEquals(seen.slice(0, 5), [6, 12, 24, 48, 36]);
  assertEquals(r.evaluated.length, seen.length);
  assertEquals((await largestPassing(5, (L) => Promise.resolve(L <= 5))).lstar, 5);
  await assertRejects(() => largestPassing(1, () => Promise.resolve(true), 100), RangeError);
});

Deno.test("growth fit recovers a base exactly, and the checks fail on wrong inputs", () => {
  const ns = [1, 2, 3, 4, 5, 6];
  const exact = growthFit(ns, ns.map((n) => 3 * 2 ** n));
  assertAlmostEquals(exact.factor, 2, 1e-12);
  assertAlmostEquals(exact.upper - exact.lower, 0, 1e-9);
  assertEquals(growthCheck(4, exact, ns).actual, "pass");
  const tooFast = growthFit(ns, ns.map((n) => 3 ** n));
  assertEquals(growthCheck(4, tooFast, ns).actual, "fail");
  const tooSlow = growthFit(ns, ns.map((n) => 1.6 ** n * 10));
  assertEquals(growthCheck(4, tooSlow, ns).actual, "fail");
  // floor √(0.1·4ⁿ): 0.63, 1.26, 2.53, …
  assertEquals(floorCheck(4, 0.1, [1, 2, 3], [1, 2, 3]).actual, "pass");
  assertEquals(floorCheck(4, 0.1, [1, 2, 3], [1, 2, 2]).actual, "fail");
});

Deno.test("J3(a): L_crit = (b + 1)/log₂D matches CLAIMS.md", () => {
  assertAlmostEquals(lCrit(512, 26), 109.1, 0.05);
  assertAlmostEquals(lCrit(233_472, 26), 49_700, 50);
  assertAlmostEquals(lCrit(7_168, 26), 1_525, 1);
  assertEquals(lCrit(15, 4), 8);
  assertEquals(lCritCheck().actual, "pass");
});

Deno.test("J3(b): tightness and bound checks pass at D^(s−L) and fail well above it", () => {
  // D = 4, L = 8, s = 5: D^(s−L) = 1/64, so 1,563 of 100,000 is on target, 1,900 far above.
  assertEquals(gssmTightnessCheck(1563, 100_000, 4, 8, 5, 0.99).actual, "pass");
  assertEquals(gssmTightnessCheck(1900, 100_000, 4, 8, 5, 0.99).actual, "fail");
  assertEquals(gssmBoundCheck(1563, 100_000, 1024, 4, 8, 0.99).actual, "pass");
  assertEquals(gssmBoundCheck(1900, 100_000, 1024, 4, 8, 0.99).actual, "fail");
});

const TINY: CopyLengthExponentConfig = {
  grid: { D: 26, ns: [2, 3], lengths: [16, 40], strings: 300, modelStrings: { 40: 60 } },
  exponent: { D: 4, ns: [2, 3, 4, 5], epsilon: 0.1, strings: 200 },
  gssm: { D: 4, L: 6, s: 4, strings: 5000, confidence: 0.99 },
};

const ENGINE = await openEngine("portable");

function quietContext(seed: number): SuiteContext {
  return {
    profile: "quick",
    seed,
    engine: ENGINE,
    threads: 2,
    fresh: false,
    cacheDir: "/tmp/cb",
    progress: (label, total) => new Progress(label, total, { write: () => {} }),
    log: () => {},
  };
}

Deno.test("the suite on a tiny config: checks pass and a seed fixes the outcome", async () => {
  const a = await runCopyLengthExponent(quietContext(0), TINY);
  const b = await runCopyLengthExponent(quietContext(0), TINY);
  const byId = Object.fromEntries(a.checks.map((c) => [c.id, c]));
  for (const id of ["J1", "J2", "J2-model", "E1", "J3a", "J3b", "J3b-bound"]) {
    assertEquals(byId[id].actual, "pass", `${id}: ${byId[id].detail}`);
  }
  const { phases: _pa, ...restA } = a;
  const { phases: _pb, ...restB } = b;
  assertEquals(JSON.stringify(restA), JSON.stringify(restB));
  assertEquals(a.figures.map((f) => f.id), ["p-ngram-vs-length", "copy-length-vs-heads"]);
  const lstar = a.metrics.lstar as { n: number; lstar: number }[];
  assertEquals(lstar.map((r) => r.n), [2, 3, 4, 5]);
  assert(lstar.every((r, i) => i === 0 || r.lstar > lstar[i - 1].lstar));
});

Deno.test("at the smoke profile the bounds hold and the error rates are in [0, 1]", async () => {
  // No validity gate and no training: the constructions and bounds hold at any budget (E2, the
  // growth factor's closeness to √D, needs more heads than the smoke profile's three).
  const c = COPY_LENGTH_EXPONENT_CONFIGS.smoke;
  const outcome = await smokeRun(copyLengthExponent, ENGINE);
  for (const k of outcome.checks.filter((k) => k.id !== "E2")) {
    assertEquals(k.actual, "pass", `${k.id}: ${k.detail}`);
  }
  const m = outcome.metrics as {
    j1: { pHat: number }[];
    lstarEvaluations: { error: number }[];
    gssm: { accuracy: number };
  };
  assertEquals(m.j1.length, c.grid.ns.length * c.grid.lengths.length);
  const rates = [...m.j1.map((p) => p.pHat), ...m.lstarEvaluations.map((e) => e.error)];
  for (const r of [...rates, m.gssm.accuracy]) assert(r >= 0 && r <= 1, `rate ${r}`);
});
