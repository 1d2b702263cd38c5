// The arithmetic that BiasAttention (kernels/attention.cc) and MetricAttention
// (kernels/metric_attention.cc) share: scores of a query row against keys, the masked softmax and
// its gradient, sums of weighted rows, and the same steps for a causal block of W query rows, one
// row per lane. Both ops promise the same bits at every SIMD width and thread count, which holds
// only while each step's float operations stay in one order; one copy here keeps the two ops'
// steps from drifting apart. "dims" is a head's size (attention.cc's hs, metric_attention.cc's K
// or its padded kp). The order of each step is set out in attention.cc's opening comment.

#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "simd.h"

namespace cb {
// Internal linkage, as in column_sums.h: each including file gets its own copy, so no per-width
// function is shared between files compiled for different targets.
namespace {

// Key j of a query row is skipped where its bias is below this (the masks use −1e9): its weight
// exp(s − max) underflows to exactly 0 in float32, so skipping it changes no bit.
constexpr float kMaskedBias = -1e8f;

// out[d] = Σ_{r = r0..r1} w[r·ws] · rows[r·rs + d] for d in [d0, d0 + NV·W), in registers: two
// partial sums per lane, over rows r0, r0 + 2, … and r0 + 1, r0 + 3, … (two chains hide the add
// latency), added at the end.
template <typename V, int NV, bool Scaled>
CB_INLINE void WeightedRowsAt(const float* w, int64_t ws, const float* rows, int64_t rs,
                              int64_t r0, int64_t r1, int64_t d0, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  V even[NV], odd[NV];
#pragma GCC unroll 4
  for (int u = 0; u < NV; ++u) even[u] = odd[u] = Splat<V>(0.0f);
  int64_t r = r0;
  for (; r + 1 <= r1; r += 2) {
    const V we = Splat<V>(w[r * ws]);
    const V wo = Splat<V>(w[(r + 1) * ws]);
    const float* re = rows + r * rs + d0;
    const float* ro = re + rs;
  #pragma GCC unroll 4
    for (int u = 0; u < NV; ++u) {
      even[u] = even[u] + Load<V>(re + u * W) * we;
      odd[u] = odd[u] + Load<V>(ro + u * W) * wo;
    }
  }
  if (r == r1) {
    const V we = Splat<V>(w[r * ws]);
  #pragma GCC unroll 4
    for (int u = 0; u < NV; ++u) even[u] = even[u] + Load<V>(rows + r * rs + d0 + u * W) * we;
  }
#pragma GCC unroll 4
  for (int u = 0; u < NV; ++u) {
    const V sum = even[u] + odd[u];
    Store(out + d0 + u * W, Scaled ? sum * Splat<V>(scale) : sum);
  }
}

// out[0, dims) = Σ_{r = r0..r1} w[r·ws] · rows[r·rs + ·] (0 when r0 > r1), as WeightedRowsAt;
// then times scale where Scaled (in registers: the same product as scaling the stored sum).
template <typename V, bool Scaled>
CB_INLINE void WeightedRows(const float* w, int64_t ws, const float* rows, int64_t rs,
                            int64_t dims, int64_t r0, int64_t r1, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t d0 = 0;
  while (d0 + W <= dims) {
    const int64_t nv = (dims - d0) / W < 4 ? (dims - d0) / W : 4;
    if (nv == 4) WeightedRowsAt<V, 4, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    else if (nv == 3) WeightedRowsAt<V, 3, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    else if (nv == 2) WeightedRowsAt<V, 2, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    else WeightedRowsAt<V, 1, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    d0 += nv * W;
  }
  // Dims left over from wide vectors (heads of 6 dims, say), 4 at a time.
  for (; W > 4 && d0 + 4 <= dims; d0 += 4) {
    WeightedRowsAt<V4, 1, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
  }
  for (; d0 < dims; ++d0) {  // the same partial sums, one lane
    float even = 0.0f, odd = 0.0f;
    for (int64_t r = r0; r <= r1; ++r) {
      if ((r - r0) % 2 == 0) even = even + rows[r * rs + d0] * w[r * ws];
      else odd = odd + rows[r * rs + d0] * w[r * ws];
    }
    out[d0] = Scaled ? (even + odd) * scale : even + odd;
  }
}

// s[j] = Σ_d a[d] · bt[d·ld + j] for NC groups of W keys from j: two partial sums per lane, over
// the even and the odd d (independent chains), added at the end.
template <typename V, int NC>
CB_INLINE void DotGroups(const float* a, const float* bt, int64_t ld, int64_t dims, int64_t j,
                         float* s) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  V even[NC], odd[NC];
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  int64_t d = 0;
  for (; d + 1 < dims; d += 2) {
    const V ae = Splat<V>(a[d]);
    const V ao = Splat<V>(a[d + 1]);
    const float* be = bt + d * ld + j;
    const float* bo = be + ld;
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      even[c] = even[c] + Load<V>(be + c * W) * ae;
      odd[c] = odd[c] + Load<V>(bo + c * W) * ao;
    }
  }
  if (d < dims) {
    const V ae = Splat<V>(a[d]);
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) even[c] = even[c] + Load<V>(bt + d * ld + j + c * W) * ae;
  }
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) Store(s + j + c * W, even[c] + odd[c]);
}

