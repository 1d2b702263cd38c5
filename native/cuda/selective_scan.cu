// SelectiveScan and SelectiveScanGrad (Mamba's selective state-space recurrence, float32) on CUDA.
// The CPU kernels are native/kernels/selective_scan.cc; the op's definition is
// onnx/custom/selective_scan.ts.
//
// Semantics. U, Delta [Bt, D, L]; A [D, N]; B and C rank 4, [Bb, Db, N, Lb] with Bb ∈ {1, Bt},
// Db ∈ {1, D}, Lb ∈ {1, L}, broadcast to [Bt, D, N, L] (each with its own shape; LTI B is
// [1, D, N, 1], Mamba's selective B is [Bt, 1, N, L]). Per channel (b, d), from x = 0:
//   x_l[n] = exp(Δ_l A[d, n]) x_{l-1}[n] + Δ_l U_l B_l[n],   Y_l = Σ_n x_l[n] C_l[n],
// and LastState [Bt, D, N] = x_{L-1}. The gradient takes dY [Bt, D, L] and returns dU, dDelta
// [Bt, D, L], dA [D, N], dB (B's shape), dC (C's shape), with a_l = exp(Δ_l A):
//   g_l = dY_l C_l + a_{l+1} g_{l+1} (g_L = 0),   dC_l = dY_l x_l,   dB_l = g_l Δ_l U_l,
//   dU_l = Δ_l Σ_n g_l B_l,   dDelta_l = U_l Σ_n g_l B_l + Σ_n g_l x_{l-1} a_l A,
//   dA = Σ_{b,l} g_l x_{l-1} a_l Δ_l,   dB and dC summed over their operand's broadcast dims.
//
// Design.
// - A team of G lanes (G = 4, 8, 16 or 32, the power of two ≥ N, at least 4, at most 32) scans
//   one channel (b, d); lane λ owns the K states n = λ, λ + G (K = 1 for N ≤ 32, 2 for
//   N ≤ 64) in registers. A block is 256 threads = 256 / G teams = channels
//   d0 .. d0 + teams − 1 of one batch row b, so that all its teams share a selective B, C row.
// - The length is walked sequentially in chunks of T steps (T = 16, or 8 when K = 2). Per chunk
//   the block stages U and Delta (and dY) rows and the B and C tiles (one tile when the operand
//   is shared across d, one per team when not; none when the operand is constant over L: it is
//   then held in registers) in shared memory with coalesced loads, padding the steps past L
//   with zeros (Δ = 0 makes a padded step the identity: a = 1, Δ·U = 0), so no step needs a
//   guard. Rows have stride T + 1 so that lanes and teams fall on distinct banks.
// - Σ_n: every lane accumulates its T per-step partials, then the team reduces all T at once
//   with a recursive-halving reduce-scatter of warp shuffles (T − T/G shuffles per lane where
//   T ≥ G, instead of T·log2 G; the lane λ ends holding the sums of steps λ·T/G ..
//   (λ+1)·T/G − 1, or of step λ/(G/T) when T < G); the owners write the step outputs into a
//   shared row that the block stores coalesced.
// - The gradient kernel first runs the recurrence forward, saving the state at every chunk
//   start except the last (a checkpoint workspace, [blocks][chunks − 1][K][256] floats), then
//   walks the chunks backward: it recomputes the chunk's states x and decays a in registers
//   from its checkpoint and walks the T steps in reverse, carrying a_{l+1} g_{l+1}.
// - Reductions are deterministic (no atomics; every address has exactly one writer and every
//   sum a fixed order): dB/dC along L (operand constant over L) accumulate in registers; across
//   the teams of a block (operand shared across d) in shared memory, summed in team order;
//   across blocks and batch rows through a partial buffer [Bt, ndg, N, Lb] (ndg = blocks per
//   row when Db = 1, else D) that a second kernel sums in (b, dg) order. dA goes through a
//   partial [Bt, D, N] the same way. Where nothing is left to sum across blocks (Bb = Bt and
//   Db = D, or Db = 1 with one block per row; Bt = 1 for dA) the partial is the output itself.
// - The per-block code is written once, in __host__ __device__ templates over a device policy
//   (thread and block index, __syncthreads, shuffles, global and shared loads and stores), so
//   that a host emulator can run the very same code; the kernels instantiate it with CudaDev.
//
// Exports (extern "C", default visibility; host pointers unless named Device):
//   ClaimbenchSelectiveScanHost, ClaimbenchSelectiveScanGradHost: copy in, run, copy out, free;
//   ClaimbenchSelectiveScanDevice, ClaimbenchSelectiveScanGradDevice (+ GradWorkspaceBytes):
//     device pointers (shapes stay host pointers), on the given stream (null: the default);
//   ClaimbenchSelectiveScanTime: seeded device inputs, mean milliseconds per call.
// They return 0, or −(the CUDA error code), or one of the codes below (checked before any CUDA
// call, so they come back the same without a GPU).

#include <cuda_runtime.h>

#include "host.cuh"

#include <cstddef>
#include <cstdint>
#include <vector>

#define CB_SS_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define CB_SS_UNROLL _Pragma("unroll")
#else
#define CB_SS_UNROLL
#endif

