// Vector types, lane math and the block runner that claimbench's kernels are written with.
//
// Determinism: work is partitioned whole (rows, or attention heads) over ORT's intra-op thread
// pool and every element is computed by a fixed sequence of IEEE operations, so results do not
// depend on the thread count. exp, erfc and log are our own (below) rather than libm's, whose
// x86-64 builds pick FMA variants by CPU at run time. Kernels are written once over a vector
// type of 4 (SSE2, every x86-64), 8 (AVX2) or 16 (AVX-512F) lanes, picked at run time; lanes only
// ever hold different elements and reductions go in a fixed order (by position mod 4), and with
// -ffp-contract=off nothing is fused into an FMA (but where Fma below is called explicitly: it is
// correctly rounded on every path), so every x86-64 machine computes the same bits (the tests
// compare the paths).
//
// Precision: float32 arithmetic as the standard-op compositions do it, with row sums in double;
// exp and erfc within about 1 ulp.
//
// Everything here is a template or inline, so any number of kernel files may include it. A
// function run at 8 or 16 lanes must be always inlined (CB_INLINE) into the AVX2 or AVX-512
// entry point that calls it (CB_RANGE_AT_EVERY_WIDTH), never compiled on its own.

#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ort_abi.h"

#pragma GCC visibility push(hidden)