// As DotGroups over [lo, hi]. bt's rows are padded so that the last group may read, and s be
// written, up to W − 1 entries past hi.
template <typename V>
CB_INLINE void RowDots(const float* a, const float* bt, int64_t ld, int64_t dims, int64_t lo,
                       int64_t hi, float* s) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t j = lo;
  for (; j + 4 * W <= hi + 1; j += 4 * W) DotGroups<V, 4>(a, bt, ld, dims, j, s);
  const int64_t left = (hi + 1 - j + W - 1) / W;  // groups still to do, 0..4
  if (left == 4) DotGroups<V, 4>(a, bt, ld, dims, j, s);
  else if (left == 3) DotGroups<V, 3>(a, bt, ld, dims, j, s);
  else if (left == 2) DotGroups<V, 2>(a, bt, ld, dims, j, s);
  else if (left == 1) DotGroups<V, 1>(a, bt, ld, dims, j, s);
}

// p[lo, hi] = softmax(p + bias) over [lo, hi], in place: the scores plus the bias row, their
// maximum, e = exp(· − max), z = Σ e in double by position mod 4, p = e · float(1/z). Whole
// groups of W run past hi into the row's padding, which is scratch. bias may be read up to
// bias[bias_end − 1].
template <typename V>
CB_INLINE void SoftmaxRow(float* p, const float* bias, int64_t bias_end, int64_t lo, int64_t hi) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const float inf = HUGE_VALF;
  V mv = Splat<V>(-inf);
  int64_t j = lo;
  for (; j + W <= hi + 1; j += W) {
    const V z = Load<V>(p + j) + Load<V>(bias + j);
    Store(p + j, z);
    mv = z > mv ? z : mv;
  }
  if (j <= hi) {  // p's row is padded; the bias row is read past hi only within the tensor
    const V b = j + W <= bias_end ? Load<V>(bias + j) : LoadTail<V>(bias + j, bias_end - j, 0.0f);
    const V z = Keep(Load<V>(p + j) + b, hi + 1 - j, -inf);
    Store(p + j, z);
    mv = z > mv ? z : mv;
  }
  const float m = MaxLane(mv);
  D4 acc = {};
  for (j = lo; j <= hi; j += W) {  // the tail's padding holds −inf: exp gives 0
    const V e = Exp(Load<V>(p + j) - m);
    Store(p + j, e);
    Accumulate(acc, e);
  }
  const V inv = Splat<V>(static_cast<float>(1.0 / SumLanes(acc)));
  for (j = lo; j <= hi; j += W) Store(p + j, Load<V>(p + j) * inv);
}

// ds[lo, hi] = p·(ds − c), c = float(Σ_j p_j·ds_j) in double by position mod 4: the softmax's
// gradient, in place over dp = ds. The group past hi is summed with its lanes kept at 0, as the
// row's padding may hold anything.
template <typename V>
CB_INLINE void SoftmaxGradRow(const float* p, float* ds, int64_t lo, int64_t hi) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  D4 acc = {};
  int64_t j = lo;
  for (; j + W <= hi + 1; j += W) Accumulate(acc, Load<V>(p + j) * Load<V>(ds + j));
  if (j <= hi) Accumulate(acc, Keep(Load<V>(p + j) * Load<V>(ds + j), hi + 1 - j, 0.0f));
  const float c = static_cast<float>(SumLanes(acc));
  for (j = lo; j <= hi; j += W) Store(ds + j, Load<V>(p + j) * (Load<V>(ds + j) - c));
}