namespace {

// The shape error codes (CUDA's own codes stay below 1000).
constexpr int kErrShape = -1000;      // a size < 1, or B/C not [1|Bt, 1|D, N, 1|L]
constexpr int kErrStateSize = -1001;  // N outside [1, 64]
constexpr int kErrNull = -1002;       // a required pointer is null
constexpr int kErrTooLarge = -1003;   // sizes beyond what the kernels index (grid, int64)
constexpr int kErrArgument = -1004;   // repeats < 1, or a workspace smaller than required

constexpr int kThreads = 256;  // threads per block
constexpr int kMaxState = 64;  // the largest N

// The compile-time shape of a block: G lanes per team, K states per lane, T steps per chunk.
template <int G, int K>
struct Config {
  static constexpr int kLanes = G;
  static constexpr int kSlots = K;
  static constexpr int kTeams = kThreads / G;
  static constexpr int kT = K == 1 ? 16 : 8;
};

// Calls f(Config<G, K>{}) for the configuration that serves N (1 ≤ N ≤ 64).
template <class F>
auto WithConfig(int64_t N, F&& f) {
  if (N <= 4) return f(Config<4, 1>{});
  if (N <= 8) return f(Config<8, 1>{});
  if (N <= 16) return f(Config<16, 1>{});
  if (N <= 32) return f(Config<32, 1>{});
  return f(Config<32, 2>{});
}

CB_SS_HD int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

// B or C: its data [nb, nd, N, nl] (row-major), the element strides that broadcast it to
// [Bt, D, N, L] (0 along a broadcast dim), and where its chunk tile sits in shared memory.
struct Operand {
  const float* p;
  int64_t nb, nd, nl;
  int64_t sb, sd, sn, sl;
  int rows;  // tile rows: 0 when nl == 1 (held in registers), 1 when nd == 1, else teams
  int tile;  // offset of the tile [rows][N][T + 1] in the block's shared floats
};

CB_SS_HD int64_t OperandOffset(const Operand& o, int64_t b, int64_t d, int64_t n, int64_t l) {
  return b * o.sb + d * o.sd + n * o.sn + l * o.sl;
}

// Where one of dB and dC goes: the partial [Bt, ndg, N, nl] of its operand (the gradient itself
// when nothing is left to sum) and the offset of its staging area in shared memory.
struct GradTarget {
  float* partial;
  int64_t ndg;  // nd == 1: blocks per batch row (the teams' sums); else D
  int stage;
};

struct ScanDims {
  int64_t Bt, D, L, N;
  int64_t nDB;      // blocks per batch row: ceil(D / teams)
  int64_t nChunks;  // ceil(L / T)
};

struct FwdArgs {
  ScanDims s;
  const float* u;
  const float* delta;
  const float* A;
  Operand B, C;
  float* y;
  float* last;
  int rowU, rowD, rowY;  // shared rows [teams][T + 1]
};

struct BwdArgs {
  ScanDims s;
  const float* dy;
  const float* u;
  const float* delta;
  const float* A;
  Operand B, C;
  float* du;
  float* ddelta;
  GradTarget gB, gC;
  float* pA;  // [Bt, D, N], the partial of dA (dA itself when Bt == 1)
  float* ck;  // checkpoints [blocks][nChunks − 1][K][kThreads]
  int rowU, rowD, rowDY, rowDU, rowDD;
};

// out[bb, db, n, lb] = Σ_{b} Σ_{dg} partial[b, dg, n, lb], b over all Bt when nb == 1 (else bb),
// dg over all ndg when nd == 1 (else db), in that order.
struct ReduceArgs {
  const float* partial;
  float* out;
  int64_t Bt, ndg, N, nb, nd, nl, total;
};

// What a thread knows of its place: team tm, lane, block blk = (b, dblk), channel d (dc: d
// clamped into range for the teams past D, which compute on zeros and write nothing).
template <int G>
struct Ctx {
  int tid, tm, lane, nActive;
  int64_t blk, b, dblk, d0, d, dc;
  bool active;
};

template <int G, class Dev>
CB_SS_HD Ctx<G> MakeCtx(Dev& dev, const ScanDims& s) {
  constexpr int kTeams = kThreads / G;
  Ctx<G> c;
  c.tid = dev.tid();
  c.tm = c.tid / G;
  c.lane = c.tid % G;
  c.blk = dev.bid();
  c.b = c.blk / s.nDB;
  c.dblk = c.blk % s.nDB;
  c.d0 = c.dblk * kTeams;
  c.d = c.d0 + c.tm;
  c.active = c.d < s.D;
  c.dc = c.active ? c.d : s.D - 1;
  c.nActive = static_cast<int>(Min64(kTeams, s.D - c.d0));
  return c;
}

// rows[r][j] = src[b, d0 + r, l0 + j] for the chunk's steps, 0 past L or past D.
template <int G, int T, class Dev>
CB_SS_HD void LoadRows(Dev& dev, const Ctx<G>& c, const ScanDims& s, const float* src,
                       float* rows, int64_t l0, int cnt) {
  constexpr int kTeams = kThreads / G;
  for (int e = c.tid; e < kTeams * T; e += kThreads) {
    const int r = e / T, j = e % T;
    const int64_t d = c.d0 + r;
    float v = 0.f;
    if (d < s.D && j < cnt) v = dev.ld(src + ((c.b * s.D + d) * s.L + l0 + j));
    dev.sst(rows + r * (T + 1) + j, v);
  }
}

// dst[b, d0 + r, l0 + j] = rows[r][j] for the chunk's steps of the block's channels.
template <int G, int T, class Dev>
CB_SS_HD void StoreRows(Dev& dev, const Ctx<G>& c, const ScanDims& s, const float* rows,
                        float* dst, int64_t l0, int cnt) {
  constexpr int kTeams = kThreads / G;
  for (int e = c.tid; e < kTeams * T; e += kThreads) {
    const int r = e / T, j = e % T;
    if (r < c.nActive && j < cnt) {
      dev.st(dst + ((c.b * s.D + c.d0 + r) * s.L + l0 + j), dev.sld(rows + r * (T + 1) + j));
    }
  }
}

// tile[r][n][j] = operand[b, d0 + r, n, l0 + j] (0 past L or past D), for an operand over L.
template <int G, int T, class Dev>
CB_SS_HD void LoadTile(Dev& dev, const Ctx<G>& c, const ScanDims& s, const Operand& o, float* sm,
                       int64_t l0, int cnt) {
  const int N = static_cast<int>(s.N);
  const int per = N * T;
  for (int e = c.tid; e < o.rows * per; e += kThreads) {
    const int r = e / per, rem = e % per, n = rem / T, j = rem % T;
    const int64_t d = c.d0 + r;  // rows == 1 when nd == 1, where sd == 0
    float v = 0.f;
    if (d < s.D && j < cnt) v = dev.ld(o.p + OperandOffset(o, c.b, d, n, l0 + j));
    dev.sst(sm + o.tile + (r * N + n) * (T + 1) + j, v);
  }
}

// A lane's view of B or C: its K values in registers (constant over L) or its K tile rows.
template <int K>
struct LaneOperand {
  bool konst;
  float reg[K];
  const float* tile[K];
};

template <int G, int K, int T, class Dev>
CB_SS_HD LaneOperand<K> MakeLaneOperand(Dev& dev, const Ctx<G>& c, const ScanDims& s,
                                        const Operand& o, const float* sm, const int (&nn)[K]) {
  LaneOperand<K> v;
  v.konst = o.nl == 1;
  const int row = o.nd == 1 ? 0 : c.tm;
CB_SS_UNROLL
  for (int k = 0; k < K; ++k) {
    if (v.konst) {
      v.reg[k] = dev.ld(o.p + OperandOffset(o, c.b, c.dc, nn[k], 0));
      v.tile[k] = nullptr;
    } else {
      v.reg[k] = 0.f;
      v.tile[k] = sm + o.tile + (row * static_cast<int>(s.N) + nn[k]) * (T + 1);
    }
  }
  return v;
}

template <int K, class Dev>
CB_SS_HD float At(Dev& dev, const LaneOperand<K>& o, int k, int j) {
  return o.konst ? o.reg[k] : dev.sld(o.tile[k] + j);
}

// The team's reduce-scatter of v[T] over its G lanes, stage by stage (xor offset O, H values
// still being halved): the lane whose bit O is set keeps the upper half and receives the
// partner's upper half; once one value is left, plain butterflies. Every lane calls every
// shuffle (uniform control flow).
template <int O, int H, int T, class Dev>
CB_SS_HD void ReduceScatter(Dev& dev, int lane, float (&v)[T]) {
  if constexpr (O >= 1) {
    if constexpr (H >= 2) {
      constexpr int h = H / 2;
      const bool up = (lane & O) != 0;
CB_SS_UNROLL
      for (int i = 0; i < h; ++i) {
        const float send = up ? v[i] : v[i + h];
        const float keep = up ? v[i + h] : v[i];
        v[i] = keep + dev.shfl_xor(send, O);
      }
      ReduceScatter<O / 2, h, T>(dev, lane, v);
    } else {
      v[0] += dev.shfl_xor(v[0], O);
      ReduceScatter<O / 2, H, T>(dev, lane, v);
    }
  }
}

// After ReduceScatter<G / 2, T>: the step whose sum v[i] holds (i < Owned<G, T>::kPer), and
// whether the lane writes it (when T < G, G / T lanes hold each step's sum).
template <int G, int T>
struct Owned {
  static constexpr int kPer = T >= G ? T / G : 1;
  static CB_SS_HD int Step(int lane, int i) {
    if constexpr (T >= G) {
      return lane * (T / G) + i;
    } else {
      return lane / (G / T);
    }
  }
  static CB_SS_HD bool Writes(int lane) {
    if constexpr (T >= G) {
      return true;
    } else {
      return lane % (G / T) == 0;
    }
  }
};

// The forward scan of one block (teams of G lanes, K states per lane).
template <int G, int K, class Dev>
CB_SS_HD void ForwardBlock(Dev& dev, const FwdArgs& a, float* sm) {
  constexpr int T = Config<G, K>::kT;
  constexpr int TP = T + 1;
  using Own = Owned<G, T>;
  const ScanDims& s = a.s;
  const Ctx<G> c = MakeCtx<G>(dev, s);

  int nn[K];
  bool valid[K];
  float Ad[K], x[K];
CB_SS_UNROLL
  for (int k = 0; k < K; ++k) {
    const int n = c.lane + k * G;
    valid[k] = n < s.N;
    nn[k] = valid[k] ? n : 0;
    Ad[k] = dev.ld(a.A + (c.dc * s.N + nn[k]));
    x[k] = 0.f;
  }
  const LaneOperand<K> Bv = MakeLaneOperand<G, K, T>(dev, c, s, a.B, sm, nn);
  const LaneOperand<K> Cv = MakeLaneOperand<G, K, T>(dev, c, s, a.C, sm, nn);
  const float* rowU = sm + a.rowU + c.tm * TP;
  const float* rowD = sm + a.rowD + c.tm * TP;

  for (int64_t ch = 0; ch < s.nChunks; ++ch) {
    const int64_t l0 = ch * T;
    const int cnt = static_cast<int>(Min64(T, s.L - l0));
    LoadRows<G, T>(dev, c, s, a.u, sm + a.rowU, l0, cnt);
    LoadRows<G, T>(dev, c, s, a.delta, sm + a.rowD, l0, cnt);
    if (a.B.nl != 1) LoadTile<G, T>(dev, c, s, a.B, sm, l0, cnt);
    if (a.C.nl != 1) LoadTile<G, T>(dev, c, s, a.C, sm, l0, cnt);
    dev.sync();

    float p[T];
CB_SS_UNROLL
    for (int j = 0; j < T; ++j) {
      const float dl = dev.sld(rowD + j);
      const float du = dl * dev.sld(rowU + j);
      float acc = 0.f;
CB_SS_UNROLL
      for (int k = 0; k < K; ++k) {
        x[k] = expf(dl * Ad[k]) * x[k] + du * At(dev, Bv, k, j);
        if (valid[k]) acc += x[k] * At(dev, Cv, k, j);
      }
      p[j] = acc;
    }
    ReduceScatter<G / 2, T, T>(dev, c.lane, p);
    if (Own::Writes(c.lane)) {
CB_SS_UNROLL
      for (int i = 0; i < Own::kPer; ++i) {
        dev.sst(sm + a.rowY + c.tm * TP + Own::Step(c.lane, i), p[i]);
      }
    }
    dev.sync();
    StoreRows<G, T>(dev, c, s, sm + a.rowY, a.y, l0, cnt);
  }
  if (c.active) {
CB_SS_UNROLL
    for (int k = 0; k < K; ++k) {
      if (valid[k]) dev.st(a.last + ((c.b * s.D + c.d) * s.N + nn[k]), x[k]);
    }
  }
}

// Writes the chunk's staged dB or dC (operand over L) to its partial: summed over the teams in
// team order when the operand is shared across d, else each team's own.
template <int G, int T, class Dev>
CB_SS_HD void FlushGrad(Dev& dev, const Ctx<G>& c, const ScanDims& s, const Operand& o,
                        const GradTarget& g, const float* sm, int64_t l0, int cnt) {
  constexpr int kTeams = kThreads / G;
  constexpr int TP = T + 1;
  const int N = static_cast<int>(s.N);
  const float* st = sm + g.stage;
  if (o.nd == 1) {
    for (int e = c.tid; e < N * T; e += kThreads) {
      const int n = e / T, j = e % T;
      if (j < cnt) {
        float sum = 0.f;
        for (int r = 0; r < c.nActive; ++r) sum += dev.sld(st + (r * N + n) * TP + j);
        dev.st(g.partial + (((c.b * g.ndg + c.dblk) * s.N + n) * s.L + l0 + j), sum);
      }
    }
  } else {
    for (int e = c.tid; e < kTeams * N * T; e += kThreads) {
      const int r = e / (N * T), rem = e % (N * T), n = rem / T, j = rem % T;
      if (r < c.nActive && j < cnt) {
        dev.st(g.partial + (((c.b * g.ndg + c.d0 + r) * s.N + n) * s.L + l0 + j),
               dev.sld(st + (r * N + n) * TP + j));
      }
    }
  }
}

// Writes dB or dC of an operand constant over L (acc: the lane's sums over L) to its partial:
// summed over the teams in team order when the operand is shared across d (a block barrier:
// call uniformly), else each channel's own.
template <int G, int K, class Dev>
CB_SS_HD void FinishGrad(Dev& dev, const Ctx<G>& c, const ScanDims& s, const Operand& o,
                         const GradTarget& g, float* sm, const float (&acc)[K],
                         const bool (&valid)[K]) {
  const int N = static_cast<int>(s.N);
  if (o.nd == 1) {
    float* st = sm + g.stage;
CB_SS_UNROLL
    for (int k = 0; k < K; ++k) {
      if (valid[k]) dev.sst(st + c.tm * N + c.lane + k * G, acc[k]);
    }
    dev.sync();
    for (int n = c.tid; n < N; n += kThreads) {
      float sum = 0.f;
      for (int r = 0; r < c.nActive; ++r) sum += dev.sld(st + r * N + n);
      dev.st(g.partial + ((c.b * g.ndg + c.dblk) * s.N + n), sum);
    }
  } else if (c.active) {
CB_SS_UNROLL
    for (int k = 0; k < K; ++k) {
      if (valid[k]) dev.st(g.partial + ((c.b * g.ndg + c.d) * s.N + c.lane + k * G), acc[k]);
    }
  }
}

// The gradient of one block: checkpoints forward, then the chunks in reverse.
template <int G, int K, class Dev>
CB_SS_HD void BackwardBlock(Dev& dev, const BwdArgs& a, float* sm) {
  constexpr int T = Config<G, K>::kT;
  constexpr int TP = T + 1;
  using Own = Owned<G, T>;
  const ScanDims& s = a.s;
  const Ctx<G> c = MakeCtx<G>(dev, s);
  const int N = static_cast<int>(s.N);

  int nn[K];
  bool valid[K];
  float Ad[K], x[K];
CB_SS_UNROLL
  for (int k = 0; k < K; ++k) {
    const int n = c.lane + k * G;
    valid[k] = n < s.N;
    nn[k] = valid[k] ? n : 0;
    Ad[k] = dev.ld(a.A + (c.dc * s.N + nn[k]));
    x[k] = 0.f;
  }
  const LaneOperand<K> Bv = MakeLaneOperand<G, K, T>(dev, c, s, a.B, sm, nn);
  const LaneOperand<K> Cv = MakeLaneOperand<G, K, T>(dev, c, s, a.C, sm, nn);
  const float* rowU = sm + a.rowU + c.tm * TP;
  const float* rowD = sm + a.rowD + c.tm * TP;
  const float* rowDY = sm + a.rowDY + c.tm * TP;
  const int64_t nCk = s.nChunks - 1;
  float* ck = a.ck + c.blk * nCk * K * kThreads + c.tid;  // + (ch * K + k) * kThreads

  // Forward: the state before every chunk but the last; x ends as the state before the last.
  for (int64_t ch = 0; ch < nCk; ++ch) {
CB_SS_UNROLL
    for (int k = 0; k < K; ++k) dev.st(ck + (ch * K + k) * kThreads, x[k]);
    const int64_t l0 = ch * T;
    const int cnt = static_cast<int>(Min64(T, s.L - l0));
    LoadRows<G, T>(dev, c, s, a.u, sm + a.rowU, l0, cnt);
    LoadRows<G, T>(dev, c, s, a.delta, sm + a.rowD, l0, cnt);
    if (a.B.nl != 1) LoadTile<G, T>(dev, c, s, a.B, sm, l0, cnt);
    dev.sync();
CB_SS_UNROLL
    for (int j = 0; j < T; ++j) {
      const float dl = dev.sld(rowD + j);
      const float du = dl * dev.sld(rowU + j);
CB_SS_UNROLL
      for (int k = 0; k < K; ++k) x[k] = expf(dl * Ad[k]) * x[k] + du * At(dev, Bv, k, j);
    }
    dev.sync();
  }

  // Backward: carry = a_{l+1} g_{l+1}; gA, accB, accC sum over l.
  float carry[K], gA[K], accB[K], accC[K];
CB_SS_UNROLL
  for (int k = 0; k < K; ++k) carry[k] = gA[k] = accB[k] = accC[k] = 0.f;
  for (int64_t ch = nCk; ch >= 0; --ch) {
    const int64_t l0 = ch * T;
    const int cnt = static_cast<int>(Min64(T, s.L - l0));
    LoadRows<G, T>(dev, c, s, a.u, sm + a.rowU, l0, cnt);
    LoadRows<G, T>(dev, c, s, a.delta, sm + a.rowD, l0, cnt);
    LoadRows<G, T>(dev, c, s, a.dy, sm + a.rowDY, l0, cnt);
    if (a.B.nl != 1) LoadTile<G, T>(dev, c, s, a.B, sm, l0, cnt);
    if (a.C.nl != 1) LoadTile<G, T>(dev, c, s, a.C, sm, l0, cnt);
    dev.sync();

    float x0[K];
CB_SS_UNROLL
    for (int k = 0; k < K; ++k) x0[k] = ch == nCk ? x[k] : dev.ldw(ck + (ch * K + k) * kThreads);
    float xs[T][K], as[T][K];  // the state after each step, and each step's decay
CB_SS_UNROLL
    for (int j = 0; j < T; ++j) {
      const float dl = dev.sld(rowD + j);
      const float du = dl * dev.sld(rowU + j);
CB_SS_UNROLL
      for (int k = 0; k < K; ++k) {
        const float prev = j == 0 ? x0[k] : xs[j > 0 ? j - 1 : 0][k];
        as[j][k] = expf(dl * Ad[k]);
        xs[j][k] = as[j][k] * prev + du * At(dev, Bv, k, j);
      }
    }

    float s1[T], s2[T];  // the lane's Σ g B and Σ g x_{l-1} a A per step
    float* stageB = sm + a.gB.stage + c.tm * N * TP;
    float* stageC = sm + a.gC.stage + c.tm * N * TP;
CB_SS_UNROLL
    for (int j = T - 1; j >= 0; --j) {
      const float dl = dev.sld(rowD + j);
      const float du = dl * dev.sld(rowU + j);
      const float dyl = dev.sld(rowDY + j);
      float t1 = 0.f, t2 = 0.f;
CB_SS_UNROLL
      for (int k = 0; k < K; ++k) {
        const float prev = j == 0 ? x0[k] : xs[j > 0 ? j - 1 : 0][k];
        const float g = dyl * At(dev, Cv, k, j) + carry[k];
        const float ga = g * as[j][k];
        const float gax = ga * prev;
        carry[k] = ga;
        gA[k] += gax * dl;
        const float gb = g * du;         // dB_l[n]
        const float gc = dyl * xs[j][k];  // dC_l[n]
        if (valid[k]) {
          t1 += g * At(dev, Bv, k, j);
          t2 += gax * Ad[k];
          const int n = c.lane + k * G;
          if (Bv.konst) {
            accB[k] += gb;
          } else {
            dev.sst(stageB + n * TP + j, gb);
          }
          if (Cv.konst) {
            accC[k] += gc;
          } else {
            dev.sst(stageC + n * TP + j, gc);
          }
        }
      }
      s1[j] = t1;
      s2[j] = t2;
    }
    ReduceScatter<G / 2, T, T>(dev, c.lane, s1);
    ReduceScatter<G / 2, T, T>(dev, c.lane, s2);
    if (Own::Writes(c.lane)) {
CB_SS_UNROLL
      for (int i = 0; i < Own::kPer; ++i) {
        const int j = Own::Step(c.lane, i);
        const float dl = dev.sld(rowD + j), ul = dev.sld(rowU + j);
        dev.sst(sm + a.rowDU + c.tm * TP + j, dl * s1[i]);
        dev.sst(sm + a.rowDD + c.tm * TP + j, ul * s1[i] + s2[i]);
      }
    }
    dev.sync();
    StoreRows<G, T>(dev, c, s, sm + a.rowDU, a.du, l0, cnt);
    StoreRows<G, T>(dev, c, s, sm + a.rowDD, a.ddelta, l0, cnt);
    if (!Bv.konst) FlushGrad<G, T>(dev, c, s, a.B, a.gB, sm, l0, cnt);
    if (!Cv.konst) FlushGrad<G, T>(dev, c, s, a.C, a.gC, sm, l0, cnt);
  }

  if (c.active) {
CB_SS_UNROLL
    for (int k = 0; k < K; ++k) {
      if (valid[k]) dev.st(a.pA + ((c.b * s.D + c.d) * s.N + nn[k]), gA[k]);
    }
  }
  if (Bv.konst) FinishGrad<G, K>(dev, c, s, a.B, a.gB, sm, accB, valid);
  if (Cv.konst) FinishGrad<G, K>(dev, c, s, a.C, a.gC, sm, accC, valid);
}

template <class Dev>
CB_SS_HD void ReduceElem(Dev& dev, const ReduceArgs& r, int64_t i) {
  const int64_t lb = i % r.nl;
  int64_t rest = i / r.nl;
  const int64_t n = rest % r.N;
  rest /= r.N;
  const int64_t db = rest % r.nd;
  const int64_t bb = rest / r.nd;
  const int64_t b0 = r.nb == 1 ? 0 : bb, b1 = r.nb == 1 ? r.Bt : bb + 1;
  const int64_t g0 = r.nd == 1 ? 0 : db, g1 = r.nd == 1 ? r.ndg : db + 1;
  float sum = 0.f;
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t g = g0; g < g1; ++g) {
      sum += dev.ld(r.partial + (((b * r.ndg + g) * r.N + n) * r.nl + lb));
    }
  }
  dev.st(r.out + i, sum);
}

