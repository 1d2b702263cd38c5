// The optimizer's ops: AdamW and SumOfSquares (the squared gradient norm, for clipping). Their
// ONNX function definitions are in onnx/custom/optim.ts.

#include <cstddef>
#include <cstdint>
#include <string>

#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// ---------------------------------------------------------------------------------------------
// AdamW(P, M, V, G, Mask, ClipScale, LrWd, StepSize, Bc2Sqrt, Beta1, OneMinusBeta1, Beta2,
// OneMinusBeta2, Eps) -> (P1, M1, V1) on flat vectors [N], the rest scalars; per element, each
// step one float32 operation in the order of the ONNX definition (onnx/custom/optim.ts):
//   g = G·ClipScale; M1 = M·β1 + g·(1 − β1); V1 = V·β2 + (g·g)·(1 − β2);
//   P1 = P·(1 − Mask·LrWd) − (M1 / (√V1 / Bc2Sqrt + ε))·StepSize.
// IEEE operations are correctly rounded, so this gives ORT's bits for the definition (tested).

enum AdamWScalar { kClip, kLrWd, kStepSize, kBc2Sqrt, kBeta1, kOmb1, kBeta2, kOmb2, kEps };
constexpr int kAdamWScalars = 9;

struct AdamWJob {
  Blocks blocks;  // elements
  const float* p = nullptr;
  const float* m = nullptr;
  const float* v = nullptr;
  const float* g = nullptr;
  const float* mask = nullptr;
  float k[kAdamWScalars] = {};
  float* p1 = nullptr;
  float* m1 = nullptr;
  float* v1 = nullptr;
};

template <typename V>
CB_INLINE V AdamWLanes(const AdamWJob& j, const V& p, const V& m, const V& v, const V& g0,
                       const V& mask, V* m1, V* v1) {
  const V g = g0 * Splat<V>(j.k[kClip]);
  *m1 = m * Splat<V>(j.k[kBeta1]) + g * Splat<V>(j.k[kOmb1]);
  *v1 = v * Splat<V>(j.k[kBeta2]) + (g * g) * Splat<V>(j.k[kOmb2]);
  const V keep = Splat<V>(1.0f) - mask * Splat<V>(j.k[kLrWd]);
  const V denom = Sqrt(*v1) / Splat<V>(j.k[kBc2Sqrt]) + Splat<V>(j.k[kEps]);
  return p * keep - (*m1 / denom) * Splat<V>(j.k[kStepSize]);
}

template <typename V>
CB_INLINE void AdamWRange(const AdamWJob& j, int64_t i0, int64_t i1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t i = i0;
  V m1, v1;
  for (; i + W <= i1; i += W) {
    const V p1 = AdamWLanes<V>(j, Load<V>(j.p + i), Load<V>(j.m + i), Load<V>(j.v + i),
                               Load<V>(j.g + i), Load<V>(j.mask + i), &m1, &v1);
    Store(j.p1 + i, p1);
    Store(j.m1 + i, m1);
    Store(j.v1 + i, v1);
  }
  if (i < i1) {  // the tail through the same lane code; padding lanes are computed and dropped
    const int64_t n = i1 - i;
    const V p1 = AdamWLanes<V>(j, LoadTail<V>(j.p + i, n, 0.0f), LoadTail<V>(j.m + i, n, 0.0f),
                               LoadTail<V>(j.v + i, n, 0.0f), LoadTail<V>(j.g + i, n, 0.0f),
                               LoadTail<V>(j.mask + i, n, 0.0f), &m1, &v1);
    StoreTail(j.p1 + i, n, p1);
    StoreTail(j.m1 + i, n, m1);
    StoreTail(j.v1 + i, n, v1);
  }
}

CB_RANGE_AT_EVERY_WIDTH(AdamWRange, AdamWJob, AdamWRange)