// float((a0 + a1) + (a2 + a3)) per lane, as SumLanes.
template <typename V>
CB_INLINE V SumToFloat(const typename Doubles<V>::Type* acc) {
  return __builtin_convertvector((acc[0] + acc[1]) + (acc[2] + acc[3]), V);
}

// float(1 / ((a0 + a1) + (a2 + a3))) per lane, as the softmax's 1/z.
template <typename V>
CB_INLINE V InverseSum(const typename Doubles<V>::Type* acc) {
  return __builtin_convertvector(1.0 / ((acc[0] + acc[1]) + (acc[2] + acc[3])), V);
}

// Transposes the W × W block in a[0..W) in place (W = lanes of V): log2(W) rounds of exchanging
// halves, quarters, … between rows, two shuffles per pair of rows.
template <typename V>
CB_INLINE void TransposeBlock(V* a) {
  constexpr int W = sizeof(V) / sizeof(float);
  using VI = decltype(V{} < V{});
#pragma GCC unroll 4
  for (int b = W / 2; b >= 1; b /= 2) {
    VI lo, hi;
    for (int pos = 0; pos < W; ++pos) {
      lo[pos] = (pos & b) == 0 ? pos : W + pos - b;
      hi[pos] = (pos & b) == 0 ? pos + b : W + pos;
    }
#pragma GCC unroll 16
    for (int i = 0; i < W; ++i) {
      if ((i & b) != 0) continue;
      const V x = a[i], y = a[i + b];
      a[i] = __builtin_shuffle(x, y, lo);
      a[i + b] = __builtin_shuffle(x, y, hi);
    }
  }
}

// dst[d·tp + r] = src[r·rs + d]·scale (× scale only where Scaled) for r < rows, d < dims; zeros
// for r in [rows, tp) (tp a multiple of W).
template <typename V, bool Scaled>
CB_INLINE void TransposeRows(const float* src, int64_t rs, int64_t rows, int64_t dims, float scale,
                             float* dst, int64_t tp) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t r0 = 0; r0 < tp; r0 += W) {
    for (int64_t d0 = 0; d0 < dims; d0 += W) {
      const int64_t nd = std::min(W, dims - d0);
      V a[W];
#pragma GCC unroll 16
      for (int64_t r = 0; r < W; ++r) {
        const float* row = src + (r0 + r) * rs + d0;
        a[r] = r0 + r >= rows ? Splat<V>(0.0f) : nd == W ? Load<V>(row) : LoadTail<V>(row, nd, 0.0f);
        if (Scaled) a[r] = a[r] * Splat<V>(scale);
      }
      TransposeBlock(a);
      for (int64_t d = 0; d < nd; ++d) Store(dst + (d0 + d) * tp + r0, a[d]);
    }
  }
}

// out[r·os + d] = tile[d·W + r] for r < rows (≤ W), d < dims.
template <typename V>
CB_INLINE void StoreTransposed(const float* tile, int64_t dims, int64_t rows, float* out,
                               int64_t os) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t d0 = 0; d0 < dims; d0 += W) {
    const int64_t nd = std::min(W, dims - d0);
    V a[W];
#pragma GCC unroll 16
    for (int64_t d = 0; d < W; ++d) a[d] = d < nd ? Load<V>(tile + (d0 + d) * W) : Splat<V>(0.0f);
    TransposeBlock(a);
    for (int64_t r = 0; r < rows; ++r) {
      if (nd == W) Store(out + r * os + d0, a[r]);
      else StoreTail(out + r * os + d0, nd, a[r]);
    }
  }
}

// out[d·os + r] = Σ_{j ≤ i0 + r, j < nk} pt[j·ps + r] · rows[j·rs + d], times scale where
// Scaled, for d in [d0, d0 + DC): two chains by key parity, as WeightedRowsAt. Lanes whose row
// ends before key j skip it; with i0 ≥ nk − 1 no lane skips any, and this is WeightedRows with
// one row of weights per lane.
template <typename V, int DC, bool Scaled>
CB_INLINE void BlockCombineDims(const float* pt, int64_t ps, const float* rows, int64_t rs,
                                int64_t d0, int64_t i0, int64_t nk, float scale, float* out,
                                int64_t os) {
  const auto lane = LaneIndex<V>();
  V even[DC], odd[DC];
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  const int64_t full = std::min(nk, i0 + 1);  // keys every lane's row reaches
  int64_t j = 0;
  for (; j + 1 < full; j += 2) {
    const V pe = Load<V>(pt + j * ps);
    const V po = Load<V>(pt + (j + 1) * ps);
    const float* re = rows + j * rs + d0;
    const float* ro = re + rs;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) {
      even[c] = even[c] + Splat<V>(re[c]) * pe;
      odd[c] = odd[c] + Splat<V>(ro[c]) * po;
    }
  }
  for (; j < nk; ++j) {
    const V pj = Load<V>(pt + j * ps);
    const float* rj = rows + j * rs + d0;
    const auto keep = lane >= static_cast<int>(j - i0);
    if (j % 2 == 0) {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) even[c] = keep ? even[c] + Splat<V>(rj[c]) * pj : even[c];
    } else {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) odd[c] = keep ? odd[c] + Splat<V>(rj[c]) * pj : odd[c];
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) {
    const V sum = even[c] + odd[c];
    Store(out + (d0 + c) * os, Scaled ? sum * Splat<V>(scale) : sum);
  }
}

