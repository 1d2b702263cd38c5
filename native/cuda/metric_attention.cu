// MetricAttention and MetricAttentionGrad (metric-tensor attention, float32) on CUDA. The CPU
// kernels are native/kernels/metric_attention.cc; the op's definition is
// onnx/custom/metric_attention.ts.
//
// Semantics. P [B, H, T, K]; M [H, K(K+1)/2], per head a symmetric metric A packed as its
// row-major upper triangle (l walks (0,0), (0,1), …, (0,K−1), (1,1), …); Bias [T, T] (0 or −1e9:
// the causal mask, or zeros); a float scale. Per batch row b and head h:
//   Qs = (P·A)·scale,   S = Qs·Pᵀ + Bias,   W = softmax_rows(S),   Y = W·P.
// The gradient takes dY [B, H, T, K] and returns dP [B, H, T, K] and dM [H, K(K+1)/2]:
//   dS = W ⊙ (dY·Pᵀ − c), c_i = Σ_j W_ij (dY_i·P_j) = dY_i·Y_i,   dQ = (dS·P)·scale,
//   dP = Wᵀ·dY + dSᵀ·Qs + dQ·A,   G_h = Σ_b Pᵀ·dQ [K, K],
//   dM[l(k, k')] = G[k][k'] + G[k'][k] (k ≠ k': both halves of the tied pair), G[k][k].
//
// Design.
// - Masks: a small kernel finds each query row's first and last key with Bias ≥ −1e8 (as the CPU
//   kernels do; the others' weights are exactly 0 in float32), and each key's first and last
//   row; where the row ranges do not grow with the row, every row takes every key.
// - Forward: a block of 8 warps serves 8 query rows of one (b, h), a warp per row, a lane per
//   key of a 32-key tile (P's tile staged in shared memory with row stride K + 1, so the lanes'
//   reads fall on distinct banks), a lane per dim (K ≤ 64: one or two per lane) for the
//   output. The block first unpacks A into shared memory and computes each row's Qs once. The
//   softmax is online (running max, rescaled sum and output, as FlashAttention): no T × T
//   tensor is made. Tiles outside a warp's key range are skipped.
// - Gradient: (1) the forward kernel again, keeping per row log Σ exp (lse), c = dY·Y and Qs in
//   a workspace instead of Y; (2) a query kernel (warp per row) recomputes each weight from Qs
//   and lse, accumulates dQ, then writes dP = dQ·A; (3) a key kernel (warp per key) recomputes
//   the same weights (same operations, same bits) over row tiles and adds Wᵀ·dY + dSᵀ·Qs to dP;
//   (4) a kernel sums Pᵀ·dQ over chunks of 256 (b, t) rows per head into partials, and (5) one
//   sums the partials in chunk order (double) and packs dM.
// - Deterministic: every output element has one writer and every sum a fixed order (no atomics).
// - Kernels are launched through cudaLaunchKernel rather than <<<…>>>, and use only dynamic
//   shared memory, warp shuffles, __syncwarp and __syncthreads, so that a host emulation of those
//   few calls (a std::thread per CUDA thread, a buffer for the extern shared array) can compile
//   this file with g++ and run its host entry points without a GPU.
//
// Exports (extern "C", default visibility; host pointers unless named Device):
//   ClaimbenchMetricAttentionHost, ClaimbenchMetricAttentionGradHost: copy in, run, copy out;
//   ClaimbenchMetricAttentionDevice, ClaimbenchMetricAttentionGradDevice (+ WorkspaceBytes):
//     device pointers, a device workspace, on the given stream (null: the default);
//   ClaimbenchMetricAttentionTime: seeded device inputs, mean milliseconds per call.
// They return 0, or −(the CUDA error code), or one of the codes below (checked before any CUDA
// call, so they come back the same without a GPU).

#include <cuda_runtime.h>

#include "host.cuh"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#define CB_MA_TRY_CUDA(expr)                          \
  do {                                                \
    const cudaError_t cb_ma_err_ = (expr);            \
    if (cb_ma_err_ != cudaSuccess) return cb_ma_err_; \
  } while (0)

