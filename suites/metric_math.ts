/**
 * The float64 arithmetic behind the `metric-attention` suite's MT1–MT5 (CLAIMS.md §3.2): dense
 * and packed quadratic-form scores, the nlp-metaformer README's packed kernel formula as written,
 * operation counts of each scoring scheme, and singular values (one-sided Jacobi) for ranks.
 * Matrices are row-major Float64Arrays with their sizes passed beside them.
 * @module
 */

/**
 * The packing of a symmetric K × K matrix into K(K+1)/2 values: the upper triangle row by row,
 * l = 0 ↦ (0, 0), (0, 1), …, (0, K−1), (1, 1), … ↦ (K−1, K−1). Returns k and k' ≤ … of each l.
 */
export function packedPairs(K: number): { k: Int32Array; k2: Int32Array } {
  const n = (K * (K + 1)) / 2;
  const k = new Int32Array(n);
  const k2 = new Int32Array(n);
  let l = 0;
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++, l++) [k[l], k2[l]] = [i, j];
  }
  return { k, k2 };
}

/** The symmetric K × K matrix of packed values `m` ({@linkcode packedPairs}'s order). */
export function unpackSymmetric(m: Float64Array, K: number): Float64Array {
  const { k, k2 } = packedPairs(K);
  if (m.length !== k.length) {
    throw new RangeError(
      `Cannot unpack a symmetric matrix as K = ${K} needs ${k.length} packed values: current length is ${m.length}`,
    );
  }
  const out = new Float64Array(K * K);
  for (let l = 0; l < k.length; l++) out[k[l] * K + k2[l]] = out[k2[l] * K + k[l]] = m[l];
  return out;
}

/** a [n, m] · b [m, q] → [n, q]. */
export function matMul64(
  a: Float64Array,
  b: Float64Array,
  n: number,
  m: number,
  q: number,
): Float64Array {
  const out = new Float64Array(n * q);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const aij = a[i * m + j];
      for (let k = 0; k < q; k++) out[i * q + k] += aij * b[j * q + k];
    }
  }
  return out;
}

/** aᵀ for a [n, m] → [m, n]. */
export function transpose64(a: Float64Array, n: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = a[i * m + j];
  return out;
}

/** The dense quadratic-form scores r[c, c'] = Σ_{k,k'} M[k,k'] p[c,k] p[c',k'], p [C, K]. */
export function denseScores(p: Float64Array, M: Float64Array, C: number, K: number): Float64Array {
  return matMul64(matMul64(p, M, C, K, K), transpose64(p, C, K), C, K, C);
}

/**
 * The README's packed kernel, literally (nlp-metaformer `metric_attention.cu`, CLAIMS.md §3.1):
 * for each pair c ≤ c' and each packed l = (k ≤ k'), the term w·M_l·p[c,k]·p[c',k'] with w = 1
 * when k = k' and c = c', 2 when exactly one of them holds, 4 when neither; summed over l. The
 * kernel computes c ≤ c' only; the scores are mirrored to c > c' here.
 */
export function readmePackedScores(
  p: Float64Array,
  mPacked: Float64Array,
  C: number,
  K: number,
): Float64Array {
  const { k, k2 } = packedPairs(K);
  const r = new Float64Array(C * C);
  for (let c = 0; c < C; c++) {
    for (let c2 = c; c2 < C; c2++) {
      let sum = 0;
      for (let l = 0; l < k.length; l++) {
        const w = (k[l] === k2[l] ? 1 : 2) * (c === c2 ? 1 : 2);
        sum += w * mPacked[l] * p[c * K + k[l]] * p[c2 * K + k2[l]];
      }
      r[c * C + c2] = r[c2 * C + c] = sum;
    }
  }
  return r;
}

/**
 * The packed formula that does equal the dense scores: the diagonal of M once, each
 * off-diagonal M[k,k'] times both cross products, p[c,k]p[c',k'] + p[c,k']p[c',k]; computed for
 * c ≤ c' and mirrored (symmetry saves the other half, it does not double a term).
 */
