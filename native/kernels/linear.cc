// Linear layers' helper ops: ColumnSums (a bias's gradient), MatMulTransA (a weight's gradient)
// and BiasResidual (a residual connection around a linear layer). Their ONNX function
// definitions are in onnx/custom/linear.ts.

#include <algorithm>
#include <cstdint>
#include <string>

#include "../include/column_sums.h"
#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// ---------------------------------------------------------------------------------------------
// ColumnSums(X [R, C]) -> Y [1, C]: each column's sum, with the same bits as ONNX Runtime's
// ReduceSum over axis 0 (the pass is in column_sums.h).

OrtStatus* ComputeColumnSums(OrtKernelContext* ctx, Simd simd) {
  Shape xs;
  ColumnJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  if (xs.rank != 2) {
    return Error("Cannot run ColumnSums as X must have rank 2: current shape is " +
                 ShapeString(xs));
  }
  job.rows = xs.dims[0];
  Shape ys = xs;
  ys.dims[0] = 1;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, ys, &job.y));
  // 64 columns a block: a whole number of vectors at every width, and 1–4 blocks for the
  // transformer's biases (64 to 256 columns).
  job.blocks = {xs.dims[1], 64, simd};
  return RunBlocks<ColumnJob, ColumnBlockSse2, ColumnBlockAvx2, ColumnBlockAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// BiasResidual(X [..., C], Y [..., C], B [C]) -> Z = X + (Y + B): a residual connection around a
// linear layer. Two float32 additions per element in the definition's order, so the bits are
// those of its two Adds.

struct BiasResidualJob {
  Blocks blocks;  // rows
  int64_t n = 0;  // C
  const float* x = nullptr;
  const float* y = nullptr;
  const float* b = nullptr;
  float* z = nullptr;
};

template <typename V>
CB_INLINE void BiasResidualRows(const BiasResidualJob& job, int64_t r0, int64_t r1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t n = job.n;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = job.x + r * n;
    const float* y = job.y + r * n;
    float* z = job.z + r * n;
    int64_t j = 0;
    for (; j + W <= n; j += W) {
      Store(z + j, Load<V>(x + j) + (Load<V>(y + j) + Load<V>(job.b + j)));
    }
    for (; j < n; ++j) z[j] = x[j] + (y[j] + job.b[j]);
  }
}

CB_RANGE_AT_EVERY_WIDTH(BiasResidualRows, BiasResidualJob, BiasResidualRows)

OrtStatus* ComputeBiasResidual(OrtKernelContext* ctx, Simd simd) {
  Shape xs, ys, bs;
  BiasResidualJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "Y", &ys, &job.y));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 2, "B", &bs, &job.b));
  bool ok = xs.rank >= 1 && ys.rank == xs.rank && bs.rank == 1 &&
            bs.dims[0] == xs.dims[xs.rank - 1];
  for (size_t i = 0; ok && i < xs.rank; ++i) ok = ys.dims[i] == xs.dims[i];
  if (!ok) {
    return Error("Cannot run BiasResidual as Y " + ShapeString(ys) + " must be X's shape " +
                 ShapeString(xs) + " and B " + ShapeString(bs) + " its last dimension");
  }
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.z));
  job.n = xs.dims[xs.rank - 1];
  if (job.n == 0) return nullptr;
  job.blocks = {LeadingRows(xs), RowsPerBlock(job.n), simd};
  return RunBlocks<BiasResidualJob, BiasResidualRowsSse2, BiasResidualRowsAvx2,
                   BiasResidualRowsAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// MatMulTransA(A [K, M], B [K, N]) -> C = Aᵀ·B [M, N]: a linear layer's weight gradient,