namespace {

// The shape error codes (CUDA's own codes stay below 1000), as the selective scan's.
constexpr int kErrShape = -1000;     // B, H or T < 1
constexpr int kErrDim = -1001;       // K outside [1, 64]
constexpr int kErrNull = -1002;      // a required pointer is null
constexpr int kErrTooLarge = -1003;  // sizes beyond what the kernels index
constexpr int kErrArgument = -1004;  // repeats < 1, or a workspace smaller than required

constexpr int kThreads = 256;     // threads per block
constexpr int kWarps = 8;         // rows (or keys) per block: one per warp
constexpr int kTile = 32;         // keys (or rows) per tile: one per lane
constexpr int kMaxDim = 64;       // the largest K: two dims per lane
constexpr int64_t kChunkRows = 256;  // (b, t) rows per partial of G
constexpr float kMaskedBias = -1e8f;
constexpr unsigned kFull = 0xffffffffu;

struct Dims {
  int64_t B, H, T, K;
};

// The workspace's parts, in floats from its start (int32 ranges stored in float slots).
struct Layout {
  int64_t ranges, lse, c, qs, dq, part, total;
};

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o >= 1; o /= 2) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o >= 1; o /= 2) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// Packed index of A[k][k2], k ≤ k2.
__device__ __forceinline__ int64_t PackedAt(int64_t k, int64_t k2, int64_t K) {
  return k * K - k * (k - 1) / 2 + (k2 - k);
}

// ---------------------------------------------------------------------------------------------
// Masks: lo[i], hi[i] (the keys of row i), ilo[j], ihi[j] (the rows of key j), one block.

__global__ void __launch_bounds__(kThreads) MetricRangesKernel(const float* bias, int64_t T,
                                                                int* ranges) {
  extern __shared__ float cb_ma_smem[];
  int* bad = reinterpret_cast<int*>(cb_ma_smem);
  int* lo = ranges;
  int* hi = ranges + T;
  int* ilo = ranges + 2 * T;
  int* ihi = ranges + 3 * T;
  if (threadIdx.x == 0) *bad = 0;
  for (int64_t i = threadIdx.x; i < T; i += kThreads) {
    const float* b = bias + i * T;
    int64_t first = 0, last = T - 1;
    while (first < T && !(b[first] >= kMaskedBias)) ++first;
    while (last >= 0 && !(b[last] >= kMaskedBias)) --last;
    if (first > last) first = 0, last = T - 1;  // every key masked: the row in full
    lo[i] = static_cast<int>(first);
    hi[i] = static_cast<int>(last);
  }
  __syncthreads();
  for (int64_t i = threadIdx.x + 1; i < T; i += kThreads) {
    if (lo[i] < lo[i - 1] || hi[i] < hi[i - 1]) *bad = 1;
  }
  __syncthreads();
  if (*bad) {
    for (int64_t i = threadIdx.x; i < T; i += kThreads) lo[i] = 0, hi[i] = static_cast<int>(T - 1);
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < T; j += kThreads) {
    int i0 = static_cast<int>(T), i1 = -1;
    for (int64_t i = 0; i < T; ++i) {
      if (lo[i] <= j && j <= hi[i]) {
        if (i0 > i) i0 = static_cast<int>(i);
        i1 = static_cast<int>(i);
      }
    }
    ilo[j] = i0;
    ihi[j] = i1;
  }
}

// A_h [K, K] into shared memory from packed M.
__device__ __forceinline__ void UnpackMetric(const float* m, int64_t h, int64_t K, float* sA) {
  const int64_t L = K * (K + 1) / 2;
  for (int64_t e = threadIdx.x; e < K * K; e += kThreads) {
    const int64_t k = e / K, k2 = e % K;
    sA[e] = m[h * L + (k <= k2 ? PackedAt(k, k2, K) : PackedAt(k2, k, K))];
  }
}

// rows [r0, r0 + 32) of a head's [T, K] rows into a tile [32][K + 1], zeros past T.
__device__ __forceinline__ void LoadTile(const float* src, int64_t r0, int64_t T, int64_t K,
                                         float* tile) {
  for (int64_t e = threadIdx.x; e < kTile * K; e += kThreads) {
    const int64_t r = e / K, k = e % K;
    tile[r * (K + 1) + k] = r0 + r < T ? src[(r0 + r) * K + k] : 0.0f;
  }
}

// The first and last of ranges [first, last] over the block's 8 rows (or keys) from r0.
__device__ __forceinline__ void BlockRange(const int* first, const int* last, int64_t r0,
                                           int64_t T, int64_t* lo, int64_t* hi) {
  *lo = T;
  *hi = -1;
  for (int64_t r = r0; r < r0 + kWarps && r < T; ++r) {
    if (first[r] < *lo) *lo = first[r];
    if (last[r] > *hi) *hi = last[r];
  }
}

// ---------------------------------------------------------------------------------------------
// Forward (and the gradient's first pass).

struct FwdArgs {
  Dims d;
  float scale;
  const float* p;
  const float* m;
  const float* bias;
  const int* ranges;
  float* y;         // forward: Y; null in the gradient's pass
  const float* dy;  // gradient's pass: dY, and where its per-row results go:
  float* lse;       // [B, H, T]: max + log Σ exp
  float* c;         // [B, H, T]: dY_i·Y_i
  float* qs;        // [B, H, T, K]: (P·A)·scale
};