// ---------------------------------------------------------------------------------------------
// The device policy and the kernels.

struct CudaDev {
  __device__ __forceinline__ int tid() const { return static_cast<int>(threadIdx.x); }
  __device__ __forceinline__ int64_t bid() const { return static_cast<int64_t>(blockIdx.x); }
  __device__ __forceinline__ void sync() { __syncthreads(); }
  __device__ __forceinline__ float shfl_xor(float v, int mask) {
    return __shfl_xor_sync(0xffffffffu, v, mask);
  }
  // Inputs, read-only for the whole kernel.
  __device__ __forceinline__ float ld(const float* p) { return __ldg(p); }
  // Memory this kernel wrote (the checkpoints): a coherent load.
  __device__ __forceinline__ float ldw(const float* p) { return *p; }
  __device__ __forceinline__ void st(float* p, float v) { *p = v; }
  __device__ __forceinline__ float sld(const float* p) { return *p; }
  __device__ __forceinline__ void sst(float* p, float v) { *p = v; }
};

template <int G, int K>
__global__ void __launch_bounds__(kThreads) SelectiveScanFwdKernel(const FwdArgs a) {
  extern __shared__ float cb_ss_smem[];
  CudaDev dev;
  ForwardBlock<G, K>(dev, a, cb_ss_smem);
}

