import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import {
  type CheckResult,
  RESULTS_SCHEMA,
  summarise,
  summaryLine,
  validateResults,
} from "./schema.ts";

function check(overrides: Partial<CheckResult> = {}): CheckResult {
  return {
    id: "S1",
    title: "copy accuracy at length 512",
    source: "paper table 1",
    metric: "accuracy (fraction)",
    measured: 0.95,
    threshold: 0.9,
    direction: ">=",
    expected: "pass",
    evidence: "trained",
    actual: "pass",
    matches: true,
    detail: "mean over 3 seeds",
    ...overrides,
  };
}

function results(): Record<string, unknown> {
  return {
    schema: RESULTS_SCHEMA,
    suite: "copy-task",
    title: "Copying",
    claim: "Transformers copy long strings.",
    source: "paper §3",
    profile: "quick",
    seed: 0,
    threads: 4,
    config: {},
    checks: [check(), check({ id: "S2", actual: "fail", matches: false })],
    metrics: {},
    figures: [{
      id: "acc-vs-len",
      title: "Accuracy",
      caption: "Accuracy by length.",
      mark: "line",
      data: [{ len: 64, acc: 1 }],
      x: { field: "len", title: "Length", type: "quantitative" },
      y: { field: "acc", title: "Accuracy", type: "quantitative" },
    }],
    verdict: "fail",
    versions: { deno: "2.9.0" },
  };
}

Deno.test("validateResults() accepts valid results and returns them", () => {
  const x = results();
  assertStrictEquals(validateResults(x), x);
});

Deno.test("validateResults() names the bad field", () => {
  const x = results();
  (x.checks as Record<string, unknown>[])[1].measured = "0.5";
  assertThrows(() => validateResults(x), TypeError, "checks[1].measured must be a finite number");
});

Deno.test("validateResults() rejects a wrong schema, a non-kebab suite and bad figure fields", () => {
  assertThrows(() => validateResults({ ...results(), schema: "x/2" }), TypeError, "schema");
  assertThrows(() => validateResults({ ...results(), suite: "Copy Task" }), TypeError, "suite");
  const x = results();
  (x.figures as Record<string, unknown>[])[0].mark = "pie";
  assertThrows(() => validateResults(x), TypeError, "figures[0].mark must be one of");
  const y = results();
  (y.figures as unknown[]).push((y.figures as unknown[])[0]);
  assertThrows(() => validateResults(y), TypeError, "figures[1].id must be unique");
  const z = results();
  (z.figures as Record<string, unknown>[])[0].spans = [{ from: 8, to: null, label: "training" }];
  assertThrows(() => validateResults(z), TypeError, "figures[0].spans[0].to");
});

Deno.test("validateResults() rejects matches inconsistent with actual and expected", () => {
  const x = results();
  (x.checks as Record<string, unknown>[])[0].matches = false;
  assertThrows(() => validateResults(x), TypeError, "checks[0].matches");
});

Deno.test("validateResults() checks a check's calibration record", () => {
  const x = results();
  const calibration = { seeds: [1000, 1001, 1002], measured: 0.6, perSeed: [0.6, 0.5, 0.7] };
  (x.checks as CheckResult[])[0].calibration = { ...calibration, actual: "inconclusive" };
  assertStrictEquals(validateResults(x), x);
  (x.checks as Record<string, unknown>[])[0].calibration = { ...calibration, actual: "maybe" };
  assertThrows(() => validateResults(x), TypeError, "checks[0].calibration.actual");
  (x.checks as Record<string, unknown>[])[0].calibration = { ...calibration, seeds: [1.5] };
  assertThrows(() => validateResults(x), TypeError, "checks[0].calibration.seeds[0]");
});

Deno.test("validateResults() accepts a claim only where the expectation departs from it", () => {
  const x = results();
  const checks = x.checks as Record<string, unknown>[];
  Object.assign(checks[1], { expected: "fail", claimed: "pass", matches: true });
  assertStrictEquals(validateResults(x), x);
  checks[1].claimed = "fail";
  assertThrows(() => validateResults(x), TypeError, "checks[1].claimed");
});

Deno.test("summarise() counts verdicts and matches", () => {
  const checks = [
    check(),
    check({ id: "F", actual: "fail", expected: "fail", claimed: "pass" }),
    check({ id: "I", actual: "inconclusive", matches: false, evidence: "constructed" }),
  ];
  assertEquals(summarise(checks), {
    total: 3,
    pass: 1,
    fail: 1,
    inconclusive: 1,
    matched: 2,
    allMatch: false,
    byEvidence: {
      trained: { total: 2, matched: 2 },
      constructed: { total: 1, matched: 0 },
      arithmetic: { total: 0, matched: 0 },
    },
    // F was foreseen by its pilot, I was not: neither reproduces its claim.
    notReproduced: ["F", "I"],
  });
  assertEquals(summarise([]).allMatch, true);
});

Deno.test("summaryLine() counts each evidence class apart, and keeps CI's leading count", () => {
  const checks = [
    check(),
    check({ evidence: "arithmetic" }),
    check({ actual: "fail", matches: false, evidence: "arithmetic" }),
  ];
  assertEquals(
    summaryLine(summarise(checks)),
    "2 of 3 checks match their expected verdicts (trained 1 of 1; arithmetic 1 of 2); " +
      "the claim of 1 is not reproduced: S1",
  );
});

Deno.test("validateResults() rejects a check without a known evidence class", () => {
  const x = results();
  (x.checks as Record<string, unknown>[])[0].evidence = "anecdotal";
  assertThrows(() => validateResults(x), TypeError, "checks[0].evidence");
});
