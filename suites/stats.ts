/**
 * Small exact statistics for checks: binomial confidence bounds (Wilson, Clopper–Pearson), an
 * exact binomial test, and a least-squares line with a t-based interval on its slope.
 *
 * Special functions follow Numerical Recipes (Press et al., 3rd ed.): log Γ by the Lanczos
 * approximation (g = 7, 9 terms), the regularised incomplete beta I_x(a, b) by its continued
 * fraction (modified Lentz, §6.4), the regularised lower incomplete gamma P(a, x) by series or
 * continued fraction (§6.2). Quantiles are found by bisection on the CDFs, so every bound is as
 * exact as the CDF it inverts (~1e-12 relative or better in the tests).
 * @module
 */

const LANCZOS = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; ~1e-15 relative). */
export function logGamma(x: number): number {
  if (!(x > 0)) {
    throw new RangeError(`Cannot take log Γ(x) as x must be > 0: current value is ${x}`);
  }
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x); // reflection
  const z = x - 1;
  let s = LANCZOS[0];
  for (let i = 1; i < 9; i++) s += LANCZOS[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

const EPS = 1e-16;
const TINY = 1e-300;
const MAX_ITER = 100_000;

/** Continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1)/(a + b + 2). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_ITER; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2)); // even step
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2)); // odd step
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) return h;
  }
  throw new RangeError(
    `Cannot evaluate I_x(a, b) as the continued fraction did not converge: a=${a}, b=${b}`,
  );
}

/** Regularised incomplete beta I_x(a, b) = B(x; a, b)/B(a, b), for a, b > 0 and 0 ≤ x ≤ 1. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0)) {
    throw new RangeError(
      `Cannot evaluate I_x(a, b) as a and b must be > 0: current values are ${a}, ${b}`,
    );
  }
  if (!(x >= 0 && x <= 1)) {
    throw new RangeError(`Cannot evaluate I_x(a, b) as x must be in [0, 1]: current value is ${x}`);
  }
  if (x === 0 || x === 1) return x;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) +
    b * Math.log1p(-x);
  const front = Math.exp(lnFront);
  // I_x(a, b) = 1 − I_{1−x}(b, a): use the side where the continued fraction converges fast.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** Regularised lower incomplete gamma P(a, x), a > 0, x ≥ 0. */
export function regularizedGammaP(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) {
    throw new RangeError(`Cannot evaluate P(a, x) for a=${a}, x=${x}: need a > 0 and x ≥ 0`);
  }
  if (x === 0) return 0;
  const lnFront = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let ap = a;
    let sum = 1 / a;
    let del = sum;
    for (let n = 1; n <= MAX_ITER; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * EPS) return sum * Math.exp(lnFront);
    }
  } else {
    let b = x + 1 - a; // continued fraction for Q(a, x), modified Lentz
    let c = 1 / TINY;
    let d = 1 / b;
    let h = d;
    for (let i = 1; i <= MAX_ITER; i++) {
      const an = -i * (i - a);
      b += 2;
      d = an * d + b;
      if (Math.abs(d) < TINY) d = TINY;
      c = b + an / c;
      if (Math.abs(c) < TINY) c = TINY;
      d = 1 / d;
      const del = d * c;
      h *= del;
      if (Math.abs(del - 1) < EPS) return 1 - Math.exp(lnFront) * h;
    }
  }
  throw new RangeError(`Cannot evaluate P(a, x) as the iteration did not converge: a=${a}, x=${x}`);
}

/** Standard normal CDF Φ(z) = ½(1 + sign(z)·P(½, z²/2)). */
export function normalCdf(z: number): number {
  const p = regularizedGammaP(0.5, (z * z) / 2);
  return z >= 0 ? 0.5 + 0.5 * p : 0.5 - 0.5 * p;
}

/**
 * Smallest-width bisection: the x in [lo, hi] where the increasing function f crosses `target`.
 * 200 halvings reach the resolution of doubles on any finite bracket.
 */