template <int G, int K>
__global__ void __launch_bounds__(kThreads) SelectiveScanBwdKernel(const BwdArgs a) {
  extern __shared__ float cb_ss_smem[];
  CudaDev dev;
  BackwardBlock<G, K>(dev, a, cb_ss_smem);
}

__global__ void __launch_bounds__(kThreads) SelectiveScanReduceKernel(const ReduceArgs r) {
  CudaDev dev;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < r.total;
       i += stride) {
    ReduceElem(dev, r, i);
  }
}

// Seeded uniform values in [lo, hi) for the timing inputs (splitmix64 of seed and index).
__global__ void SelectiveScanFillKernel(float* p, int64_t n, uint64_t seed, float lo, float hi) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float unit = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
    p[i] = lo + (hi - lo) * unit;
  }
}

// ---------------------------------------------------------------------------------------------
// Host planning: validation, the configuration, shared-memory and workspace layouts.

struct Plan {
  ScanDims s;
  int G, K, T, teams;
  int64_t blocks;
  Operand B, C;  // strides, shapes and rows (pointers and tiles set per direction)
  int64_t bElems, cElems, bdl;  // B's and C's sizes; Bt·D·L
  // Forward shared memory (floats).
  int fRowU, fRowD, fRowY, fTileB, fTileC;
  size_t fwdSmemBytes;
  // Backward shared memory (floats).
  int bRowU, bRowD, bRowDY, bRowDU, bRowDD, bTileB, bTileC, bStageB, bStageC;
  size_t bwdSmemBytes;
  // Gradient reductions: per-operand blocks-per-group, whether the partial is the output.
  int64_t ndgB, ndgC;
  bool directB, directC, directA;
  // Workspace (floats, each part 64-float aligned).
  int64_t wsCk, wsB, wsC, wsA, wsFloats;
};