// xᵀ·dY summed over the batch's rows. C[m, n] = Σ_k A[k, m]·B[k, n], summed in k order from 0
// with one fused multiply-add per term (Fma in simd.h): the one claimbench kernel that uses
// FMA, as a GEMM without it runs at two thirds of the speed (77 against 115 GFLOP/s on one Zen 4
// core, in a harness). An FMA is correctly rounded wherever it runs (AVX2/AVX-512 FMA
// instructions, libm's fmaf on the SSE2 path), so each element's bits are still the same at
// every vector width, tile and thread count. ORT's FusedMatMul with transA copies Aᵀ into its
// packed layout first (in the train step its inputs are the forward pass's activations, long out
// of cache); here both operands are read in place: row k of A gives the broadcasts and row k of
// B the vectors of an outer product.
//
// C is cut into blocks of rows (a task each); a block runs over K in stretches of kTransAK rows,
// which stay in L2, and over its columns in tiles of MR rows × 2 vectors held in registers for a
// stretch. Columns go in vectors from 0, the last one starting at N − W when W does not divide N
// (its overlap with the previous vector is computed twice, with the same bits, in the same
// tile).

constexpr int64_t kTransAK = 256;

struct TransAJob {
  Blocks blocks;  // rows of C
  int64_t K = 0, M = 0, N = 0;
  const float* a = nullptr;  // [K, M]
  const float* b = nullptr;  // [K, N]
  float* c = nullptr;        // [M, N]
};

// Rows [m0, m0 + MR) × the NV vectors at `cols` of C over k in [k0, k1), continuing the sums
// in C (or from 0 when k0 = 0).
template <typename V, int MR, int NV>
CB_INLINE void TransATile(const TransAJob& job, int64_t m0, const int64_t* cols, int64_t k0,
                          int64_t k1) {
  V acc[MR][NV];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      acc[i][j] = k0 == 0 ? Splat<V>(0.0f) : Load<V>(job.c + (m0 + i) * job.N + cols[j]);
    }
  }
  const float* a = job.a + m0;
  for (int64_t k = k0; k < k1; ++k) {
    const float* ak = a + k * job.M;
    const float* bk = job.b + k * job.N;
    V bv[NV];
    #pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) bv[j] = Load<V>(bk + cols[j]);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V av = Splat<V>(ak[i]);
      #pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) acc[i][j] = Fma(av, bv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) Store(job.c + (m0 + i) * job.N + cols[j], acc[i][j]);
  }
}

// The first column of vector j: j·W, or N − W for a last vector that would pass the end.
template <typename V>
CB_INLINE int64_t TransAColumn(const TransAJob& job, int64_t j) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  return j * W + W <= job.N ? j * W : job.N - W;
}

// Rows [m0, m0 + MR) over every column vector for k in [k0, k1).
template <typename V, int MR>
CB_INLINE void TransARows(const TransAJob& job, int64_t m0, int64_t k0, int64_t k1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t nv = (job.N + W - 1) / W;
  int64_t j = 0;
  // An odd vector out goes first, so that a last vector overlapping its predecessor shares its
  // tile: both load C before either stores, and store the same bits.
  if (nv % 2 == 1) {
    const int64_t cols[1] = {TransAColumn<V>(job, j++)};
    TransATile<V, MR, 1>(job, m0, cols, k0, k1);
  }
  for (; j < nv; j += 2) {
    const int64_t cols[2] = {TransAColumn<V>(job, j), TransAColumn<V>(job, j + 1)};
    TransATile<V, MR, 2>(job, m0, cols, k0, k1);
  }
}

// Rows up to kMaxRows at a time (12 fit AVX-512's 32 registers with 2 vectors each; 6 the 16 of
// AVX2 and SSE2), the last pass as many as remain.
template <typename V>
CB_INLINE void TransAPass(const TransAJob& job, int64_t m0, int64_t rows, int64_t k0,
                          int64_t k1) {
  switch (rows) {
#define CB_TRANSA_ROWS(R) \
  case R:                 \
    return TransARows<V, R>(job, m0, k0, k1);
    CB_TRANSA_ROWS(1)
    CB_TRANSA_ROWS(2)
    CB_TRANSA_ROWS(3)
    CB_TRANSA_ROWS(4)
    CB_TRANSA_ROWS(5)
    CB_TRANSA_ROWS(6)
    CB_TRANSA_ROWS(7)
    CB_TRANSA_ROWS(8)
    CB_TRANSA_ROWS(9)
    CB_TRANSA_ROWS(10)
    CB_TRANSA_ROWS(11)
    CB_TRANSA_ROWS(12)
#undef CB_TRANSA_ROWS
  }
}