// As BlockCombineDims for every d < dims.
template <typename V, bool Scaled>
CB_INLINE void BlockCombine(const float* pt, int64_t ps, const float* rows, int64_t rs,
                            int64_t dims, int64_t i0, int64_t nk, float scale, float* out,
                            int64_t os) {
  int64_t d0 = 0;
  for (; d0 + 4 <= dims; d0 += 4) {
    BlockCombineDims<V, 4, Scaled>(pt, ps, rows, rs, d0, i0, nk, scale, out, os);
  }
  for (; d0 < dims; ++d0) {
    BlockCombineDims<V, 1, Scaled>(pt, ps, rows, rs, d0, i0, nk, scale, out, os);
  }
}

// out[d·W + l] = Σ_{i = j0 + l .. T − 1} wt[i·ld + j0 + l] · rows[i·rs + d] (× scale where
// Scaled): dK's or dV's rows of keys j0 .. j0 + W − 1, one key per lane, from weights kept rows ×
// keys. WeightedRows sums a key's rows in two chains, from its first row by parity; here A takes
// the rows at even distance from j0 and B the others, so for an even lane A is that chain and B
// the other, for an odd lane the reverse, and A + B = B + A is WeightedRows' sum. Lanes skip rows
// before their key.
template <typename V, int DC, bool Scaled>
CB_INLINE void KeyBlockCombineDims(const float* wt, int64_t ld, const float* rows, int64_t rs,
                                   int64_t d0, int64_t j0, int64_t T, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const auto lane = LaneIndex<V>();
  V a[DC], b[DC];
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) a[c] = b[c] = Splat<V>(0.0f);
  int64_t i = j0;
  for (; i < T && i < j0 + W - 1; ++i) {  // rows that only some lanes' keys reach
    const V wi = Load<V>(wt + i * ld + j0);
    const float* ri = rows + i * rs + d0;
    const auto keep = lane <= static_cast<int>(i - j0);
    if ((i - j0) % 2 == 0) {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) a[c] = keep ? a[c] + Splat<V>(ri[c]) * wi : a[c];
    } else {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) b[c] = keep ? b[c] + Splat<V>(ri[c]) * wi : b[c];
    }
  }
  if ((i - j0) % 2 == 1 && i < T) {  // pairs below start with an A row
    const V wi = Load<V>(wt + i * ld + j0);
    const float* ri = rows + i * rs + d0;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) b[c] = b[c] + Splat<V>(ri[c]) * wi;
    ++i;
  }
  for (; i + 1 < T; i += 2) {
    const V we = Load<V>(wt + i * ld + j0);
    const V wo = Load<V>(wt + (i + 1) * ld + j0);
    const float* re = rows + i * rs + d0;
    const float* ro = re + rs;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) {
      a[c] = a[c] + Splat<V>(re[c]) * we;
      b[c] = b[c] + Splat<V>(ro[c]) * wo;
    }
  }
  if (i < T) {
    const V wi = Load<V>(wt + i * ld + j0);
    const float* ri = rows + i * rs + d0;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) a[c] = a[c] + Splat<V>(ri[c]) * wi;
  }
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) {
    const V sum = a[c] + b[c];
    Store(out + (d0 + c) * W, Scaled ? sum * Splat<V>(scale) : sum);
  }
}

