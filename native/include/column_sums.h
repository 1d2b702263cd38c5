// The column-sum pass of two op families: ColumnSums (kernels/linear.cc) and BiasGeluGrad
// (kernels/gelu.cc), whose bias gradient must have ColumnSums' bits.
//
// y_c = Σ_r x_rc in float32, row after row, as ONNX Runtime's ReduceSum over axis 0 adds them
// (the tests compare the bits). A task sums a block of columns; within it, kColumnVectors
// vectors of columns advance row by row as independent add chains. With a factor s
// (BiasGeluGrad), each element is first multiplied (float32, as Mul) and stored, then summed.

#pragma once

#include <cstdint>

#include "simd.h"

namespace cb {
// Internal linkage: each including file gets its own copy of these few functions, which hold no
// state, so no per-width entry point is shared between files.
namespace {

constexpr int64_t kColumnVectors = 4;

struct ColumnJob {
  Blocks blocks;  // columns
  int64_t rows = 0;
  const float* x = nullptr;
  const float* s = nullptr;  // BiasGeluGrad: the factor of each element; else null
  float* prod = nullptr;     // BiasGeluGrad: x·s, [R, C]
  float* y = nullptr;
};

// Row r's columns [c, c + W) of x, or of x·s (then stored into prod).
template <typename V, bool kProduct>
CB_INLINE V ColumnTerm(const ColumnJob& job, int64_t at) {
  if constexpr (!kProduct) {
    return Load<V>(job.x + at);
  } else {
    const V v = Load<V>(job.x + at) * Load<V>(job.s + at);
    Store(job.prod + at, v);
    return v;
  }
}

template <typename V, bool kProduct>
CB_INLINE void ColumnBlockOf(const ColumnJob& job, int64_t c0, int64_t c1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t R = job.rows, C = job.blocks.count;
  int64_t c = c0;
  for (; c + kColumnVectors * W <= c1; c += kColumnVectors * W) {
    V acc[kColumnVectors];
    for (int u = 0; u < kColumnVectors; ++u) acc[u] = Splat<V>(0.0f);
    for (int64_t r = 0; r < R; ++r) {
      #pragma GCC unroll 4
      for (int u = 0; u < kColumnVectors; ++u) {
        acc[u] = acc[u] + ColumnTerm<V, kProduct>(job, r * C + c + u * W);
      }
    }
    for (int u = 0; u < kColumnVectors; ++u) Store(job.y + c + u * W, acc[u]);
  }
  for (; c + W <= c1; c += W) {
    V acc = Splat<V>(0.0f);
    for (int64_t r = 0; r < R; ++r) acc = acc + ColumnTerm<V, kProduct>(job, r * C + c);
    Store(job.y + c, acc);
  }
  for (; c < c1; ++c) {
    float acc = 0.0f;
    for (int64_t r = 0; r < R; ++r) {
      float v = job.x[r * C + c];
      if constexpr (kProduct) {
        v = v * job.s[r * C + c];
        job.prod[r * C + c] = v;
      }
      acc = acc + v;
    }
    job.y[c] = acc;
  }
}

template <typename V>
CB_INLINE void ColumnBlock(const ColumnJob& job, int64_t c0, int64_t c1) {
  if (job.s != nullptr) return ColumnBlockOf<V, true>(job, c0, c1);
  ColumnBlockOf<V, false>(job, c0, c1);
}

CB_RANGE_AT_EVERY_WIDTH(ColumnBlock, ColumnJob, ColumnBlock)

}  // namespace
}  // namespace cb