OrtStatus* ComputeAdamW(OrtKernelContext* ctx, Simd simd) {
  static const char* const kVectorNames[] = {"P", "M", "V", "G", "Mask"};
  static const char* const kScalarNames[] = {"ClipScale", "LrWd", "StepSize",
                                             "Bc2Sqrt", "Beta1", "OneMinusBeta1",
                                             "Beta2", "OneMinusBeta2", "Eps"};
  AdamWJob job;
  const float** vectors[] = {&job.p, &job.m, &job.v, &job.g, &job.mask};
  Shape ps;
  for (size_t i = 0; i < 5; ++i) {
    Shape s;
    CB_RETURN_IF_ERROR(GetInputData(ctx, i, kVectorNames[i], &s, vectors[i]));
    if (s.rank != 1 || (i > 0 && s.dims[0] != ps.dims[0])) {
      return Error(std::string("Cannot run AdamW as ") + kVectorNames[i] +
                   " must be a vector as long as P: current shape is " + ShapeString(s));
    }
    if (i == 0) ps = s;
  }
  for (size_t i = 0; i < kAdamWScalars; ++i) {
    Shape s;
    const float* value = nullptr;
    CB_RETURN_IF_ERROR(GetInputData(ctx, 5 + i, kScalarNames[i], &s, &value));
    int64_t count = 1;
    for (size_t d = 0; d < s.rank; ++d) count *= s.dims[d];
    if (count != 1) {
      return Error(std::string("Cannot run AdamW as ") + kScalarNames[i] +
                   " must hold one value: current shape is " + ShapeString(s));
    }
    job.k[i] = *value;
  }
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, ps, &job.p1));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, ps, &job.m1));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 2, ps, &job.v1));
  job.blocks = {ps.dims[0], kBlockElems, simd};
  return RunBlocks<AdamWJob, AdamWRangeSse2, AdamWRangeAvx2, AdamWRangeAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// SumOfSquares(G [N]) -> S []: Σ g² (float products, as Mul rounds them, summed in double by
// position mod 4 as Accumulate sums), rounded to float once. One pass on one thread: the
// train step's ~1e5 gradients take a few tens of µs, less than the pool's hand-off would save.

struct SquaresJob {
  Blocks blocks;  // one block: the whole vector
  const float* g = nullptr;
  double* sum = nullptr;
};

template <typename V>
CB_INLINE void SquaresRange(const SquaresJob& job, int64_t i0, int64_t i1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  D4 acc = {};
  int64_t j = i0;
  for (; j + W <= i1; j += W) {
    const V v = Load<V>(job.g + j);
    Accumulate(acc, v * v);
  }
  if (j < i1) {
    const V v = LoadTail<V>(job.g + j, i1 - j, 0.0f);
    Accumulate(acc, v * v);
  }
  *job.sum = SumLanes(acc);
}

CB_RANGE_AT_EVERY_WIDTH(SquaresRange, SquaresJob, SquaresRange)

OrtStatus* ComputeSumOfSquares(OrtKernelContext* ctx, Simd simd) {
  Shape gs;
  SquaresJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "G", &gs, &job.g));
  if (gs.rank != 1) {
    return Error("Cannot run SumOfSquares as G must be a vector: current shape is " +
                 ShapeString(gs));
  }
  float* s = nullptr;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, Shape{}, &s));
  double sum = 0.0;
  job.sum = &sum;
  job.blocks = {gs.dims[0], gs.dims[0] > 0 ? gs.dims[0] : 1, simd};
  CB_RETURN_IF_ERROR(
      (RunBlocks<SquaresJob, SquaresRangeSse2, SquaresRangeAvx2, SquaresRangeAvx512>(ctx, &job)));
  *s = static_cast<float>(sum);
  return nullptr;
}

}  // namespace

CB_REGISTER_OP("AdamW", 14, 3, 0, ComputeAdamW);
CB_REGISTER_OP("SumOfSquares", 1, 1, 0, ComputeSumOfSquares);

}  // namespace cb
