import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  binomialCdf,
  binomialSf,
  binomialTestPValue,
  clopperPearsonInterval,
  clopperPearsonLower,
  clopperPearsonUpper,
  fitLine,
  logGamma,
  normalCdf,
  normalQuantile,
  regularizedBeta,
  studentTQuantile,
  wilsonInterval,
} from "./stats.ts";

/** |a − b| ≤ rel·|b| (plus a tiny absolute floor for values near 0). */
function assertRel(actual: number, expected: number, rel: number, msg?: string): void {
  assertAlmostEquals(actual, expected, Math.abs(expected) * rel + 1e-300, msg);
}

// Reference values: SciPy 1.17 (stats.beta.ppf, stats.binom, stats.t.ppf, special.betainc,
// stats.linregress), and the textbook closed forms named beside each.

Deno.test("logGamma() matches Γ at integers and ½, and SciPy's gammaln for large x", () => {
  assertAlmostEquals(logGamma(1), 0, 1e-14);
  assertRel(logGamma(5), Math.log(24), 1e-14);
  assertRel(logGamma(0.5), 0.5723649429247, 1e-12); // ln √π
  assertRel(logGamma(100000), 1051287.7089736569, 1e-14);
  assertThrows(() => logGamma(0), RangeError);
});

Deno.test("regularizedBeta() and the normal CDF match SciPy", () => {
  assertRel(regularizedBeta(0.3, 2.5, 3.5), 0.29675298929566646, 1e-12);
  assertRel(regularizedBeta(0.016, 1600, 98401), 0.5034050688393386, 1e-9);
  assertEquals(regularizedBeta(0, 2, 3), 0);
  assertEquals(regularizedBeta(1, 2, 3), 1);
  assertRel(regularizedBeta(0.5, 1, 1), 0.5, 1e-14); // uniform
  assertRel(normalCdf(-1.5), 0.06680720126885807, 1e-12);
  assertRel(normalCdf(0), 0.5, 1e-15);
});

Deno.test("normalQuantile() and studentTQuantile() give the textbook critical values", () => {
  assertRel(normalQuantile(0.975), 1.959963984540054, 1e-12);
  assertRel(normalQuantile(0.995), 2.5758293035489004, 1e-12);
  assertRel(normalQuantile(0.025), -1.959963984540054, 1e-12);
  // t_{0.975, df}: 12.706, 4.303, 2.571, 2.447, 2.228, 2.042 (any t table)
  const table: [number, number][] = [
    [1, 12.706204736174694],
    [2, 4.302652729749462],
    [5, 2.5705818356363146],
    [6, 2.4469118511449786],
    [10, 2.228138851986274],
    [30, 2.0422724563012378],
  ];
  for (const [df, t] of table) assertRel(studentTQuantile(0.975, df), t, 1e-10, `df ${df}`);
});

Deno.test("binomial CDF and upper tail match SciPy and sum to 1 + P(X = k)", () => {
  assertRel(binomialCdf(30, 200, 0.1), 0.9904916880530268, 1e-12);
  assertRel(binomialSf(30, 200, 0.1), 0.016326565931766502, 1e-10);
  assertRel(binomialCdf(3, 10, 0.5), 176 / 1024, 1e-13); // (1 + 10 + 45 + 120)/2^10
  assertEquals(binomialCdf(10, 10, 0.3), 1);
  assertEquals(binomialSf(0, 10, 0.3), 1);
  const pk = 120 / 1024; // P(X = 3), n = 10, p = ½
  assertAlmostEquals(binomialCdf(3, 10, 0.5) + binomialSf(3, 10, 0.5), 1 + pk, 1e-14);
});

Deno.test("Wilson interval matches the closed form", () => {
  const a = wilsonInterval(3, 10);
  assertRel(a.lower, 0.10779126740630099, 1e-12);
  assertRel(a.upper, 0.6032218525388546, 1e-12);
  const b = wilsonInterval(0, 10);
  assertEquals(b.lower, 0);
  assertRel(b.upper, 0.2775327998628892, 1e-12);
  const c = wilsonInterval(81, 263);
  assertRel(c.lower, 0.2552885198782742, 1e-12);
  assertRel(c.upper, 0.36620957698280004, 1e-12);
});