template <typename V, bool Scaled>
CB_INLINE void KeyBlockCombine(const float* wt, int64_t ld, const float* rows, int64_t rs,
                               int64_t dims, int64_t j0, int64_t T, float scale, float* out) {
  int64_t d0 = 0;
  for (; d0 + 8 <= dims; d0 += 8) {
    KeyBlockCombineDims<V, 8, Scaled>(wt, ld, rows, rs, d0, j0, T, scale, out);
  }
  for (; d0 + 4 <= dims; d0 += 4) {
    KeyBlockCombineDims<V, 4, Scaled>(wt, ld, rows, rs, d0, j0, T, scale, out);
  }
  for (; d0 < dims; ++d0) {
    KeyBlockCombineDims<V, 1, Scaled>(wt, ld, rows, rs, d0, j0, T, scale, out);
  }
}

// A block's tile [nk, W] (keys × rows i0..) into rows × keys: m[(i0 + r)·ld + j] for r < rows.
template <typename V>
CB_INLINE void TileToRows(const float* tile, int64_t nk, int64_t i0, int64_t rows, float* m,
                          int64_t ld) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t j0 = 0; j0 < nk; j0 += W) {
    V a[W];
#pragma GCC unroll 16
    for (int64_t c = 0; c < W; ++c) {
      a[c] = j0 + c < nk ? Load<V>(tile + (j0 + c) * W) : Splat<V>(0.0f);
    }
    TransposeBlock(a);
    for (int64_t r = 0; r < rows; ++r) Store(m + (i0 + r) * ld + j0, a[r]);
  }
}

// s lane r = Σ_d a[d·lda + r] · rows[j·rs + d] over even and odd d, as DotGroups.
template <typename V>
CB_INLINE V BlockDot(const float* a, int64_t lda, const float* row, int64_t dims) {
  V even = Splat<V>(0.0f), odd = Splat<V>(0.0f);
  int64_t d = 0;
  for (; d + 1 < dims; d += 2) {
    even = even + Splat<V>(row[d]) * Load<V>(a + d * lda);
    odd = odd + Splat<V>(row[d + 1]) * Load<V>(a + (d + 1) * lda);
  }
  if (d < dims) even = even + Splat<V>(row[d]) * Load<V>(a + d * lda);
  return even + odd;
}

// As BlockDot with kDims dims whose a-vectors are in registers (qv[d] = a[d·lda ..]).
template <typename V, int kDims>
CB_INLINE V BlockDotRegs(const V* qv, const float* row) {
  V even = Splat<V>(0.0f), odd = Splat<V>(0.0f);
#pragma GCC unroll 32
  for (int d = 0; d + 1 < kDims; d += 2) {
    even = even + Splat<V>(row[d]) * qv[d];
    odd = odd + Splat<V>(row[d + 1]) * qv[d + 1];
  }
  if (kDims % 2 == 1) even = even + Splat<V>(row[kDims - 1]) * qv[kDims - 1];
  return even + odd;
}

// A causal block's weights: pt[j·W + r] = softmax_j(q_{i0 + r} · key_j + bias_t[j·tp + i0 + r])
// for keys j < nk, one query row per lane, the queries transposed (qt[d·qld + r] is row i0 + r's
// d-th entry) and the keys as rows (keys[j·ks + d]). Lanes whose row ends before key j hold 0
// there: its score is set to −inf, as past the end of SoftmaxRow's row. Per lane these are
// SoftmaxRow's operations on RowDots' scores, so a causal block and one row at a time agree to
// the bit. kDims: dims where known at compile time (the query vectors then stay in registers),
// else 0.
template <typename V, int kDims>
CB_INLINE void CausalBlockWeights(const float* qt, int64_t qld, const float* keys, int64_t ks,
                                  int64_t dims, const float* bias_t, int64_t tp, int64_t i0,
                                  int64_t nk, float* pt) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  typedef typename Doubles<V>::Type DV;
  const auto lane = LaneIndex<V>();
  const float inf = HUGE_VALF;
  V m = Splat<V>(-inf);
  V qv[kDims > 0 ? kDims : 1];
#pragma GCC unroll 32
  for (int d = 0; d < kDims; ++d) qv[d] = Load<V>(qt + d * qld);
  for (int64_t j = 0; j < nk; ++j) {
    const V s = kDims > 0 ? BlockDotRegs<V, kDims>(qv, keys + j * ks)
                          : BlockDot<V>(qt, qld, keys + j * ks, dims);
    V z = s + Load<V>(bias_t + j * tp + i0);
    if (j > i0) z = lane >= static_cast<int>(j - i0) ? z : Splat<V>(-inf);
    Store(pt + j * W, z);
    m = z > m ? z : m;
  }
  DV acc[4] = {};
  for (int64_t j = 0; j < nk; ++j) {
    const V e = Exp(Load<V>(pt + j * W) - m);
    Store(pt + j * W, e);
    acc[j % 4] += __builtin_convertvector(e, DV);
  }
  const V inv = InverseSum<V>(acc);
  for (int64_t j = 0; j < nk; ++j) Store(pt + j * W, Load<V>(pt + j * W) * inv);
}