export function correctedPackedScores(
  p: Float64Array,
  mPacked: Float64Array,
  C: number,
  K: number,
): Float64Array {
  const { k, k2 } = packedPairs(K);
  const r = new Float64Array(C * C);
  for (let c = 0; c < C; c++) {
    for (let c2 = c; c2 < C; c2++) {
      let sum = 0;
      for (let l = 0; l < k.length; l++) {
        const [a, b] = [k[l], k2[l]];
        const cross = a === b
          ? p[c * K + a] * p[c2 * K + a]
          : p[c * K + a] * p[c2 * K + b] + p[c * K + b] * p[c2 * K + a];
        sum += mPacked[l] * cross;
      }
      r[c * C + c2] = r[c2 * C + c] = sum;
    }
  }
  return r;
}

/** Largest |x| of an array. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Largest |a − b| over the entries where `where(i)` holds (every entry by default). */
export function maxAbsDiff(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  where: (i: number) => boolean = () => true,
): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (where(i)) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Singular values of a [rows, cols] (rows ≥ cols), largest first, by one-sided Jacobi
 * (Hestenes): rotate column pairs until every pair is orthogonal to 1e-15 relative; the column
 * norms are then the singular values, accurate relative to σ₁ near machine precision (unlike the
 * square roots of AᵀA's eigenvalues, which lose half the digits of the small ones).
 */
export function singularValues(a: Float64Array, rows: number, cols: number): number[] {
  if (rows < cols) return singularValues(transpose64(a, rows, cols), cols, rows);
  const u = Float64Array.from(a);
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let i = 0; i < cols - 1; i++) {
      for (let j = i + 1; j < cols; j++) {
        let alpha = 0, beta = 0, gamma = 0;
        for (let r = 0; r < rows; r++) {
          const x = u[r * cols + i], y = u[r * cols + j];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
        for (let r = 0; r < rows; r++) {
          const x = u[r * cols + i], y = u[r * cols + j];
          u[r * cols + i] = cs * x - sn * y;
          u[r * cols + j] = sn * x + cs * y;
        }
      }
    }
    if (!rotated) break;
  }
  const s: number[] = [];
  for (let j = 0; j < cols; j++) {
    let n = 0;
    for (let r = 0; r < rows; r++) n += u[r * cols + j] ** 2;
    s.push(Math.sqrt(n));
  }
  return s.sort((x, y) => y - x);
}

/**
 * Operation counts of the scores of one (batch, head), CLAIMS.md §3.2 MT5: the naive quadruple
 * sum's terms N_c²N_k²; the README's packed kernel's terms [N_c(N_c+1)/2]·[N_k(N_k+1)/2]; the
 * factored GEMM's multiply-adds, (P M) then (P M) Pᵀ, N_cN_k² + N_c²N_k, and with only c ≤ c'
 * N_cN_k² + N_c(N_c+1)/2·N_k; and the README's claimed N_kN_c/2.
 */
export function scoreOpCounts(Nc: number, Nk: number): {
  naive: number;
  packed: number;
  gemm: number;
  gemmSymmetric: number;
  claim: number;
} {
  return {
    naive: Nc * Nc * Nk * Nk,
    packed: ((Nc * (Nc + 1)) / 2) * ((Nk * (Nk + 1)) / 2),
    gemm: Nc * Nk * Nk + Nc * Nc * Nk,
    gemmSymmetric: Nc * Nk * Nk + ((Nc * (Nc + 1)) / 2) * Nk,
    claim: (Nk * Nc) / 2,
  };
}

/**
 * Attention parameters per layer, weights only (CLAIMS.md §3.2 MT3), for model width N_d, N_n
 * heads of N_k dims: the quadratic form U (N_nN_d²); standard Q + K (2N_nN_dN_k), V (N_nN_dN_k)
 * and the output projection (N_d·N_nN_k); the metric form's shared projection P (N_nN_dN_k) and
 * packed metrics M (N_n·N_k(N_k+1)/2).
 */
export function attentionParamFormulas(Nd: number, Nn: number, Nk: number): {
  quadratic: number;
  queryKey: number;
  value: number;
  output: number;
  metricP: number;
  metricM: number;
  standardBlock: number;
  metricBlock: number;
} {
  const queryKey = 2 * Nn * Nd * Nk;
  const value = Nn * Nd * Nk;
  const output = Nd * Nn * Nk;
  const metricP = Nn * Nd * Nk;
  const metricM = (Nn * Nk * (Nk + 1)) / 2;
  return {
    quadratic: Nn * Nd * Nd,
    queryKey,
    value,
    output,
    metricP,
    metricM,
    standardBlock: queryKey + value + output,
    metricBlock: metricP + metricM + output,
  };
}