// Shapes [nb, nd, N, nl]: whether s broadcasts to [Bt, D, N, L]; fills the operand's strides.
bool MakeOperand(const int64_t* shape, int64_t Bt, int64_t D, int64_t L, int64_t N, Operand* o) {
  const int64_t nb = shape[0], nd = shape[1], n = shape[2], nl = shape[3];
  if (n != N || (nb != 1 && nb != Bt) || (nd != 1 && nd != D) || (nl != 1 && nl != L)) {
    return false;
  }
  o->p = nullptr;
  o->nb = nb;
  o->nd = nd;
  o->nl = nl;
  o->sl = nl == 1 ? 0 : 1;
  o->sn = nl;
  o->sd = nd == 1 ? 0 : N * nl;
  o->sb = nb == 1 ? 0 : nd * N * nl;
  o->rows = 0;
  o->tile = 0;
  return true;
}

int64_t AlignFloats(int64_t n) { return (n + 63) / 64 * 64; }

int MakePlan(int64_t Bt, int64_t D, int64_t L, int64_t N, const int64_t* b_shape,
             const int64_t* c_shape, Plan* p) {
  if (Bt < 1 || D < 1 || L < 1) return kErrShape;
  if (N < 1 || N > kMaxState) return kErrStateSize;
  constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;
  constexpr int64_t kMaxElems = int64_t{1} << 40;  // Bt·D·L: every index stays far below 2^63
  if (Bt > kMaxDim || D > kMaxDim || L > kMaxDim) return kErrTooLarge;
  if (Bt * D > kMaxElems / L) return kErrTooLarge;
  if (!MakeOperand(b_shape, Bt, D, L, N, &p->B) || !MakeOperand(c_shape, Bt, D, L, N, &p->C)) {
    return kErrShape;
  }
  WithConfig(N, [&](auto cfg) {
    using Cfg = decltype(cfg);
    p->G = Cfg::kLanes;
    p->K = Cfg::kSlots;
    p->T = Cfg::kT;
    p->teams = Cfg::kTeams;
    return 0;
  });
  const int64_t nDB = (D + p->teams - 1) / p->teams;
  p->blocks = Bt * nDB;
  if (p->blocks > kMaxDim) return kErrTooLarge;
  p->s = ScanDims{Bt, D, L, N, nDB, (L + p->T - 1) / p->T};
  p->bdl = Bt * D * L;
  p->bElems = p->B.nb * p->B.nd * N * p->B.nl;
  p->cElems = p->C.nb * p->C.nd * N * p->C.nl;

  const int TP = p->T + 1, row = p->teams * TP, Ni = static_cast<int>(N);
  for (Operand* o : {&p->B, &p->C}) o->rows = o->nl == 1 ? 0 : o->nd == 1 ? 1 : p->teams;
  const int tileB = p->B.rows * Ni * TP, tileC = p->C.rows * Ni * TP;
  int off = 0;
  p->fRowU = off, off += row;
  p->fRowD = off, off += row;
  p->fRowY = off, off += row;
  p->fTileB = off, off += tileB;
  p->fTileC = off, off += tileC;
  p->fwdSmemBytes = static_cast<size_t>(off) * sizeof(float);
  off = 0;
  p->bRowU = off, off += row;
  p->bRowD = off, off += row;
  p->bRowDY = off, off += row;
  p->bRowDU = off, off += row;
  p->bRowDD = off, off += row;
  p->bTileB = off, off += tileB;
  p->bTileC = off, off += tileC;
  const auto stage = [&](const Operand& o) {
    return o.nl != 1 ? p->teams * Ni * TP : o.nd == 1 ? p->teams * Ni : 0;
  };
  p->bStageB = off, off += stage(p->B);
  p->bStageC = off, off += stage(p->C);
  p->bwdSmemBytes = static_cast<size_t>(off) * sizeof(float);

  p->ndgB = p->B.nd == 1 ? nDB : D;
  p->ndgC = p->C.nd == 1 ? nDB : D;
  p->directB = p->B.nb == Bt && p->ndgB == p->B.nd;
  p->directC = p->C.nb == Bt && p->ndgC == p->C.nd;
  p->directA = Bt == 1;
  int64_t ws = 0;
  p->wsCk = ws;
  ws += AlignFloats(p->blocks * (p->s.nChunks - 1) * p->K * kThreads);
  p->wsB = ws;
  if (!p->directB) ws += AlignFloats(Bt * p->ndgB * N * p->B.nl);
  p->wsC = ws;
  if (!p->directC) ws += AlignFloats(Bt * p->ndgC * N * p->C.nl);
  p->wsA = ws;
  if (!p->directA) ws += AlignFloats(Bt * D * N);
  p->wsFloats = ws;
  return 0;
}

