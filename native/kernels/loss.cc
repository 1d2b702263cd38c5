// A language model's loss: MaskedCrossEntropy and its gradient MaskedCrossEntropyGrad (their
// ONNX function definitions are in onnx/custom/loss.ts).

#include <cstdint>
#include <string>
#include <vector>

#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// ---------------------------------------------------------------------------------------------
// Masked cross-entropy of a language model's logits:
//
//   MaskedCrossEntropy(Logits [..., V], Targets int32 [...], Mask [...]) -> Loss []
//   MaskedCrossEntropyGrad(dLoss [], Logits, Targets, Mask) -> dLogits [..., V]
//
// Per row r (a position): m = max_j x_j; e_j = exp(x_j − m) (Exp in simd.h, float32); z = Σ_j e_j
// (double, by class mod 4, as Accumulate sums by position); nll_r = log z − (x_t − m) in
// double (x_t − m as rounded for Exp), and 0 for a target outside [0, V), which matches no
// class in the ONNX definition either.
// Loss = float(Σ_r mask_r·nll_r / Σ_r mask_r), both sums in double in row order (each row's

struct CrossEntropyJob {
  Blocks blocks;  // rows
  int64_t n = 0;  // classes, V
  const float* x = nullptr;
  const int32_t* t = nullptr;
  const float* mask = nullptr;
  double* nll = nullptr;  // forward: mask_r·nll_r per row
  float* dx = nullptr;    // gradient
  float k = 0.0f;         // gradient: float(dLoss / Σ mask)
};

// Rows [r0, r1) W at a time, one row per lane (V = 30 classes would not fill a vector along the
// row, and a row's horizontal max and sums would cost more than its arithmetic): the rows are
// transposed into a [class, lane] tile, and each lane takes the arithmetic above in its order
// (the double sums by class mod 4, as Accumulate sums by position mod 4). Lanes past r1
// compute on zeros and are not stored.
template <typename V>
CB_INLINE void CrossEntropyRows(const CrossEntropyJob& job, int64_t r0, int64_t r1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  using DV = typename Doubles<V>::Type;
  using VI = decltype(Splat<V>(0.0f) < Splat<V>(0.0f));
  const int64_t n = job.n;
  std::vector<float> tile(static_cast<size_t>(n * W));  // [class][lane]
  for (int64_t b = r0; b < r1; b += W) {
    const int64_t live = r1 - b < W ? r1 - b : W;
    for (int64_t l = 0; l < W; ++l) {
      const float* x = job.x + (b + l) * n;
      for (int64_t j = 0; j < n; ++j) tile[j * W + l] = l < live ? x[j] : 0.0f;
    }
    VI t;
    V valid;  // 1 where the target is a class, else 0
    for (int64_t l = 0; l < W; ++l) {
      t[l] = l < live ? job.t[b + l] : -1;
      valid[l] = t[l] >= 0 && t[l] < n ? 1.0f : 0.0f;
    }
    V m = Splat<V>(-HUGE_VALF);
    for (int64_t j = 0; j < n; ++j) {
      const V x = Load<V>(&tile[j * W]);
      m = x > m ? x : m;
    }
    V xt = Splat<V>(0.0f);  // x_t − m per lane, as Exp's argument was rounded
    auto term = [&](int64_t j) {
      const V d = Load<V>(&tile[j * W]) - m;
      xt = t == static_cast<int32_t>(j) ? d : xt;
      const V e = Exp(d);
      Store(&tile[j * W], e);
      return __builtin_convertvector(e, DV);
    };
    DV acc[4] = {};  // by class mod 4; unrolled so that the four stay in registers
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      acc[0] += term(j);
      acc[1] += term(j + 1);
      acc[2] += term(j + 2);
      acc[3] += term(j + 3);
    }
    for (int64_t c = 0; j < n; ++j, ++c) acc[c] += term(j);
    const DV z = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    if (job.dx == nullptr) {
      const DV nll = LogAtLeastOne(z) - __builtin_convertvector(xt, DV);
      for (int64_t l = 0; l < live; ++l) {
        job.nll[b + l] = valid[l] != 0.0f ? static_cast<double>(job.mask[b + l]) * nll[l] : 0.0;
      }
      continue;
    }
    const V inv = __builtin_convertvector(1.0 / z, V);
    V kr;
    for (int64_t l = 0; l < W; ++l) kr[l] = l < live ? job.k * job.mask[b + l] : 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      const V hit = t == static_cast<int32_t>(j) ? Splat<V>(1.0f) : Splat<V>(0.0f);
      const V d = (Load<V>(&tile[j * W]) * inv - hit) * kr;
      Store(&tile[j * W], valid != 0.0f ? d : Splat<V>(0.0f));
    }
    for (int64_t l = 0; l < live; ++l) {
      float* dx = job.dx + (b + l) * n;
      for (int64_t j = 0; j < n; ++j) dx[j] = tile[j * W + l];
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(CrossEntropyRows, CrossEntropyJob, CrossEntropyRows)

// Reads Logits, Targets and Mask (inputs `first` to first + 2) into a job; checks the shapes.
OrtStatus* ReadCrossEntropyInputs(OrtKernelContext* ctx, size_t first, const char* name,
                                  Simd simd, CrossEntropyJob* job, Shape* xs) {
  Shape ts, ms;
  const float* targets = nullptr;
  CB_RETURN_IF_ERROR(GetInputData(ctx, first, "Logits", xs, &job->x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 1, "Targets", &ts, &targets));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 2, "Mask", &ms, &job->mask));
  bool ok = xs->rank >= 1 && ts.rank + 1 == xs->rank && ms.rank == ts.rank;
  for (size_t i = 0; ok && i < ts.rank; ++i) {
    ok = ts.dims[i] == xs->dims[i] && ms.dims[i] == xs->dims[i];
  }
  if (!ok) {
    return Error(std::string("Cannot run ") + name + " as Targets " + ShapeString(ts) +
                 " and Mask " + ShapeString(ms) + " must be Logits' " + ShapeString(*xs) +
                 " without its last axis");
  }
  job->t = reinterpret_cast<const int32_t*>(targets);
  job->n = xs->dims[xs->rank - 1];
  job->blocks = {LeadingRows(*xs), job->n == 0 ? 1 : RowsPerBlock(job->n), simd};
  return nullptr;
}

