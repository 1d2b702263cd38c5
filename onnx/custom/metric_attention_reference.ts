/**
 * A float64 reference of metric attention (CLAIMS.md §3.1, the README variant with an optional
 * causal mask), written as plain loops over the dense symmetric metric: what the
 * `MetricAttention` op's definitions and kernels are checked against, and its exact gradient,
 * dense (∂L/∂A with A's K² entries independent) and packed (M's K(K+1)/2 entries, each tying
 * A[k][k'] and A[k'][k]).
 * @module
 */

/** The sizes: P is [batch, heads, length, dim], M [heads, dim(dim+1)/2]. */
export interface MetricDims {
  readonly batch: number;
  readonly heads: number;
  readonly length: number;
  readonly dim: number;
}

/** The options of the reference, as the op's wrapper takes them. */
export interface MetricReferenceOptions {
  /** Keys after the query get weight 0 (default true). */
  readonly causal?: boolean;
  /** The scores' scale (default 1/√dim). */
  readonly scale?: number;
}

/** Head h's dense metric [K·K] from packed M, row-major upper triangle (k ≤ k'). */
export function denseMetric(m: ArrayLike<number>, h: number, K: number): Float64Array {
  const L = (K * (K + 1)) / 2;
  const a = new Float64Array(K * K);
  let l = h * L;
  for (let k = 0; k < K; k++) {
    for (let k2 = k; k2 < K; k2++, l++) a[k * K + k2] = a[k2 * K + k] = m[l];
  }
  return a;
}

/** What forward and gradient share for one (batch row, head): P's rows, Q = P·A, weights W. */
interface HeadTerms {
  readonly at: (t: number, k: number) => number; // index into P
  readonly a: Float64Array; // [K, K]
  readonly q: Float64Array; // [T, K]: P·A
  readonly w: Float64Array; // [T, T]
}

function headTerms(
  p: ArrayLike<number>,
  m: ArrayLike<number>,
  dims: MetricDims,
  b: number,
  h: number,
  scale: number,
  causal: boolean,
): HeadTerms {
  const { heads: H, length: T, dim: K } = dims;
  const base = (b * H + h) * T * K;
  const at = (t: number, k: number) => base + t * K + k;
  const a = denseMetric(m, h, K);
  const q = new Float64Array(T * K);
  for (let t = 0; t < T; t++) {
    for (let k2 = 0; k2 < K; k2++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += p[at(t, k)] * a[k * K + k2];
      q[t * K + k2] = s;
    }
  }
  const w = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    const last = causal ? i : T - 1;
    let max = -Infinity;
    for (let j = 0; j <= last; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += q[i * K + k] * p[at(j, k)];
      w[i * T + j] = scale * s;
      max = Math.max(max, scale * s);
    }
    let z = 0;
    for (let j = 0; j <= last; j++) z += w[i * T + j] = Math.exp(w[i * T + j] - max);
    for (let j = 0; j <= last; j++) w[i * T + j] /= z;
  }
  return { at, a, q, w };
}

function options(dims: MetricDims, opts: MetricReferenceOptions): [number, boolean] {
  return [opts.scale ?? 1 / Math.sqrt(dims.dim), opts.causal ?? true];
}

/** Y [B, H, T, K] = softmax(scale·P·A·Pᵀ + mask)·P, per batch row and head. */
export function metricAttentionReference(
  p: ArrayLike<number>,
  m: ArrayLike<number>,
  dims: MetricDims,
  opts: MetricReferenceOptions = {},
): Float64Array {
  const { batch: B, heads: H, length: T, dim: K } = dims;
  const [scale, causal] = options(dims, opts);
  const y = new Float64Array(B * H * T * K);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const { at, w } = headTerms(p, m, dims, b, h, scale, causal);
      for (let i = 0; i < T; i++) {
        for (let k = 0; k < K; k++) {
          let s = 0;
          for (let j = 0; j < T; j++) s += w[i * T + j] * p[at(j, k)];
          y[at(i, k)] = s;
        }
      }
    }
  }
  return y;
}

/** The gradients of Σ dY ⊙ Y (see {@linkcode metricAttentionGradReference}). */
export interface MetricGradients {
  /** ∂L/∂P [B, H, T, K]. */
  readonly dp: Float64Array;
  /** ∂L/∂A [H, K, K] with the dense metric's K² entries taken as independent. */
  readonly dense: Float64Array;
  /** ∂L/∂M [H, K(K+1)/2]: M[l(k, k')] sets A[k][k'] and A[k'][k], so it collects both. */
  readonly dm: Float64Array;
}

/**
 * The gradient of L = Σ dY ⊙ Y by the chain rule on the dense form S = scale·P·A·Pᵀ:
 * dW = dY·Pᵀ, dS = W ⊙ (dW − rowsum(dW ⊙ W)), ∂L/∂P = Wᵀ·dY + scale·(dS + dSᵀ)·P·A,
 * ∂L/∂A = scale·Pᵀ·dS·P (summed over the batch), then packed.
 */
export function metricAttentionGradReference(
  dy: ArrayLike<number>,
  p: ArrayLike<number>,
  m: ArrayLike<number>,
  dims: MetricDims,
  opts: MetricReferenceOptions = {},
): MetricGradients {
  const { batch: B, heads: H, length: T, dim: K } = dims;
  const [scale, causal] = options(dims, opts);
  const dp = new Float64Array(B * H * T * K);
  const dense = new Float64Array(H * K * K);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const { at, q, w } = headTerms(p, m, dims, b, h, scale, causal);
      const ds = new Float64Array(T * T);
      for (let i = 0; i < T; i++) {
        const dw = Array.from({ length: T }, (_, j) => {
          let s = 0;
          for (let k = 0; k < K; k++) s += dy[at(i, k)] * p[at(j, k)];
          return s;
        });
        let c = 0;
        for (let j = 0; j < T; j++) c += dw[j] * w[i * T + j];
        for (let j = 0; j < T; j++) ds[i * T + j] = w[i * T + j] * (dw[j] - c);
      }
      for (let t = 0; t < T; t++) {
        for (let k = 0; k < K; k++) {
          let s = 0;
          for (let j = 0; j < T; j++) {
            s += w[j * T + t] * dy[at(j, k)] +
              scale * (ds[t * T + j] + ds[j * T + t]) * q[j * K + k];
          }
          dp[at(t, k)] = s;
        }
      }
      // ∂L/∂A += scale·Pᵀ·(dS·P), the inner product first: O(T²K + TK²).
      const dsp = new Float64Array(T * K);
      for (let i = 0; i < T; i++) {
        for (let k2 = 0; k2 < K; k2++) {
          let s = 0;
          for (let j = 0; j < T; j++) s += ds[i * T + j] * p[at(j, k2)];
          dsp[i * K + k2] = s;
        }
      }
      for (let k = 0; k < K; k++) {
        for (let k2 = 0; k2 < K; k2++) {
          let s = 0;
          for (let i = 0; i < T; i++) s += p[at(i, k)] * dsp[i * K + k2];
          dense[(h * K + k) * K + k2] += scale * s;
        }
      }
    }
  }
  const L = (K * (K + 1)) / 2;
  const dm = new Float64Array(H * L);
  for (let h = 0; h < H; h++) {
    let l = h * L;
    for (let k = 0; k < K; k++) {
      for (let k2 = k; k2 < K; k2++, l++) {
        const g = (x: number, y: number) => dense[(h * K + x) * K + y];
        dm[l] = k === k2 ? g(k, k) : g(k, k2) + g(k2, k);
      }
    }
  }
  return { dp, dense, dm };
}