template <typename V>
CB_INLINE void TransABlock(const TransAJob& job, int64_t m0, int64_t m1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  constexpr int64_t kMaxRows = W == 16 ? 12 : 6;
  const int64_t N = job.N;
  if (N < W) {  // narrower than one vector: the same sums, one element at a time
    for (int64_t m = m0; m < m1; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        float acc = 0.0f;
        for (int64_t k = 0; k < job.K; ++k) {
          acc = __builtin_fmaf(job.a[k * job.M + m], job.b[k * N + n], acc);
        }
        job.c[m * N + n] = acc;
      }
    }
    return;
  }
  if (job.K == 0) {
    for (int64_t i = m0 * N; i < m1 * N; ++i) job.c[i] = 0.0f;
    return;
  }
  for (int64_t k0 = 0; k0 < job.K; k0 += kTransAK) {
    const int64_t k1 = std::min(k0 + kTransAK, job.K);
    for (int64_t m = m0; m < m1; m += kMaxRows) {
      TransAPass<V>(job, m, std::min(kMaxRows, m1 - m), k0, k1);
    }
  }
}

// As CB_RANGE_AT_EVERY_WIDTH, with FMA instructions enabled in the AVX2 and AVX-512 paths.
void TransABlockSse2(const TransAJob& job, int64_t i0, int64_t i1) { TransABlock<V4>(job, i0, i1); }
__attribute__((target("avx2,fma"))) void TransABlockAvx2(const TransAJob& job, int64_t i0,
                                                         int64_t i1) {
  TransABlock<V8>(job, i0, i1);
}
__attribute__((target("avx512f,fma"))) void TransABlockAvx512(const TransAJob& job, int64_t i0,
                                                              int64_t i1) {
  TransABlock<V16>(job, i0, i1);
}

OrtStatus* ComputeMatMulTransA(OrtKernelContext* ctx, Simd simd) {
  Shape as, bs;
  TransAJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "A", &as, &job.a));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "B", &bs, &job.b));
  if (as.rank != 2 || bs.rank != 2 || as.dims[0] != bs.dims[0]) {
    return Error("Cannot run MatMulTransA as A [K, M] and B [K, N] must be matrices with as " +
                 std::string("many rows: current A ") + ShapeString(as) + ", B " +
                 ShapeString(bs));
  }
  job.K = as.dims[0];
  job.M = as.dims[1];
  job.N = bs.dims[1];
  Shape cs;
  cs.rank = 2;
  cs.dims[0] = job.M;
  cs.dims[1] = job.N;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, cs, &job.c));
  // Four blocks of rows (at least 8 rows each): each block reads all of B, which in a train step
  // comes from memory (the backward pass's dY, out of cache), so fewer blocks read less. Blocks
  // of 12 rows read it M/12 times. In ORT's profile of a phone-book step (B 128 × 79, 2 threads,
  // ≈ 84 ms) the weight gradients took 19.6 ms in blocks of 12 rows, 14.6 ms in 2 blocks and
  // 16.1 ms in 4 (a noisy machine); four split evenly over 2 or 4 threads. Each element's sum
  // runs in k order whatever the blocks, so the bits do not depend on them.
  // The AVX2 path needs FMA too (every AVX2 CPU since 2013 has it; CreateKernelV2 in registry.cc
  // has initialised the CPU model).
  const Simd width = simd == kAvx2 && !__builtin_cpu_supports("fma") ? kSse2 : simd;
  job.blocks = {job.M, std::max<int64_t>(8, (job.M + 3) / 4), width};
  return RunBlocks<TransAJob, TransABlockSse2, TransABlockAvx2, TransABlockAvx512>(ctx, &job);
}

}  // namespace

CB_REGISTER_OP("ColumnSums", 1, 1, 0, ComputeColumnSums);
CB_REGISTER_OP("MatMulTransA", 2, 1, 0, ComputeMatMulTransA);
CB_REGISTER_OP("BiasResidual", 3, 1, 0, ComputeBiasResidual);

}  // namespace cb