double MaskSum(const CrossEntropyJob& job) {
  double sum = 0.0;
  for (int64_t r = 0; r < job.blocks.count; ++r) sum += job.mask[r];
  return sum;
}

OrtStatus* ComputeCrossEntropy(OrtKernelContext* ctx, Simd simd) {
  CrossEntropyJob job;
  Shape xs;
  CB_RETURN_IF_ERROR(ReadCrossEntropyInputs(ctx, 0, "MaskedCrossEntropy", simd, &job, &xs));
  float* loss = nullptr;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, Shape{}, &loss));
  std::vector<double> terms(static_cast<size_t>(job.blocks.count));
  job.nll = terms.data();
  if (job.n > 0) {
    CB_RETURN_IF_ERROR((RunBlocks<CrossEntropyJob, CrossEntropyRowsSse2, CrossEntropyRowsAvx2,
                                  CrossEntropyRowsAvx512>(ctx, &job)));
  }
  double total = 0.0;
  for (double term : terms) total += term;
  *loss = static_cast<float>(total / MaskSum(job));
  return nullptr;
}

OrtStatus* ComputeCrossEntropyGrad(OrtKernelContext* ctx, Simd simd) {
  Shape ds;
  const float* dloss = nullptr;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dLoss", &ds, &dloss));
  if (ds.rank != 0) {
    return Error("Cannot run MaskedCrossEntropyGrad as dLoss must be a scalar: current shape is " +
                 ShapeString(ds));
  }
  CrossEntropyJob job;
  Shape xs;
  CB_RETURN_IF_ERROR(
      ReadCrossEntropyInputs(ctx, 1, "MaskedCrossEntropyGrad", simd, &job, &xs));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.dx));
  job.k = static_cast<float>(static_cast<double>(*dloss) / MaskSum(job));
  if (job.n == 0) return nullptr;
  return RunBlocks<CrossEntropyJob, CrossEntropyRowsSse2, CrossEntropyRowsAvx2,
                   CrossEntropyRowsAvx512>(ctx, &job);
}

}  // namespace

// Targets (input 1 of MaskedCrossEntropy, 2 of its gradient) are int32.
CB_REGISTER_OP("MaskedCrossEntropy", 3, 1, 0b010, ComputeCrossEntropy);
CB_REGISTER_OP("MaskedCrossEntropyGrad", 4, 1, 0b0100, ComputeCrossEntropyGrad);

}  // namespace cb
