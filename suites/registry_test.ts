import { assert, assertEquals, assertMatch } from "@std/assert";
import { EVIDENCE } from "../reports/schema.ts";
import { openEngine } from "../runner/engine.ts";
import { smokeRun } from "./harness.ts";
import { SUITES } from "./registry.ts";
import { CALIBRATION_SEED, type SuiteOutcome } from "./suite.ts";

const ENGINE = await openEngine("portable");

/** Whether a measured value, threshold or per-seed value can go in a results file. */
function finiteOrNull(x: number | null): boolean {
  return x === null || Number.isFinite(x);
}

/** What every suite's outcome must hold, whatever its profile and verdicts. */
function assertWellFormed(outcome: SuiteOutcome): void {
  assert(outcome.checks.length > 0, "no checks");
  assertEquals(new Set(outcome.checks.map((c) => c.id)).size, outcome.checks.length);
  for (const c of outcome.checks) {
    for (const field of [c.id, c.title, c.source, c.metric, c.detail]) {
      assert(field.trim().length > 0, `${c.id}: an empty field`);
    }
    assert(EVIDENCE.includes(c.evidence), `${c.id}: evidence ${c.evidence}`);
    assert(["pass", "fail", "inconclusive"].includes(c.actual), `${c.id}: ${c.actual}`);
    assertEquals(c.matches, c.actual === c.expected, c.id);
    assert(finiteOrNull(c.measured), `${c.id}: measured ${c.measured}`);
    assert(finiteOrNull(c.threshold), `${c.id}: threshold ${c.threshold}`);
    if (c.perSeed) {
      assertEquals(c.perSeed.length, c.seeds?.length, `${c.id}: one value per seed`);
      assert(c.perSeed.every(finiteOrNull), `${c.id}: per seed ${c.perSeed}`);
    }
  }
  assert(outcome.figures.length > 0, "no figures");
  for (const f of outcome.figures) {
    assert(f.data.length > 0, `figure ${f.id} has no data`);
    for (const field of [f.x.field, f.y.field]) {
      assert(f.data.some((row) => field in row), `figure ${f.id}: no row has ${field}`);
    }
  }
}

// Every registered suite gets these checks for free.
for (const suite of SUITES) {
  Deno.test(`suite ${suite.id}: id, file and metadata`, () => {
    assertMatch(suite.id, /^[a-z0-9]+(-[a-z0-9]+)*$/);
    const file = new URL(`./${suite.id.replaceAll("-", "_")}.ts`, import.meta.url);
    assert(Deno.statSync(file).isFile, `suites/${suite.id.replaceAll("-", "_")}.ts`);
    for (const field of [suite.title, suite.claim, suite.source]) assert(field.length > 10);
  });

  Deno.test(`suite ${suite.id}: runs at the smoke profile, well formed and deterministic`, async () => {
    // Two threads, as the CLI on the 2-core machine; each run trains afresh in its own cache.
    const a = await smokeRun(suite, ENGINE, 2);
    assertWellFormed(a);
    const b = await smokeRun(suite, ENGINE, 2);
    const { phases: _pa, ...restA } = a;
    const { phases: _pb, ...restB } = b;
    assertEquals(JSON.stringify(b.checks), JSON.stringify(a.checks));
    assertEquals(JSON.stringify(restB), JSON.stringify(restA));
  });
}

Deno.test("pilots ran on calibration seeds only, apart from every verdict seed", () => {
  for (const suite of SUITES) {
    for (const [profile, pilot] of Object.entries(suite.pilots ?? {})) {
      const where = `${suite.id} ${profile}`;
      assert(pilot.seeds.length > 0, `${where}: no seeds`);
      // Verdict runs take seeds 0, 1, 2 (`--seed 0`); a pilot must never share one.
      for (const s of pilot.seeds) assert(s >= CALIBRATION_SEED, `${where}: seed ${s}`);
      assert(Object.keys(pilot.checks).length > 0, `${where}: no checks`);
      for (const [id, k] of Object.entries(pilot.checks)) {
        if (k.perSeed) assertEquals(k.perSeed.length, pilot.seeds.length, `${where} ${id}`);
      }
      assert(pilot.decided.length > 20, `${where}: say what the pilot decided`);
    }
  }
});

Deno.test("suite ids are unique", () => {
  assertEquals(new Set(SUITES.map((s) => s.id)).size, SUITES.length);
});