Deno.test("Clopper–Pearson bounds match SciPy's beta quantiles and the k = 0 / k = n forms", () => {
  // one-sided 95%
  assertRel(clopperPearsonLower(3, 10), 0.08726443391, 1e-9);
  assertRel(clopperPearsonUpper(3, 10), 0.6066242161, 1e-9);
  assertRel(clopperPearsonLower(1, 20000), 2.564661431e-6, 1e-8);
  assertRel(clopperPearsonUpper(1, 20000), 2.371710266e-4, 1e-8);
  assertRel(clopperPearsonLower(17, 5000), 0.00216754905, 1e-8);
  assertRel(clopperPearsonLower(1600, 100000), 0.015352741916592413, 1e-9);
  // k = 0: upper = 1 − α^(1/n) (CLAIMS.md J1: 0 of 20k → 1.5e-4); k = n: lower = α^(1/n)
  assertEquals(clopperPearsonLower(0, 20), 0);
  assertRel(clopperPearsonUpper(0, 20), 0.1391083407, 1e-9);
  assertRel(clopperPearsonUpper(0, 20000), 1 - 0.05 ** (1 / 20000), 1e-9);
  assertRel(clopperPearsonUpper(0, 20000), 1.4978e-4, 1e-4);
  assertRel(clopperPearsonLower(20, 20), 0.05 ** (1 / 20), 1e-12);
  assertEquals(clopperPearsonUpper(20, 20), 1);
  // two-sided 95% (R binom.test(3, 10): 0.0667 – 0.6525; binom.test(5, 10): 0.1871 – 0.8129)
  const i3 = clopperPearsonInterval(3, 10);
  assertRel(i3.lower, 0.06673951118, 1e-9);
  assertRel(i3.upper, 0.6524528501, 1e-9);
  const i5 = clopperPearsonInterval(5, 10);
  assertRel(i5.lower, 0.1870860284, 1e-9);
  assertRel(i5.upper, 0.8129139716, 1e-9);
  assertRel(i5.lower, 1 - i5.upper, 1e-12); // symmetric at k = n/2
});

Deno.test("binomialTestPValue() is twice the smaller tail and agrees with the CP interval", () => {
  assertRel(binomialTestPValue(3, 10, 0.5), 0.34375, 1e-12);
  assertRel(binomialTestPValue(1600, 100000, 1 / 64), 0.34521774822882256, 1e-8);
  assertRel(binomialTestPValue(0, 50, 0.05), 0.1538899505534266, 1e-10);
  assertRel(binomialTestPValue(30, 200, 0.1), 0.032653131863533004, 1e-9);
  // p0 inside the 99% interval ⇔ p-value ≥ 0.01
  const ci = clopperPearsonInterval(30, 200, 0.99);
  for (const p0 of [0.08, 0.1, 0.2, 0.22, 0.25]) {
    const inside = p0 >= ci.lower && p0 <= ci.upper;
    assertEquals(binomialTestPValue(30, 200, p0) >= 0.01, inside, `p0 ${p0}`);
  }
});

Deno.test("fitLine() matches SciPy's linregress and a t interval with n − 2 df", () => {
  const fit = fitLine([1, 2, 3, 4, 5], [2.1, 3.9, 6.2, 7.8, 10.1]);
  assertRel(fit.slope, 1.99, 1e-12);
  assertAlmostEquals(fit.intercept, 0.05, 1e-12);
  assertRel(fit.slopeStdErr, 0.059721576223897795, 1e-10);
  assertRel(fit.slopeLower, 1.7999392904005371, 1e-10);
  assertRel(fit.slopeUpper, 2.180060709599463, 1e-10);
  assertRel(fit.r2, 0.997305328900977, 1e-12);
  const exact = fitLine([0, 1, 2], [1, 3, 5]);
  assertEquals([exact.slope, exact.slopeStdErr, exact.r2], [2, 0, 1]);
  assertThrows(() => fitLine([1, 2], [1, 2]), RangeError, "≥ 3 points");
  assertThrows(() => fitLine([1, 1, 1], [1, 2, 3]), RangeError, "every x");
});

Deno.test("bad counts and probabilities are RangeErrors", () => {
  assertThrows(() => clopperPearsonLower(11, 10), RangeError, "k must be");
  assertThrows(() => wilsonInterval(1, 0), RangeError, "n must be");
  assertThrows(() => wilsonInterval(1, 10, 1), RangeError, "confidence");
  assertThrows(() => binomialTestPValue(1, 10, 0), RangeError, "p0");
  assert(clopperPearsonLower(5, 10, 0.99) < clopperPearsonLower(5, 10, 0.9));
});