function bisect(f: (x: number) => number, target: number, lo: number, hi: number): number {
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (mid === lo || mid === hi) break;
    if (f(mid) < target) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

function checkProbability(action: string, name: string, p: number, open = true): void {
  const ok = open ? p > 0 && p < 1 : p >= 0 && p <= 1;
  if (!ok) {
    throw new RangeError(
      `Cannot ${action} as ${name} must be in ${open ? "(0, 1)" : "[0, 1]"}: current value is ${p}`,
    );
  }
}

/**
 * Standard normal quantile Φ⁻¹(p).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { normalQuantile } from "./stats.ts";
 *
 * assertAlmostEquals(normalQuantile(0.975), 1.959963984540054, 1e-12);
 * ```
 */
export function normalQuantile(p: number): number {
  checkProbability("take a normal quantile", "p", p);
  if (p < 0.5) return -normalQuantile(1 - p);
  let hi = 1;
  while (normalCdf(hi) < p) hi *= 2;
  return bisect(normalCdf, p, 0, hi);
}

/** Student-t CDF with `df` degrees of freedom: for t ≥ 0, 1 − ½·I_{df/(df+t²)}(df/2, ½). */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`Cannot evaluate a t CDF with df=${df}: need df > 0`);
  const tail = 0.5 * regularizedBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * Student-t quantile: the t with P(T ≤ t) = p for `df` degrees of freedom.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { studentTQuantile } from "./stats.ts";
 *
 * assertAlmostEquals(studentTQuantile(0.975, 6), 2.4469118511449786, 1e-10);
 * ```
 */
export function studentTQuantile(p: number, df: number): number {
  checkProbability("take a t quantile", "p", p);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  return bisect((t) => studentTCdf(t, df), p, 0, hi);
}

function checkCounts(action: string, k: number, n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot ${action} as n must be an integer ≥ 1: current value is ${n}`);
  }
  if (!Number.isInteger(k) || k < 0 || k > n) {
    throw new RangeError(
      `Cannot ${action} as k must be an integer from 0 to n=${n}: current value is ${k}`,
    );
  }
}

/** Binomial CDF P(X ≤ k) for X ~ Bin(n, p) = I_{1−p}(n − k, k + 1). */
export function binomialCdf(k: number, n: number, p: number): number {
  checkCounts("evaluate a binomial CDF", k, n);
  checkProbability("evaluate a binomial CDF", "p", p, false);
  if (k === n) return 1;
  return regularizedBeta(1 - p, n - k, k + 1);
}

/** Binomial upper tail P(X ≥ k) for X ~ Bin(n, p) = I_p(k, n − k + 1). */
export function binomialSf(k: number, n: number, p: number): number {
  checkCounts("evaluate a binomial tail", k, n);
  checkProbability("evaluate a binomial tail", "p", p, false);
  if (k === 0) return 1;
  return regularizedBeta(p, k, n - k + 1);
}

/** A two-sided interval. */
export interface Interval {
  lower: number;
  upper: number;
}

/**
 * Wilson score interval for k successes in n trials at two-sided `confidence` (default 0.95):
 * (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { wilsonInterval } from "./stats.ts";
 *
 * const { lower, upper } = wilsonInterval(3, 10);
 * assertAlmostEquals(lower, 0.10779126740630099, 1e-12);
 * assertAlmostEquals(upper, 0.6032218525388546, 1e-12);
 * ```
 */
export function wilsonInterval(k: number, n: number, confidence = 0.95): Interval {
  checkCounts("compute a Wilson interval", k, n);
  checkProbability("compute a Wilson interval", "confidence", confidence);
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const p = k / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt(p * (1 - p) / n + z2n / (4 * n))) / (1 + z2n);
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/**
 * One-sided Clopper–Pearson lower bound at `confidence` (default 0.95): the p with
 * P(X ≥ k | p) = 1 − confidence, i.e. the (1 − confidence) quantile of Beta(k, n − k + 1);
 * 0 when k = 0. A true p below it would make k or more successes that unlikely.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { clopperPearsonLower } from "./stats.ts";
 *
 * assertAlmostEquals(clopperPearsonLower(3, 10), 0.08726443391, 1e-10);
 * ```
 */
export function clopperPearsonLower(k: number, n: number, confidence = 0.95): number {
  checkCounts("compute a Clopper–Pearson bound", k, n);
  checkProbability("compute a Clopper–Pearson bound", "confidence", confidence);
  if (k === 0) return 0;
  const alpha = 1 - confidence;
  // P(X ≥ k | p) increases with p.
  return bisect((p) => binomialSf(k, n, p), alpha, 0, 1);
}