template <int S>  // dims per lane: ceil(K / 32)
__global__ void __launch_bounds__(kThreads) MetricFwdKernel(const FwdArgs a) {
  extern __shared__ float cb_ma_smem[];
  const int64_t T = a.d.T, K = a.d.K, KP = K + 1;
  float* sA = cb_ma_smem;       // [K, K]
  float* sP = sA + K * K;       // [32, K + 1]: a tile of keys
  float* sQ = sP + kTile * KP;  // [8, K]: each warp's Qs row
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, r0 = static_cast<int64_t>(blockIdx.x) * kWarps;
  const int64_t i = r0 + warp, head = (b * a.d.H + h) * T;
  const bool active = i < T;
  const float* p = a.p + head * K;
  UnpackMetric(a.m, h, K, sA);
  __syncthreads();
  float* q = sQ + warp * K;
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int64_t k2 = lane + 32 * s;
    if (active && k2 < K) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += p[i * K + k] * sA[k * K + k2];
      q[k2] = acc * a.scale;
    }
  }
  __syncwarp();
  const int64_t lo = active ? a.ranges[i] : T, hi = active ? a.ranges[T + i] : -1;
  int64_t blo, bhi;
  BlockRange(a.ranges, a.ranges + T, r0, T, &blo, &bhi);
  float m = -INFINITY, z = 0.0f, y[S];