namespace cb {

// ---------------------------------------------------------------------------------------------
// Vectors: float32 lanes (GCC vector extensions)

typedef float V4 __attribute__((vector_size(16)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V16 __attribute__((vector_size(64)));
typedef double D4 __attribute__((vector_size(32)));  // row sums, by element position mod 4

#define CB_INLINE inline __attribute__((always_inline))

// The 8-lane instantiations are always inlined into the AVX2 entry point, so no 32-byte vector
// crosses a call boundary compiled without AVX: GCC's ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

// Every lane = v (a broadcast; not 0 + v, which costs an add and turns −0 into +0).
template <typename V>
CB_INLINE V Splat(float v) {
  V r;
  for (size_t i = 0; i < sizeof(V) / sizeof(float); ++i) r[i] = v;
  return r;
}

template <typename V>
CB_INLINE V Load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename V>
CB_INLINE void Store(float* p, const V& v) {
  std::memcpy(p, &v, sizeof(v));
}

// The first `n` entries of p (n < lanes), the rest `pad`.
template <typename V>
CB_INLINE V LoadTail(const float* p, int64_t n, float pad) {
  float tmp[sizeof(V) / sizeof(float)];
  for (size_t i = 0; i < sizeof(V) / sizeof(float); ++i) tmp[i] = pad;
  for (int64_t i = 0; i < n; ++i) tmp[i] = p[i];
  return Load<V>(tmp);
}

template <typename V>
CB_INLINE void StoreTail(float* p, int64_t n, const V& v) {
  float tmp[sizeof(V) / sizeof(float)];
  Store(tmp, v);
  for (int64_t i = 0; i < n; ++i) p[i] = tmp[i];
}

// Adds v's lanes to the position-mod-4 accumulators, four lanes at a time, in lane order.
template <typename V>
CB_INLINE void Accumulate(D4& acc, const V& v) {
  for (size_t g = 0; g < sizeof(V) / sizeof(float); g += 4) {
    acc += D4{v[g], v[g + 1], v[g + 2], v[g + 3]};
  }
}

CB_INLINE double SumLanes(const D4& acc) { return (acc[0] + acc[1]) + (acc[2] + acc[3]); }

// The largest lane of v (exact, so the order of the pairwise steps does not matter).
template <typename V>
CB_INLINE float MaxLane(const V& lanes) {
  V v = lanes;
  using VI = decltype(v < v);
  constexpr int W = sizeof(V) / sizeof(float);
  for (int half = W / 2; half >= 1; half /= 2) {
    VI idx;
    for (int l = 0; l < W; ++l) idx[l] = l ^ half;
    const V o = __builtin_shuffle(v, idx);
    v = o > v ? o : v;
  }
  return v[0];
}

// Each lane's index: 0, 1, 2, …
template <typename V>
CB_INLINE auto LaneIndex() {
  decltype(V{} < V{}) lane;
  for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l) lane[l] = static_cast<int>(l);
  return lane;
}

// The first n lanes of v (n ≥ 1), the others `pad`.
template <typename V>
CB_INLINE V Keep(const V& v, int64_t n, float pad) {
  return LaneIndex<V>() < static_cast<int>(n) ? v : Splat<V>(pad);
}

template <typename V>
struct Doubles;  // a vector of doubles with as many lanes as V
template <>
struct Doubles<V4> {
  typedef double Type __attribute__((vector_size(32)));
};
template <>
struct Doubles<V8> {
  typedef double Type __attribute__((vector_size(64)));
};
template <>
struct Doubles<V16> {
  typedef double Type __attribute__((vector_size(128)));
};

// ---------------------------------------------------------------------------------------------
// Deterministic elementary functions on lanes, no libm

// exp(x) = 2^k · e^r with k = round(x / ln 2) and r = x − k·ln 2 (Cody–Waite: ln 2 split so that
// k·kLn2Hi is exact), |r| ≤ ln(2)/2; e^r by its Taylor polynomial to r^7 (truncation 5e-9
// relative), about 1 ulp in all. Below −87.33 (FLT_MIN's log) the result is exactly 0, so
// exp(−inf) = 0; above 88 it saturates at e^88 (our callers pass x ≤ 0). NaN stays NaN.
template <typename V>
CB_INLINE V Exp(const V& x) {
  using VI = decltype(x < x);  // the int32 vector of the same width
  const V lo = Splat<V>(-87.33f);
  const V hi = Splat<V>(88.0f);
  V xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const V round = Splat<V>(12582912.0f);  // 1.5 · 2^23: adding it rounds to an integer
  const V t = xc * 1.44269504f + round;
  const V k = t - round;
  const V r = (xc - k * 0.693359375f) - k * -2.12194440e-4f;
  V p = Splat<V>(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // t's low mantissa bits hold k as a two's-complement integer; vector casts between types of
  // the same size reinterpret the bits.
  const VI bits = ((VI)t - (VI)round + 127) << 23;
  const V e = p * (V)bits;
  return x < lo ? Splat<V>(0.0f) : e;
}

// erfc(a) for a ≥ 0 as t · Q(t) · e^(−a²) with t = 1 / (1 + a/2): Q is smooth on t ∈ (0, 1]
// (from 1/(2√π) to 1), and its degree-10 Chebyshev interpolant (fitted for this file with
// mpmath at 40 digits, written here in the monomial basis of t) has relative error below 2.8e-8
// on the whole range, under float32's half ulp.
inline constexpr float kErfcQ[11] = {
    0.282094799651273f,  0.2820928673346307f,   0.24691356121779123f, 0.17494859631541002f,
    0.0958271993931922f, -0.06795827531374868f, 0.1518851796289982f,  -0.4824747605145184f,
    0.5168995401022985f, -0.245580036275335f,   0.0453513366235701f,
};

// Phi(x) and phi(x) of the standard normal; z = x/√2 so that e^(−z²) = e^(−x²/2) serves both.
template <typename V>
CB_INLINE void NormalCdfPdf(const V& x, V* cdf, V* pdf) {
  const V zero = Splat<V>(0.0f);
  const V z = x * 0.707106781f;
  const V a = z < zero ? -z : z;
  const V t = 1.0f / (1.0f + 0.5f * a);
  V q = Splat<V>(kErfcQ[10]);
  for (int i = 9; i >= 0; --i) q = q * t + kErfcQ[i];
  const V e = Exp(-(z * z));
  const V erfc_a = t * q * e;
  *cdf = z >= zero ? 1.0f - 0.5f * erfc_a : 0.5f * erfc_a;
  *pdf = e * 0.398942280f;  // 1/√(2π)
}

// log(z) per lane for z ≥ 1 in double: z = 2^k·f with f in [√½, √2) (exact, from the bits),
// log f = 2·atanh(s), s = (f − 1)/(f + 1), |s| < 0.172, by its series to s^19 (truncation below
// 1e-16 relative). IEEE operations only, so every machine gives the same bits. NaN stays NaN;
// the callers' z (a softmax's denominator, whose largest term is exp(0) = 1) is never below 1.
template <typename DV>
CB_INLINE DV LogAtLeastOne(const DV& z) {
  using DI = decltype(z < z);  // the int64 vector of the same width
  DI bits;
  std::memcpy(&bits, &z, sizeof(bits));
  DI k = ((bits >> 52) & 0x7ff) - 1023;
  const DI mantissa = (bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
  DV f;
  std::memcpy(&f, &mantissa, sizeof(f));  // in [1, 2)
  const DI high = f > 1.4142135623730951;
  f = high ? f * 0.5 : f;
  k = high ? k + 1 : k;
  const DV s = (f - 1.0) / (f + 1.0);
  const DV s2 = s * s;
  DV series = s2 * 0.0 + 1.0 / 19.0;
  for (int i = 17; i >= 1; i -= 2) series = series * s2 + 1.0 / i;
  const DV log = __builtin_convertvector(k, DV) * 0.69314718055994531 + 2.0 * s * series;
  return z == z ? log : z;
}

// Lanewise √ (correctly rounded, as IEEE requires; -fno-math-errno keeps it one instruction).
template <typename V>
CB_INLINE V Sqrt(const V& v) {
  V r;
  for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l) r[l] = __builtin_sqrtf(v[l]);
  return r;
}

// a·b + c, rounded once. (GCC vectorises the lane loop into one FMA instruction where the caller
// is built with FMA enabled, e.g. target("avx2,fma"); elsewhere it calls libm's fmaf, also
// correctly rounded, so the bits are the same.)
template <typename V>
CB_INLINE V Fma(const V& a, const V& b, const V& c) {
  V r;
  for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The block runner

// Vector widths a kernel may run at, chosen once per kernel (CreateKernelV2).
enum Simd { kSse2 = 0, kAvx2 = 1, kAvx512 = 2 };

// The float32 lanes of a vector at `simd`.
constexpr int64_t LanesOf(Simd simd) { return simd == kAvx512 ? 16 : simd == kAvx2 ? 8 : 4; }

// Rows of about kBlockElems elements form one task: small enough to balance two threads, large
// enough that the pool's per-task cost is noise.
constexpr int64_t kBlockElems = 16384;

// Blocks of work: the kernels split `count` units (rows, columns or elements) into blocks of
// `per_block` over ORT's pool, and run each block at the width the kernel was created with.
struct Blocks {
  int64_t count = 0;
  int64_t per_block = 1;
  Simd simd = kSse2;
};

// Runs units [i0, i1) of a job at one vector width.
template <typename Job>
using RangeFn = void (*)(const Job&, int64_t, int64_t);

// Defines Name##Sse2, Name##Avx2 and Name##Avx512: Body<V4>, <V8> and <V16> over a job's units
// [i0, i1), each compiled for its instruction set.
#define CB_RANGE_AT_EVERY_WIDTH(Name, Job, Body)                                              \
  void Name##Sse2(const Job& job, int64_t i0, int64_t i1) { Body<V4>(job, i0, i1); }           \
  __attribute__((target("avx2"))) void Name##Avx2(const Job& job, int64_t i0, int64_t i1) {   \
    Body<V8>(job, i0, i1);                                                                     \
  }                                                                                            \
  __attribute__((target("avx512f"))) void Name##Avx512(const Job& job, int64_t i0, int64_t i1) { \
    Body<V16>(job, i0, i1);                                                                    \
  }

template <typename Job, RangeFn<Job> Sse2, RangeFn<Job> Avx2, RangeFn<Job> Avx512>
void RunBlockOf(void* data, size_t block) {
  const Job& job = *static_cast<const Job*>(data);
  const Blocks& b = job.blocks;
  const int64_t i0 = static_cast<int64_t>(block) * b.per_block;
  const int64_t i1 = i0 + b.per_block < b.count ? i0 + b.per_block : b.count;
  if (b.simd == kAvx512) {
    Avx512(job, i0, i1);
  } else if (b.simd == kAvx2) {
    Avx2(job, i0, i1);
  } else {
    Sse2(job, i0, i1);
  }
}

// Runs every block of `job` (job->blocks set), in order on this thread when there is one block
// or no pool.
template <typename Job, RangeFn<Job> Sse2, RangeFn<Job> Avx2, RangeFn<Job> Avx512>
OrtStatus* RunBlocks(OrtKernelContext* ctx, Job* job) {
  const Blocks& b = job->blocks;
  if (b.count == 0) return nullptr;
  const int64_t blocks = (b.count + b.per_block - 1) / b.per_block;
  auto run = RunBlockOf<Job, Sse2, Avx2, Avx512>;
  if (blocks == 1 || g_api.KernelContext_ParallelFor == nullptr) {
    for (int64_t i = 0; i < blocks; ++i) run(job, static_cast<size_t>(i));
    return nullptr;
  }
  // num_batch 0: ORT's TrySimpleParallelFor, one call per block.
  return g_api.KernelContext_ParallelFor(ctx, run, static_cast<size_t>(blocks), 0, job);
}

// Rows of n elements per block: about kBlockElems elements, at least one row.
inline int64_t RowsPerBlock(int64_t n) { return n >= kBlockElems ? 1 : kBlockElems / n; }

}  // namespace cb

#pragma GCC visibility pop