/**
 * One-sided Clopper–Pearson upper bound at `confidence` (default 0.95): the p with
 * P(X ≤ k | p) = 1 − confidence; 1 when k = n. For k = 0 it is 1 − (1 − confidence)^(1/n).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { clopperPearsonUpper } from "./stats.ts";
 *
 * assertAlmostEquals(clopperPearsonUpper(0, 20), 1 - 0.05 ** (1 / 20), 1e-12);
 * ```
 */
export function clopperPearsonUpper(k: number, n: number, confidence = 0.95): number {
  checkCounts("compute a Clopper–Pearson bound", k, n);
  checkProbability("compute a Clopper–Pearson bound", "confidence", confidence);
  if (k === n) return 1;
  const alpha = 1 - confidence;
  // P(X ≤ k | p) decreases with p: bisect on its complement.
  return bisect((p) => 1 - binomialCdf(k, n, p), 1 - alpha, 0, 1);
}

/** Two-sided Clopper–Pearson interval at `confidence`: each one-sided bound at (1 + c)/2. */
export function clopperPearsonInterval(k: number, n: number, confidence = 0.95): Interval {
  const oneSided = 1 - (1 - confidence) / 2;
  return {
    lower: clopperPearsonLower(k, n, oneSided),
    upper: clopperPearsonUpper(k, n, oneSided),
  };
}

/**
 * Exact two-sided binomial test of H₀: p = p0, as twice the smaller tail (capped at 1). It is
 * ≥ α exactly when p0 lies inside the two-sided (1 − α) Clopper–Pearson interval of k/n.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { binomialTestPValue } from "./stats.ts";
 *
 * assertAlmostEquals(binomialTestPValue(3, 10, 0.5), 0.34375, 1e-12);
 * ```
 */
export function binomialTestPValue(k: number, n: number, p0: number): number {
  checkProbability("run a binomial test", "p0", p0);
  return Math.min(1, 2 * Math.min(binomialCdf(k, n, p0), binomialSf(k, n, p0)));
}

/** A least-squares line y ≈ intercept + slope·x with a two-sided interval on the slope. */
export interface LineFit {
  slope: number;
  intercept: number;
  /** Standard error of the slope, s/√Sxx with s² = SSE/(n − 2). */
  slopeStdErr: number;
  /** Confidence interval of the slope: slope ± t_{(1+c)/2, n−2}·slopeStdErr. */
  slopeLower: number;
  slopeUpper: number;
  /** Coefficient of determination. */
  r2: number;
  n: number;
}

/**
 * Ordinary least squares of ys on xs with a `confidence` (default 0.95) t interval on the slope.
 * Needs at least 3 points and two distinct x.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { fitLine } from "./stats.ts";
 *
 * const fit = fitLine([1, 2, 3, 4], [2, 4, 5, 8]);
 * assertAlmostEquals(fit.slope, 1.9, 1e-12);
 * assertAlmostEquals(fit.intercept, 0, 1e-12);
 * ```
 */
export function fitLine(xs: readonly number[], ys: readonly number[], confidence = 0.95): LineFit {
  const n = xs.length;
  if (ys.length !== n) {
    throw new TypeError(`Cannot fit a line to ${n} x values and ${ys.length} y values`);
  }
  if (n < 3) {
    throw new RangeError(
      `Cannot fit a line with an interval as it needs ≥ 3 points: current value is ${n}`,
    );
  }
  checkProbability("fit a line", "confidence", confidence);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0, sxy = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
    syy += (ys[i] - my) ** 2;
  }
  if (sxx === 0) throw new RangeError("Cannot fit a line as every x is the same");
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i] - intercept - slope * xs[i]) ** 2;
  const slopeStdErr = Math.sqrt(sse / (n - 2) / sxx);
  const t = studentTQuantile(1 - (1 - confidence) / 2, n - 2);
  return {
    slope,
    intercept,
    slopeStdErr,
    slopeLower: slope - t * slopeStdErr,
    slopeUpper: slope + t * slopeStdErr,
    r2: syy === 0 ? 1 : 1 - sse / syy,
    n,
  };
}