#pragma unroll
  for (int s = 0; s < S; ++s) y[s] = 0.0f;
  for (int64_t j0 = blo / kTile * kTile; j0 <= bhi; j0 += kTile) {
    __syncthreads();
    LoadTile(p, j0, T, K, sP);
    __syncthreads();
    if (j0 > hi || j0 + kTile - 1 < lo) continue;  // the same for the whole warp
    const int64_t j = j0 + lane;
    const bool valid = lo <= j && j <= hi;
    float sc = 0.0f;
    for (int64_t k = 0; k < K; ++k) sc += q[k] * sP[lane * KP + k];
    sc = valid ? sc + a.bias[i * T + j] : -INFINITY;
    const float mnew = fmaxf(m, WarpMax(sc));  // finite: the tile holds a key of the row
    const float f = expf(m - mnew);            // 0 on the first tile (m = −inf)
    const float pj = valid ? expf(sc - mnew) : 0.0f;
    z = z * f + WarpSum(pj);
#pragma unroll
    for (int s = 0; s < S; ++s) y[s] *= f;
    for (int l = 0; l < kTile; ++l) {
      const float pl = __shfl_sync(kFull, pj, l);
#pragma unroll
      for (int s = 0; s < S; ++s) {
        const int64_t k = lane + 32 * s;
        if (k < K) y[s] += pl * sP[l * KP + k];
      }
    }
    m = mnew;
  }
  if (!active) return;
  const float inv = 1.0f / z;
  const int64_t row = head + i;
  float dot = 0.0f;
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int64_t k = lane + 32 * s;
    if (k >= K) continue;
    y[s] *= inv;
    if (a.y) a.y[row * K + k] = y[s];
    if (a.dy) {
      dot += a.dy[row * K + k] * y[s];
      a.qs[row * K + k] = q[k];
    }
  }
  if (a.dy) {
    dot = WarpSum(dot);
    if (lane == 0) {
      a.lse[row] = m + logf(z);
      a.c[row] = dot;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient: the query side (dQ and dP = dQ·A), then the key side (dP += Wᵀ·dY + dSᵀ·Qs).

struct GradArgs {
  Dims d;
  float scale;
  const float* p;
  const float* m;
  const float* bias;
  const int* ranges;
  const float* dy;
  const float* lse;
  const float* c;
  const float* qs;
  float* dq;  // [B, H, T, K] (workspace)
  float* dp;  // [B, H, T, K]
};

template <int S>
__global__ void __launch_bounds__(kThreads) MetricQueryKernel(const GradArgs a) {
  extern __shared__ float cb_ma_smem[];
  const int64_t T = a.d.T, K = a.d.K, KP = K + 1;
  float* sA = cb_ma_smem;        // [K, K]
  float* sP = sA + K * K;        // [32, K + 1]: a tile of keys
  float* sQ = sP + kTile * KP;   // [8, K] each: the warps' Qs, dY and dQ rows
  float* sDY = sQ + kWarps * K;
  float* sDQ = sDY + kWarps * K;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, r0 = static_cast<int64_t>(blockIdx.x) * kWarps;
  const int64_t i = r0 + warp, head = (b * a.d.H + h) * T, row = head + i;
  const bool active = i < T;
  const float* p = a.p + head * K;
  UnpackMetric(a.m, h, K, sA);
  float* q = sQ + warp * K;
  float* g = sDY + warp * K;
  float* dqr = sDQ + warp * K;
  for (int64_t k = lane; k < K; k += 32) {
    q[k] = active ? a.qs[row * K + k] : 0.0f;
    g[k] = active ? a.dy[row * K + k] : 0.0f;
  }
  __syncthreads();
  const int64_t lo = active ? a.ranges[i] : T, hi = active ? a.ranges[T + i] : -1;
  const float lse = active ? a.lse[row] : 0.0f, c = active ? a.c[row] : 0.0f;
  int64_t blo, bhi;
  BlockRange(a.ranges, a.ranges + T, r0, T, &blo, &bhi);
  float dq[S];
#pragma unroll
  for (int s = 0; s < S; ++s) dq[s] = 0.0f;
  for (int64_t j0 = blo / kTile * kTile; j0 <= bhi; j0 += kTile) {
    __syncthreads();
    LoadTile(p, j0, T, K, sP);
    __syncthreads();
    if (j0 > hi || j0 + kTile - 1 < lo) continue;
    const int64_t j = j0 + lane;
    const bool valid = lo <= j && j <= hi;
    float sc = 0.0f, dw = 0.0f;
    for (int64_t k = 0; k < K; ++k) sc += q[k] * sP[lane * KP + k];
    for (int64_t k = 0; k < K; ++k) dw += g[k] * sP[lane * KP + k];
    const float pj = valid ? expf(sc + a.bias[i * T + j] - lse) : 0.0f;
    const float ds = pj * (dw - c);
    for (int l = 0; l < kTile; ++l) {
      const float dl = __shfl_sync(kFull, ds, l);
#pragma unroll
      for (int s = 0; s < S; ++s) {
        const int64_t k = lane + 32 * s;
        if (k < K) dq[s] += dl * sP[l * KP + k];
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int64_t k = lane + 32 * s;
    if (k < K) {
      dqr[k] = dq[s] * a.scale;
      a.dq[row * K + k] = dqr[k];
    }
  }
  __syncwarp();
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int64_t k2 = lane + 32 * s;
    if (k2 >= K) continue;
    float acc = 0.0f;
    for (int64_t k = 0; k < K; ++k) acc += dqr[k] * sA[k * K + k2];
    a.dp[row * K + k2] = acc;
  }
}

template <int S>
__global__ void __launch_bounds__(kThreads) MetricKeyKernel(const GradArgs a) {
  extern __shared__ float cb_ma_smem[];
  const int64_t T = a.d.T, K = a.d.K, KP = K + 1;
  float* sK = cb_ma_smem;          // [8, K]: the warps' key rows
  float* sQ = sK + kWarps * K;     // [32, K + 1]: a tile of rows' Qs
  float* sDY = sQ + kTile * KP;    // [32, K + 1]: their dY
  float* sL = sDY + kTile * KP;    // [32]: their lse
  float* sC = sL + kTile;          // [32]: their c
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, r0 = static_cast<int64_t>(blockIdx.x) * kWarps;
  const int64_t j = r0 + warp, head = (b * a.d.H + h) * T;
  const bool active = j < T;
  float* key = sK + warp * K;
  for (int64_t k = lane; k < K; k += 32) key[k] = active ? a.p[(head + j) * K + k] : 0.0f;
  const int* ilo = a.ranges + 2 * T;
  const int* ihi = a.ranges + 3 * T;
  const int64_t lo = active ? ilo[j] : T, hi = active ? ihi[j] : -1;
  int64_t blo, bhi;
  BlockRange(ilo, ihi, r0, T, &blo, &bhi);
  float dv[S], dk[S];
#pragma unroll
  for (int s = 0; s < S; ++s) dv[s] = dk[s] = 0.0f;
  for (int64_t i0 = blo / kTile * kTile; i0 <= bhi; i0 += kTile) {
    __syncthreads();
    LoadTile(a.qs + head * K, i0, T, K, sQ);
    LoadTile(a.dy + head * K, i0, T, K, sDY);
    if (threadIdx.x < kTile) {
      const int64_t r = i0 + threadIdx.x;
      sL[threadIdx.x] = r < T ? a.lse[head + r] : 0.0f;
      sC[threadIdx.x] = r < T ? a.c[head + r] : 0.0f;
    }
    __syncthreads();
    if (i0 > hi || i0 + kTile - 1 < lo) continue;
    const int64_t i = i0 + lane;
    const bool valid = lo <= i && i <= hi;
    float sc = 0.0f, dw = 0.0f;
    for (int64_t k = 0; k < K; ++k) sc += sQ[lane * KP + k] * key[k];
    for (int64_t k = 0; k < K; ++k) dw += sDY[lane * KP + k] * key[k];
    const float pi = valid ? expf(sc + a.bias[i * T + j] - sL[lane]) : 0.0f;
    const float ds = pi * (dw - sC[lane]);
    for (int l = 0; l < kTile; ++l) {
      const float pl = __shfl_sync(kFull, pi, l);
      const float dl = __shfl_sync(kFull, ds, l);
#pragma unroll
      for (int s = 0; s < S; ++s) {
        const int64_t k = lane + 32 * s;
        if (k < K) {
          dv[s] += pl * sDY[l * KP + k];
          dk[s] += dl * sQ[l * KP + k];
        }
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int64_t k = lane + 32 * s;
    if (k < K) {
      float* out = a.dp + (head + j) * K + k;
      *out = (dv[s] + dk[s]) + *out;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient: G and dM.

struct MetricGradArgs {
  Dims d;
  const float* p;
  const float* dq;
  float* part;  // [H, chunks, K, K]
  int64_t chunks;
  float* dm;    // [H, K(K+1)/2]
};

// part[h, chunk] = Σ over the chunk's (b, t) rows of P_rowᵀ·dQ_row: each thread owns the entries
// e = tid + 256·n of the K × K sum, adding rows in order.
__global__ void __launch_bounds__(kThreads) MetricPartialKernel(const MetricGradArgs a) {
  extern __shared__ float cb_ma_smem[];
  const int64_t T = a.d.T, K = a.d.K, H = a.d.H;
  float* sP = cb_ma_smem;       // [32, K]
  float* sD = sP + kTile * K;  // [32, K]
  const int64_t chunk = blockIdx.x, h = blockIdx.y;
  const int64_t rows = a.d.B * T, first = chunk * kChunkRows;
  const int64_t last = first + kChunkRows < rows ? first + kChunkRows : rows;
  constexpr int kEntries = kMaxDim * kMaxDim / kThreads;
  float acc[kEntries];
#pragma unroll
  for (int n = 0; n < kEntries; ++n) acc[n] = 0.0f;
  for (int64_t r0 = first; r0 < last; r0 += kTile) {
    __syncthreads();
    for (int64_t e = threadIdx.x; e < kTile * K; e += kThreads) {
      const int64_t r = r0 + e / K, k = e % K;
      const int64_t at = ((r / T * H + h) * T + r % T) * K + k;
      sP[e] = r < last ? a.p[at] : 0.0f;
      sD[e] = r < last ? a.dq[at] : 0.0f;
    }
    __syncthreads();
    const int64_t n_rows = last - r0 < kTile ? last - r0 : kTile;
#pragma unroll
    for (int n = 0; n < kEntries; ++n) {
      const int64_t e = threadIdx.x + static_cast<int64_t>(n) * kThreads;
      if (e >= K * K) break;
      const int64_t k = e / K, k2 = e % K;
      for (int64_t r = 0; r < n_rows; ++r) acc[n] += sP[r * K + k] * sD[r * K + k2];
    }
  }
#pragma unroll
  for (int n = 0; n < kEntries; ++n) {
    const int64_t e = threadIdx.x + static_cast<int64_t>(n) * kThreads;
    if (e < K * K) a.part[(h * a.chunks + chunk) * K * K + e] = acc[n];
  }
}

// dM[h, l(k, k')] from the partials: G = Σ_chunks in order (double), both halves off the diagonal.
__global__ void __launch_bounds__(kThreads) MetricPackKernel(const MetricGradArgs a) {
  const int64_t K = a.d.K, L = K * (K + 1) / 2, h = blockIdx.x;
  for (int64_t l = threadIdx.x; l < L; l += kThreads) {
    int64_t k = 0, rest = l;
    while (rest >= K - k) rest -= K - k, ++k;
    const int64_t k2 = k + rest;
    double g = 0.0, gt = 0.0;
    for (int64_t c = 0; c < a.chunks; ++c) {
      const float* part = a.part + (h * a.chunks + c) * K * K;
      g += part[k * K + k2];
      gt += part[k2 * K + k];
    }
    a.dm[h * L + l] = static_cast<float>(k == k2 ? g : g + gt);
  }
}

// Seeded uniform values in [lo, hi) for the timing inputs (splitmix64 of seed and index).
__global__ void MetricFillKernel(float* p, int64_t n, uint64_t seed, float lo, float hi) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    p[i] = lo + (hi - lo) * (static_cast<float>(z >> 40) * (1.0f / 16777216.0f));
  }
}

// ---------------------------------------------------------------------------------------------
// Host planning and launches.

struct Plan {
  Dims d;
  int64_t rowBlocks, chunks, L, bhtk;
  size_t fwdSmem, querySmem, keySmem, partSmem;
  Layout ws;
};

int64_t AlignFloats(int64_t n) { return (n + 63) / 64 * 64; }

int MakePlan(int64_t B, int64_t H, int64_t T, int64_t K, Plan* p) {
  if (B < 1 || H < 1 || T < 1) return kErrShape;
  if (K < 1 || K > kMaxDim) return kErrDim;
  // grid.y and grid.z are below 2^16; T·T (the bias) and B·H·T·K stay far below 2^40.
  if (B > 65535 || H > 65535 || T > (int64_t{1} << 20)) return kErrTooLarge;
  if (B * H * T > (int64_t{1} << 34) / K) return kErrTooLarge;
  p->d = Dims{B, H, T, K};
  p->rowBlocks = (T + kWarps - 1) / kWarps;
  p->chunks = (B * T + kChunkRows - 1) / kChunkRows;
  p->L = K * (K + 1) / 2;
  p->bhtk = B * H * T * K;
  const int64_t tile = kTile * (K + 1);
  p->fwdSmem = static_cast<size_t>(K * K + tile + kWarps * K) * sizeof(float);
  p->querySmem = static_cast<size_t>(K * K + tile + 3 * kWarps * K) * sizeof(float);
  p->keySmem = static_cast<size_t>(kWarps * K + 2 * tile + 2 * kTile) * sizeof(float);
  p->partSmem = static_cast<size_t>(2 * kTile * K) * sizeof(float);
  Layout& w = p->ws;
  int64_t at = 0;
  w.ranges = at, at += AlignFloats(4 * T);
  w.lse = at, at += AlignFloats(B * H * T);
  w.c = at, at += AlignFloats(B * H * T);
  w.qs = at, at += AlignFloats(p->bhtk);
  w.dq = at, at += AlignFloats(p->bhtk);
  w.part = at, at += AlignFloats(H * p->chunks * K * K);
  w.total = at;
  return 0;
}

template <class Args>
cudaError_t Launch(void (*kernel)(Args), dim3 grid, size_t smem, cudaStream_t stream,
                   const Args& args) {
  void* params[] = {const_cast<Args*>(&args)};
  const cudaError_t e =
      cudaLaunchKernel(kernel, grid, dim3(kThreads), params, smem, stream);
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t LaunchRanges(const Plan& p, const float* bias, float* ws, cudaStream_t stream) {
  const float* b = bias;
  int64_t T = p.d.T;
  int* out = reinterpret_cast<int*>(ws + p.ws.ranges);
  void* params[] = {&b, &T, &out};
  const cudaError_t e = cudaLaunchKernel(MetricRangesKernel, dim3(1), dim3(kThreads), params,
                                         sizeof(int), stream);
  return e != cudaSuccess ? e : cudaGetLastError();
}

// The forward (y non-null) or the gradient's first pass (dy non-null).
cudaError_t LaunchForward(const Plan& p, const float* P, const float* M, const float* bias,
                          float scale, float* y, const float* dy, float* ws,
                          cudaStream_t stream) {
  CB_MA_TRY_CUDA(LaunchRanges(p, bias, ws, stream));
  FwdArgs a{p.d, scale, P, M, bias, reinterpret_cast<const int*>(ws + p.ws.ranges), y, dy,
            dy ? ws + p.ws.lse : nullptr, dy ? ws + p.ws.c : nullptr,
            dy ? ws + p.ws.qs : nullptr};
  const dim3 grid(static_cast<unsigned>(p.rowBlocks), static_cast<unsigned>(p.d.H),
                  static_cast<unsigned>(p.d.B));
  return p.d.K <= 32 ? Launch(MetricFwdKernel<1>, grid, p.fwdSmem, stream, a)
                     : Launch(MetricFwdKernel<2>, grid, p.fwdSmem, stream, a);
}

cudaError_t LaunchGrad(const Plan& p, const float* dy, const float* P, const float* M,
                       const float* bias, float scale, float* dp, float* dm, float* ws,
                       cudaStream_t stream) {
  CB_MA_TRY_CUDA(LaunchForward(p, P, M, bias, scale, nullptr, dy, ws, stream));
  GradArgs g{p.d, scale, P, M, bias, reinterpret_cast<const int*>(ws + p.ws.ranges), dy,
             ws + p.ws.lse, ws + p.ws.c, ws + p.ws.qs, ws + p.ws.dq, dp};
  const dim3 grid(static_cast<unsigned>(p.rowBlocks), static_cast<unsigned>(p.d.H),
                  static_cast<unsigned>(p.d.B));
  if (p.d.K <= 32) {
    CB_MA_TRY_CUDA(Launch(MetricQueryKernel<1>, grid, p.querySmem, stream, g));
    CB_MA_TRY_CUDA(Launch(MetricKeyKernel<1>, grid, p.keySmem, stream, g));
  } else {
    CB_MA_TRY_CUDA(Launch(MetricQueryKernel<2>, grid, p.querySmem, stream, g));
    CB_MA_TRY_CUDA(Launch(MetricKeyKernel<2>, grid, p.keySmem, stream, g));
  }
  MetricGradArgs m{p.d, P, ws + p.ws.dq, ws + p.ws.part, p.chunks, dm};
  CB_MA_TRY_CUDA(Launch(MetricPartialKernel,
                        dim3(static_cast<unsigned>(p.chunks), static_cast<unsigned>(p.d.H)),
                        p.partSmem, stream, m));
  return Launch(MetricPackKernel, dim3(static_cast<unsigned>(p.d.H)), 0, stream, m);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Exports.

// MetricAttention on host arrays: p [B, H, T, K], m [H, K(K+1)/2], bias [T, T] → y [B, H, T, K].
CB_CUDA_EXPORT int ClaimbenchMetricAttentionHost(const float* p, const float* m, const float* bias,
                                              float scale, int64_t B, int64_t H, int64_t T,
                                              int64_t K, float* y) {
  if (!p || !m || !bias || !y) return kErrNull;
  Plan plan;
  if (const int rc = MakePlan(B, H, T, K, &plan)) return rc;
  DeviceMemory mem;
  float *d_p = nullptr, *d_m = nullptr, *d_bias = nullptr, *d_y = nullptr, *d_ws = nullptr;
  CB_CUDA_TRY(Upload(&d_p, mem, p, plan.bhtk));
  CB_CUDA_TRY(Upload(&d_m, mem, m, H * plan.L));
  CB_CUDA_TRY(Upload(&d_bias, mem, bias, T * T));
  CB_CUDA_TRY(mem.Alloc(&d_y, plan.bhtk));
  CB_CUDA_TRY(mem.Alloc(&d_ws, plan.ws.total));
  CB_CUDA_TRY(LaunchForward(plan, d_p, d_m, d_bias, scale, d_y, nullptr, d_ws, nullptr));
  CB_CUDA_TRY(Download(y, d_y, plan.bhtk));
  return 0;
}

// MetricAttentionGrad on host arrays: dy, p [B, H, T, K], m, bias as above → dp [B, H, T, K],
// dm [H, K(K+1)/2].
CB_CUDA_EXPORT int ClaimbenchMetricAttentionGradHost(const float* dy, const float* p,
                                                  const float* m, const float* bias, float scale,
                                                  int64_t B, int64_t H, int64_t T, int64_t K,
                                                  float* dp, float* dm) {
  if (!dy || !p || !m || !bias || !dp || !dm) return kErrNull;
  Plan plan;
  if (const int rc = MakePlan(B, H, T, K, &plan)) return rc;
  DeviceMemory mem;
  float *d_dy = nullptr, *d_p = nullptr, *d_m = nullptr, *d_bias = nullptr;
  float *d_dp = nullptr, *d_dm = nullptr, *d_ws = nullptr;
  CB_CUDA_TRY(Upload(&d_dy, mem, dy, plan.bhtk));
  CB_CUDA_TRY(Upload(&d_p, mem, p, plan.bhtk));
  CB_CUDA_TRY(Upload(&d_m, mem, m, H * plan.L));
  CB_CUDA_TRY(Upload(&d_bias, mem, bias, T * T));
  CB_CUDA_TRY(mem.Alloc(&d_dp, plan.bhtk));
  CB_CUDA_TRY(mem.Alloc(&d_dm, H * plan.L));
  CB_CUDA_TRY(mem.Alloc(&d_ws, plan.ws.total));
  CB_CUDA_TRY(LaunchGrad(plan, d_dy, d_p, d_m, d_bias, scale, d_dp, d_dm, d_ws, nullptr));
  CB_CUDA_TRY(Download(dp, d_dp, plan.bhtk));
  CB_CUDA_TRY(Download(dm, d_dm, H * plan.L));
  return 0;
}

// The device workspace the Device entry points need, in bytes (≥ 256), or an error code.
CB_CUDA_EXPORT int64_t ClaimbenchMetricAttentionWorkspaceBytes(int64_t B, int64_t H, int64_t T,
                                                            int64_t K) {
  Plan plan;
  if (const int rc = MakePlan(B, H, T, K, &plan)) return rc;
  const int64_t floats = plan.ws.total > 64 ? plan.ws.total : 64;
  return floats * static_cast<int64_t>(sizeof(float));
}

// MetricAttention on device arrays with a device workspace of at least
// ClaimbenchMetricAttentionWorkspaceBytes bytes, queued on `stream`; does not synchronize.
CB_CUDA_EXPORT int ClaimbenchMetricAttentionDevice(const float* p, const float* m,
                                                const float* bias, float scale, int64_t B,
                                                int64_t H, int64_t T, int64_t K, float* y,
                                                void* workspace, int64_t workspace_bytes,
                                                void* stream) {
  if (!p || !m || !bias || !y || !workspace) return kErrNull;
  Plan plan;
  if (const int rc = MakePlan(B, H, T, K, &plan)) return rc;
  if (workspace_bytes < plan.ws.total * static_cast<int64_t>(sizeof(float))) return kErrArgument;
  CB_CUDA_TRY(LaunchForward(plan, p, m, bias, scale, y, nullptr, static_cast<float*>(workspace),
                          static_cast<cudaStream_t>(stream)));
  return 0;
}

// MetricAttentionGrad on device arrays, as ClaimbenchMetricAttentionDevice.
CB_CUDA_EXPORT int ClaimbenchMetricAttentionGradDevice(const float* dy, const float* p,
                                                    const float* m, const float* bias,
                                                    float scale, int64_t B, int64_t H, int64_t T,
                                                    int64_t K, float* dp, float* dm,
                                                    void* workspace, int64_t workspace_bytes,
                                                    void* stream) {
  if (!dy || !p || !m || !bias || !dp || !dm || !workspace) return kErrNull;
  Plan plan;
  if (const int rc = MakePlan(B, H, T, K, &plan)) return rc;
  if (workspace_bytes < plan.ws.total * static_cast<int64_t>(sizeof(float))) return kErrArgument;
  CB_CUDA_TRY(LaunchGrad(plan, dy, p, m, bias, scale, dp, dm, static_cast<float*>(workspace),
                       static_cast<cudaStream_t>(stream)));
  return 0;
}

// Times MetricAttention (backward = 0) or MetricAttentionGrad (backward = 1) on seeded device
// data: P, dY ~ U[−1, 1), M ~ U[−0.5, 0.5), the causal mask (causal = 1) or none, scale 1/√K.
// Two warm-up calls, then `repeats` calls between two events; *ms_per_call = their mean.
CB_CUDA_EXPORT int ClaimbenchMetricAttentionTime(int64_t B, int64_t H, int64_t T, int64_t K,
                                              int causal, int backward, int repeats,
                                              double* ms_per_call) {
  if (!ms_per_call) return kErrNull;
  if (repeats < 1) return kErrArgument;
  Plan plan;
  if (const int rc = MakePlan(B, H, T, K, &plan)) return rc;
  DeviceMemory mem;
  float *p = nullptr, *m = nullptr, *bias = nullptr, *dy = nullptr, *out = nullptr;
  float *dm = nullptr, *ws = nullptr;
  CB_CUDA_TRY(mem.Alloc(&p, plan.bhtk));
  CB_CUDA_TRY(mem.Alloc(&m, H * plan.L));
  CB_CUDA_TRY(mem.Alloc(&dy, plan.bhtk));
  CB_CUDA_TRY(mem.Alloc(&out, plan.bhtk));
  CB_CUDA_TRY(mem.Alloc(&dm, H * plan.L));
  CB_CUDA_TRY(mem.Alloc(&ws, plan.ws.total));
  const auto fill = [](float* q, int64_t n, uint64_t seed, float lo, float hi) {
    const int64_t blocks = (n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096;
    float* a0 = q;
    int64_t a1 = n;
    uint64_t a2 = seed;
    float a3 = lo, a4 = hi;
    void* params[] = {&a0, &a1, &a2, &a3, &a4};
    const cudaError_t e = cudaLaunchKernel(MetricFillKernel, dim3(static_cast<unsigned>(blocks)),
                                           dim3(256), params, 0, nullptr);
    return e != cudaSuccess ? e : cudaGetLastError();
  };
  CB_CUDA_TRY(fill(p, plan.bhtk, 1, -1.f, 1.f));
  CB_CUDA_TRY(fill(m, H * plan.L, 2, -0.5f, 0.5f));
  CB_CUDA_TRY(fill(dy, plan.bhtk, 3, -1.f, 1.f));
  {
    std::vector<float> host(static_cast<size_t>(T * T), 0.0f);
    for (int64_t i = 0; causal && i < T; ++i) {
      for (int64_t j = i + 1; j < T; ++j) host[static_cast<size_t>(i * T + j)] = -1e9f;
    }
    CB_CUDA_TRY(Upload(&bias, mem, host.data(), T * T));
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(K));
  const auto call = [&]() {
    return backward ? LaunchGrad(plan, dy, p, m, bias, scale, out, dm, ws, nullptr)
                    : LaunchForward(plan, p, m, bias, scale, out, nullptr, ws, nullptr);
  };
  return TimeCalls(call, repeats, ms_per_call);
}