// A causal block's softmax gradient, as SoftmaxGradRow per lane: st[j·W + r] = p·(dp − c) with
// dp = dy_{i0 + r} · value_j (dyt transposed as CausalBlockWeights' qt, values as rows) and
// pt CausalBlockWeights' weights; keys past a lane's row add 0 to c.
template <typename V, int kDims>
CB_INLINE void CausalBlockGrads(const float* dyt, int64_t dld, const float* values, int64_t vs,
                                int64_t dims, int64_t i0, int64_t nk, const float* pt,
                                float* st) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  typedef typename Doubles<V>::Type DV;
  const auto lane = LaneIndex<V>();
  V dv[kDims > 0 ? kDims : 1];
#pragma GCC unroll 32
  for (int d = 0; d < kDims; ++d) dv[d] = Load<V>(dyt + d * dld);
  DV acc[4] = {};
  for (int64_t j = 0; j < nk; ++j) {
    const V dp = kDims > 0 ? BlockDotRegs<V, kDims>(dv, values + j * vs)
                           : BlockDot<V>(dyt, dld, values + j * vs, dims);
    Store(st + j * W, dp);
    V pd = Load<V>(pt + j * W) * dp;
    if (j > i0) pd = lane >= static_cast<int>(j - i0) ? pd : Splat<V>(0.0f);
    acc[j % 4] += __builtin_convertvector(pd, DV);
  }
  const V c = SumToFloat<V>(acc);
  for (int64_t j = 0; j < nk; ++j) {
    Store(st + j * W, Load<V>(pt + j * W) * (Load<V>(st + j * W) - c));
  }
}

// The calling thread's scratch of at least count floats, 64-byte aligned (rows of a multiple of
// 16 floats start on a cache line), kept between calls: ORT's pool threads live as long as the
// session. Each including file has its own.
inline float* ThreadScratch(size_t count) {
  struct Buffer {
    float* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  if (count > buffer.size) {
    std::free(buffer.data);
    buffer.data = static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
    if (buffer.data == nullptr) std::abort();
    buffer.size = count;
  }
  return buffer.data;
}

// The key range of every query row of each of H biases [T, T], and the query rows of every key.
// Ranges
// that do not grow with the row (both ends non-decreasing) would not make each key's rows one
// run: then every row computes every key (masked weights are exactly 0). `ranges` holds 4·H·T.
void KeyRanges(const float* bias, int64_t H, int64_t T, int32_t* ranges) {
  const int64_t rows = H * T;
  int32_t* lo = ranges;
  int32_t* hi = ranges + rows;
  int32_t* ilo = ranges + 2 * rows;
  int32_t* ihi = ranges + 3 * rows;
  bool monotone = true;
  for (int64_t r = 0; r < rows; ++r) {
    const float* b = bias + r * T;
    int64_t first = 0, last = T - 1;
    while (first < T && !(b[first] >= kMaskedBias)) ++first;
    while (last >= 0 && !(b[last] >= kMaskedBias)) --last;
    if (first > last) first = 0, last = T - 1;  // every key masked: compute the row in full
    lo[r] = static_cast<int32_t>(first);
    hi[r] = static_cast<int32_t>(last);
    if (r % T != 0 && (lo[r] < lo[r - 1] || hi[r] < hi[r - 1])) monotone = false;
  }
  if (!monotone) {
    for (int64_t r = 0; r < rows; ++r) lo[r] = 0, hi[r] = static_cast<int32_t>(T - 1);
  }
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t j = 0; j < T; ++j) {
      int32_t i0 = static_cast<int32_t>(T), i1 = -1;
      for (int64_t i = 0; i < T; ++i) {
        if (lo[h * T + i] <= j && j <= hi[h * T + i]) {
          if (i0 > i) i0 = static_cast<int32_t>(i);
          i1 = static_cast<int32_t>(i);
        }
      }
      ilo[h * T + j] = i0;
      ihi[h * T + j] = i1;
    }
  }
}

}  // namespace
}  // namespace cb