FwdArgs MakeFwdArgs(const Plan& p, const float* u, const float* delta, const float* A,
                    const float* B, const float* C, float* y, float* last) {
  FwdArgs a;
  a.s = p.s;
  a.u = u;
  a.delta = delta;
  a.A = A;
  a.B = p.B;
  a.B.p = B;
  a.B.tile = p.fTileB;
  a.C = p.C;
  a.C.p = C;
  a.C.tile = p.fTileC;
  a.y = y;
  a.last = last;
  a.rowU = p.fRowU;
  a.rowD = p.fRowD;
  a.rowY = p.fRowY;
  return a;
}

struct GradLaunch {
  BwdArgs args;
  ReduceArgs red[3];
  int nRed;
};

GradLaunch MakeGradLaunch(const Plan& p, const float* dy, const float* u, const float* delta,
                          const float* A, const float* B, const float* C, float* du,
                          float* ddelta, float* dA, float* dB, float* dC, float* ws) {
  GradLaunch g;
  BwdArgs& a = g.args;
  a.s = p.s;
  a.dy = dy;
  a.u = u;
  a.delta = delta;
  a.A = A;
  a.B = p.B;
  a.B.p = B;
  a.B.tile = p.bTileB;
  a.C = p.C;
  a.C.p = C;
  a.C.tile = p.bTileC;
  a.du = du;
  a.ddelta = ddelta;
  a.gB = GradTarget{p.directB ? dB : ws + p.wsB, p.ndgB, p.bStageB};
  a.gC = GradTarget{p.directC ? dC : ws + p.wsC, p.ndgC, p.bStageC};
  a.pA = p.directA ? dA : ws + p.wsA;
  a.ck = ws + p.wsCk;
  a.rowU = p.bRowU;
  a.rowD = p.bRowD;
  a.rowDY = p.bRowDY;
  a.rowDU = p.bRowDU;
  a.rowDD = p.bRowDD;
  g.nRed = 0;
  const int64_t Bt = p.s.Bt, N = p.s.N;
  if (!p.directB) {
    g.red[g.nRed++] = ReduceArgs{a.gB.partial, dB, Bt, p.ndgB, N, p.B.nb, p.B.nd, p.B.nl, p.bElems};
  }
  if (!p.directC) {
    g.red[g.nRed++] = ReduceArgs{a.gC.partial, dC, Bt, p.ndgC, N, p.C.nb, p.C.nd, p.C.nl, p.cElems};
  }
  if (!p.directA) g.red[g.nRed++] = ReduceArgs{a.pA, dA, Bt, p.s.D, N, 1, p.s.D, 1, p.s.D * N};
  return g;
}

template <class Kernel, class Args>
cudaError_t Launch(Kernel kernel, int64_t blocks, size_t smem, cudaStream_t stream,
                   const Args& args) {
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t LaunchForward(const Plan& p, const FwdArgs& a, cudaStream_t stream) {
  return WithConfig(p.s.N, [&](auto cfg) {
    using Cfg = decltype(cfg);
    return Launch(SelectiveScanFwdKernel<Cfg::kLanes, Cfg::kSlots>, p.blocks, p.fwdSmemBytes,
                  stream, a);
  });
}

cudaError_t LaunchGrad(const Plan& p, const GradLaunch& g, cudaStream_t stream) {
  const cudaError_t e = WithConfig(p.s.N, [&](auto cfg) {
    using Cfg = decltype(cfg);
    return Launch(SelectiveScanBwdKernel<Cfg::kLanes, Cfg::kSlots>, p.blocks, p.bwdSmemBytes,
                  stream, g.args);
  });
  if (e != cudaSuccess) return e;
  for (int i = 0; i < g.nRed; ++i) {
    const int64_t blocks = Min64((g.red[i].total + kThreads - 1) / kThreads, 4096);
    SelectiveScanReduceKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(g.red[i]);
    const cudaError_t r = cudaGetLastError();
    if (r != cudaSuccess) return r;
  }
  return cudaSuccess;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Exports.

// SelectiveScan on host arrays: u, delta [Bt, D, L], A [D, N], B b_shape, C c_shape (each
// [1|Bt, 1|D, N, 1|L]) → y [Bt, D, L], last_state [Bt, D, N].
CB_CUDA_EXPORT int ClaimbenchSelectiveScanHost(const float* u, const float* delta, const float* A,
                                            const float* B, const int64_t* b_shape,
                                            const float* C, const int64_t* c_shape, int64_t Bt,
                                            int64_t D, int64_t L, int64_t N, float* y,
                                            float* last_state) {
  if (!u || !delta || !A || !B || !b_shape || !C || !c_shape || !y || !last_state) return kErrNull;
  Plan p;
  if (const int rc = MakePlan(Bt, D, L, N, b_shape, c_shape, &p)) return rc;
  DeviceMemory mem;
  float *d_u = nullptr, *d_delta = nullptr, *d_A = nullptr, *d_B = nullptr, *d_C = nullptr;
  float *d_y = nullptr, *d_last = nullptr;
  CB_CUDA_TRY(Upload(&d_u, mem, u, p.bdl));
  CB_CUDA_TRY(Upload(&d_delta, mem, delta, p.bdl));
  CB_CUDA_TRY(Upload(&d_A, mem, A, D * N));
  CB_CUDA_TRY(Upload(&d_B, mem, B, p.bElems));
  CB_CUDA_TRY(Upload(&d_C, mem, C, p.cElems));
  CB_CUDA_TRY(mem.Alloc(&d_y, p.bdl));
  CB_CUDA_TRY(mem.Alloc(&d_last, Bt * D * N));
  CB_CUDA_TRY(LaunchForward(p, MakeFwdArgs(p, d_u, d_delta, d_A, d_B, d_C, d_y, d_last), nullptr));
  CB_CUDA_TRY(Download(y, d_y, p.bdl));
  CB_CUDA_TRY(Download(last_state, d_last, Bt * D * N));
  return 0;
}

// SelectiveScanGrad on host arrays: dy, u, delta [Bt, D, L], A, B, C as above → du, ddelta
// [Bt, D, L], dA [D, N], dB (b_shape), dC (c_shape).
CB_CUDA_EXPORT int ClaimbenchSelectiveScanGradHost(const float* dy, const float* u,
                                                const float* delta, const float* A,
                                                const float* B, const int64_t* b_shape,
                                                const float* C, const int64_t* c_shape,
                                                int64_t Bt, int64_t D, int64_t L, int64_t N,
                                                float* du, float* ddelta, float* dA, float* dB,
                                                float* dC) {
  if (!dy || !u || !delta || !A || !B || !b_shape || !C || !c_shape || !du || !ddelta || !dA ||
      !dB || !dC) {
    return kErrNull;
  }
  Plan p;
  if (const int rc = MakePlan(Bt, D, L, N, b_shape, c_shape, &p)) return rc;
  DeviceMemory mem;
  float *d_dy = nullptr, *d_u = nullptr, *d_delta = nullptr, *d_A = nullptr, *d_B = nullptr;
  float *d_C = nullptr, *d_du = nullptr, *d_ddelta = nullptr, *d_dA = nullptr, *d_dB = nullptr;
  float *d_dC = nullptr, *d_ws = nullptr;
  CB_CUDA_TRY(Upload(&d_dy, mem, dy, p.bdl));
  CB_CUDA_TRY(Upload(&d_u, mem, u, p.bdl));
  CB_CUDA_TRY(Upload(&d_delta, mem, delta, p.bdl));
  CB_CUDA_TRY(Upload(&d_A, mem, A, D * N));
  CB_CUDA_TRY(Upload(&d_B, mem, B, p.bElems));
  CB_CUDA_TRY(Upload(&d_C, mem, C, p.cElems));
  CB_CUDA_TRY(mem.Alloc(&d_du, p.bdl));
  CB_CUDA_TRY(mem.Alloc(&d_ddelta, p.bdl));
  CB_CUDA_TRY(mem.Alloc(&d_dA, D * N));
  CB_CUDA_TRY(mem.Alloc(&d_dB, p.bElems));
  CB_CUDA_TRY(mem.Alloc(&d_dC, p.cElems));
  CB_CUDA_TRY(mem.Alloc(&d_ws, p.wsFloats));
  const GradLaunch g = MakeGradLaunch(p, d_dy, d_u, d_delta, d_A, d_B, d_C, d_du, d_ddelta, d_dA,
                                      d_dB, d_dC, d_ws);
  CB_CUDA_TRY(LaunchGrad(p, g, nullptr));
  CB_CUDA_TRY(Download(du, d_du, p.bdl));
  CB_CUDA_TRY(Download(ddelta, d_ddelta, p.bdl));
  CB_CUDA_TRY(Download(dA, d_dA, D * N));
  CB_CUDA_TRY(Download(dB, d_dB, p.bElems));
  CB_CUDA_TRY(Download(dC, d_dC, p.cElems));
  return 0;
}

// SelectiveScan on device arrays (the shapes stay on the host), queued on `stream` (a
// cudaStream_t; null: the default stream); does not synchronize.
CB_CUDA_EXPORT int ClaimbenchSelectiveScanDevice(const float* u, const float* delta, const float* A,
                                              const float* B, const int64_t* b_shape,
                                              const float* C, const int64_t* c_shape,
                                              int64_t Bt, int64_t D, int64_t L, int64_t N,
                                              float* y, float* last_state, void* stream) {
  if (!u || !delta || !A || !B || !b_shape || !C || !c_shape || !y || !last_state) return kErrNull;
  Plan p;
  if (const int rc = MakePlan(Bt, D, L, N, b_shape, c_shape, &p)) return rc;
  CB_CUDA_TRY(LaunchForward(p, MakeFwdArgs(p, u, delta, A, B, C, y, last_state),
                          static_cast<cudaStream_t>(stream)));
  return 0;
}

// The device workspace ClaimbenchSelectiveScanGradDevice needs, in bytes (≥ 256), or an error.
CB_CUDA_EXPORT int64_t ClaimbenchSelectiveScanGradWorkspaceBytes(const int64_t* b_shape,
                                                              const int64_t* c_shape, int64_t Bt,
                                                              int64_t D, int64_t L, int64_t N) {
  if (!b_shape || !c_shape) return kErrNull;
  Plan p;
  if (const int rc = MakePlan(Bt, D, L, N, b_shape, c_shape, &p)) return rc;
  const int64_t floats = p.wsFloats > 64 ? p.wsFloats : 64;
  return floats * static_cast<int64_t>(sizeof(float));
}

// SelectiveScanGrad on device arrays with a device workspace of at least
// ClaimbenchSelectiveScanGradWorkspaceBytes bytes, queued on `stream`; does not synchronize.
CB_CUDA_EXPORT int ClaimbenchSelectiveScanGradDevice(
    const float* dy, const float* u, const float* delta, const float* A, const float* B,
    const int64_t* b_shape, const float* C, const int64_t* c_shape, int64_t Bt, int64_t D,
    int64_t L, int64_t N, float* du, float* ddelta, float* dA, float* dB, float* dC,
    void* workspace, int64_t workspace_bytes, void* stream) {
  if (!dy || !u || !delta || !A || !B || !b_shape || !C || !c_shape || !du || !ddelta || !dA ||
      !dB || !dC || !workspace) {
    return kErrNull;
  }
  Plan p;
  if (const int rc = MakePlan(Bt, D, L, N, b_shape, c_shape, &p)) return rc;
  if (workspace_bytes < p.wsFloats * static_cast<int64_t>(sizeof(float))) return kErrArgument;
  const GradLaunch g = MakeGradLaunch(p, dy, u, delta, A, B, C, du, ddelta, dA, dB, dC,
                                      static_cast<float*>(workspace));
  CB_CUDA_TRY(LaunchGrad(p, g, static_cast<cudaStream_t>(stream)));
  return 0;
}

// Times SelectiveScan (backward = 0) or SelectiveScanGrad (backward = 1) on seeded device data:
// u, dY ~ U[−1, 1), Δ ~ U[0.001, 0.1), A[d, n] = −(n + 1), B, C ~ U[−1, 1), of shape
// [Bt, 1, N, L] (selective = 1) or [1, D, N, 1] (selective = 0). Two warm-up calls, then
// `repeats` calls between two events; *ms_per_call = their mean in milliseconds.
CB_CUDA_EXPORT int ClaimbenchSelectiveScanTime(int64_t Bt, int64_t D, int64_t L, int64_t N,
                                            int selective, int backward, int repeats,
                                            double* ms_per_call) {
  if (!ms_per_call) return kErrNull;
  if (repeats < 1) return kErrArgument;
  const int64_t sel[4] = {Bt, 1, N, L}, lti[4] = {1, D, N, 1};
  const int64_t* shape = selective ? sel : lti;
  Plan p;
  if (const int rc = MakePlan(Bt, D, L, N, shape, shape, &p)) return rc;
  DeviceMemory mem;
  float *u = nullptr, *delta = nullptr, *A = nullptr, *B = nullptr, *C = nullptr;
  float *dy = nullptr, *y = nullptr, *last = nullptr, *du = nullptr, *ddelta = nullptr;
  float *dA = nullptr, *dB = nullptr, *dC = nullptr, *ws = nullptr;
  CB_CUDA_TRY(mem.Alloc(&u, p.bdl));
  CB_CUDA_TRY(mem.Alloc(&delta, p.bdl));
  CB_CUDA_TRY(mem.Alloc(&A, D * N));
  CB_CUDA_TRY(mem.Alloc(&B, p.bElems));
  CB_CUDA_TRY(mem.Alloc(&C, p.cElems));
  const auto fill = [](float* q, int64_t n, uint64_t seed, float lo, float hi) {
    const int64_t blocks = Min64((n + 255) / 256, 4096);
    SelectiveScanFillKernel<<<static_cast<unsigned>(blocks), 256>>>(q, n, seed, lo, hi);
    return cudaGetLastError();
  };
  CB_CUDA_TRY(fill(u, p.bdl, 1, -1.f, 1.f));
  CB_CUDA_TRY(fill(delta, p.bdl, 2, 0.001f, 0.1f));
  CB_CUDA_TRY(fill(B, p.bElems, 3, -1.f, 1.f));
  CB_CUDA_TRY(fill(C, p.cElems, 4, -1.f, 1.f));
  {
    std::vector<float> a(static_cast<size_t>(D * N));
    for (int64_t i = 0; i < D * N; ++i) a[static_cast<size_t>(i)] = -static_cast<float>(i % N + 1);
    CB_CUDA_TRY(cudaMemcpy(A, a.data(), a.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  FwdArgs fwd{};
  GradLaunch grad{};
  if (backward) {
    CB_CUDA_TRY(mem.Alloc(&dy, p.bdl));
    CB_CUDA_TRY(fill(dy, p.bdl, 5, -1.f, 1.f));
    CB_CUDA_TRY(mem.Alloc(&du, p.bdl));
    CB_CUDA_TRY(mem.Alloc(&ddelta, p.bdl));
    CB_CUDA_TRY(mem.Alloc(&dA, D * N));
    CB_CUDA_TRY(mem.Alloc(&dB, p.bElems));
    CB_CUDA_TRY(mem.Alloc(&dC, p.cElems));
    CB_CUDA_TRY(mem.Alloc(&ws, p.wsFloats));
    grad = MakeGradLaunch(p, dy, u, delta, A, B, C, du, ddelta, dA, dB, dC, ws);
  } else {
    CB_CUDA_TRY(mem.Alloc(&y, p.bdl));
    CB_CUDA_TRY(mem.Alloc(&last, Bt * D * N));
    fwd = MakeFwdArgs(p, u, delta, A, B, C, y, last);
  }
  const auto call = [&]() {
    return backward ? LaunchGrad(p, grad, nullptr) : LaunchForward(p, fwd, nullptr);
  };
  return TimeCalls(call, repeats, ms_per_call);
}
