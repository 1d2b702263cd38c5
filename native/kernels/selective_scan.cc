// Mamba's selective scan: SelectiveScan and its gradient SelectiveScanGrad (their ONNX function
// definitions are in onnx/custom/selective_scan.ts).
//
// Work is split by (batch, channel) pair: each pair's recurrence runs whole on one thread with
// its state in registers, the lanes holding the state's N elements (zero-padded to whole
// vectors), so no [Bt, D, L, N] tensor is made (the gradient keeps one pair's L states at a
// time, per thread). Each element gets the definition's float32 operations in its order, exp is
// simd.h's, and sums over the state go in double by position mod 4 (Accumulate): every width
// gives the same bits. The gradient's sums across pairs go in an order fixed by the shapes
// (see SelectiveScanGrad), so the thread count does not change them either.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// About this many element-steps (one state element advanced one step, forward or back) make a
// task: 32 pairs of L 256, N 16. Sized from N, not its padded width, so that the tasks (and the
// order of the gradient's sums across them) are the same at every width.
constexpr int64_t kScanTaskSteps = int64_t{1} << 17;

// B or C: [bb, db, N, lb], each of bb, db, lb the full dim (batch, channels, length) or 1.
struct Operand {
  const float* data = nullptr;
  int64_t bb = 0;
  int64_t db = 0;
  int64_t lb = 0;
  // The [N, lb] slice that pair (b, d) reads.
  int64_t SliceOf(int64_t b, int64_t d) const {
    return (bb == 1 ? 0 : b) * db + (db == 1 ? 0 : d);
  }
};

struct ScanInputs {
  Shape us, as, bs, cs;
  int64_t batch = 0, channels = 0, length = 0, n = 0;
  const float* u = nullptr;
  const float* delta = nullptr;
  const float* a = nullptr;
  Operand b, c;
};

bool BroadcastsTo(int64_t dim, int64_t full) { return dim == full || dim == 1; }

// Reads U, Delta, A, B, C (inputs first .. first + 4) and checks their shapes.
OrtStatus* GetScanInputs(OrtKernelContext* ctx, const char* op, size_t first, ScanInputs* in) {
  Shape ds;
  CB_RETURN_IF_ERROR(GetInputData(ctx, first, "U", &in->us, &in->u));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 1, "Delta", &ds, &in->delta));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 2, "A", &in->as, &in->a));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 3, "B", &in->bs, &in->b.data));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 4, "C", &in->cs, &in->c.data));
  const Shape& us = in->us;
  const Shape& as = in->as;
  if (us.rank != 3 || !SameShape(us, ds) || as.rank != 2 || as.dims[0] != us.dims[1]) {
    return Error(std::string("Cannot run ") + op +
                 " as U and Delta must both be [batch, channels, length] and A [channels, "
                 "state]: U " +
                 ShapeString(us) + ", Delta " + ShapeString(ds) + ", A " + ShapeString(as));
  }
  in->batch = us.dims[0];
  in->channels = us.dims[1];
  in->length = us.dims[2];
  in->n = as.dims[1];
  const std::pair<const char*, const Shape*> operands[] = {{"B", &in->bs}, {"C", &in->cs}};
  for (const auto& [name, s] : operands) {
    if (s->rank != 4 || !BroadcastsTo(s->dims[0], in->batch) ||
        !BroadcastsTo(s->dims[1], in->channels) || s->dims[2] != in->n ||
        !BroadcastsTo(s->dims[3], in->length)) {
      return Error(std::string("Cannot run ") + op + " as " + name + " must broadcast to [" +
                   std::to_string(in->batch) + ", " + std::to_string(in->channels) + ", " +
                   std::to_string(in->n) + ", " + std::to_string(in->length) +
                   "] (batch, channels and length each itself or 1): " + name + " " +
                   ShapeString(*s) + " for U " + ShapeString(us) + ", A " + ShapeString(as));
    }
  }
  in->b.bb = in->bs.dims[0];
  in->b.db = in->bs.dims[1];
  in->b.lb = in->bs.dims[3];
  in->c.bb = in->cs.dims[0];
  in->c.db = in->cs.dims[1];
  in->c.lb = in->cs.dims[3];
  return nullptr;
}

// A [D, N] as rows of np floats, zero-padded.
std::vector<float> PaddedRows(const float* a, int64_t rows, int64_t n, int64_t np) {
  std::vector<float> out(static_cast<size_t>(rows * np), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) out[r * np + i] = a[r * n + i];
  }
  return out;
}

// One [N, lb] slice of B or C turned into rows [lb][np] (row l: the slice's column l, padded
// with zeros), per thread; filled again only when a pair reads another slice.
class SliceRows {
 public:
  SliceRows(const Operand& op, int64_t n, int64_t np)
      : op_(op), n_(n), np_(np), rows_(static_cast<size_t>(op.lb * np), 0.0f) {}

  const float* For(int64_t slice) {
    if (slice != slice_) {
      const float* src = op_.data + slice * n_ * op_.lb;
      for (int64_t i = 0; i < n_; ++i) {
        for (int64_t l = 0; l < op_.lb; ++l) rows_[l * np_ + i] = src[i * op_.lb + l];
      }
      slice_ = slice;
    }
    return rows_.data();
  }

  // From step l's row to the next one's: 0 where the operand is constant over the length.
  int64_t Step() const { return op_.lb == 1 ? 0 : np_; }

 private:
  const Operand& op_;
  int64_t n_, np_;
  std::vector<float> rows_;
  int64_t slice_ = -1;
};

// One (batch, channel) pair's operands: U, Delta [L]; its row of A and rows of B and C, [np]
// each (B and C: one row per step, `*_step` floats apart).
struct ScanPair {
  const float* u;
  const float* delta;
  const float* a;
  const float* b;
  int64_t b_step;
  const float* c;
  int64_t c_step;
  int64_t length, n, np;
};

// Adds v's first `count` lanes (count ≥ 1) to acc by position mod 4; the others count as 0.
template <typename V>
CB_INLINE void AccumulateFirst(D4& acc, const V& v, int64_t count) {
  if (count >= static_cast<int64_t>(sizeof(V) / sizeof(float))) {
    Accumulate(acc, v);
  } else {
    Accumulate(acc, Keep(v, count, 0.0f));
  }
}

// Lanes of doubles, as many as V has floats.
template <typename V>
using DoublesOf = typename Doubles<V>::Type;

template <typename V>
CB_INLINE DoublesOf<V> Widen(const V& v) {
  return __builtin_convertvector(v, DoublesOf<V>);
}

// acc[i] += v[i] in double, lane by lane.
template <typename DV>
CB_INLINE void AddTo(double* acc, const DV& v) {
  DV a;
  std::memcpy(&a, acc, sizeof(a));
  a += v;
  std::memcpy(acc, &a, sizeof(a));
}

// The state is advanced in groups of up to kGroupVectors vectors held in registers, one group
// after the other over the whole length; the sums over the state carry from one group to the
// next through one D4 per step (`sums`, 4 doubles a step), so they add the lanes in the same
// order (by position, in groups of 4) at every width, in one group or several.
constexpr int64_t kGroupVectors = 4;

CB_INLINE D4 LoadD4(const double* p) {
  D4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

CB_INLINE void StoreD4(double* p, const D4& v) { std::memcpy(p, &v, sizeof(v)); }

// Lanes [j0, j0 + K·W) of the pair's recurrence from x = 0, in the definition's float32
// operations: a_l = exp(Δ_l·A), x_l = a_l·x_{l−1} + (Δ_l·u_l)·B_l, y_l = Σ_n x_l·C_l (in
// double, by position mod 4). Without kStates it writes y [L] (in the last group; else it
// carries the sums in `sums`) and leaves x_{L−1} in x [np] (zeros on entry). With kStates (the
// gradient's forward pass) it computes no y: it writes x_l and a_l to rows l of xs and as
// [L][np].
template <typename V, int K, bool kStates>
CB_INLINE void ScanForwardGroup(const ScanPair& p, int64_t j0, bool first, bool last, float* x,
                                float* y, double* sums, float* xs, float* as) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t np = p.np;
  V a[K], s[K];
  for (int k = 0; k < K; ++k) {
    a[k] = Load<V>(p.a + j0 + k * W);
    s[k] = Load<V>(x + j0 + k * W);
  }
  for (int64_t l = 0; l < p.length; ++l) {
    const float dl = p.delta[l];
    const V dv = Splat<V>(dl);
    const V duv = Splat<V>(dl * p.u[l]);
    const float* brow = p.b + l * p.b_step + j0;
    const float* crow = p.c + l * p.c_step + j0;
    D4 acc = {};
    if (!kStates && !first) acc = LoadD4(sums + 4 * l);
    for (int k = 0; k < K; ++k) {
      const V decay = Exp(dv * a[k]);
      s[k] = decay * s[k] + duv * Load<V>(brow + k * W);
      if constexpr (kStates) {
        Store(xs + l * np + j0 + k * W, s[k]);
        Store(as + l * np + j0 + k * W, decay);
      } else {
        AccumulateFirst(acc, s[k] * Load<V>(crow + k * W), p.n - j0 - k * W);
      }
    }
    if constexpr (!kStates) {
      if (last) {
        y[l] = static_cast<float>(SumLanes(acc));
      } else {
        StoreD4(sums + 4 * l, acc);
      }
    }
  }
  for (int k = 0; k < K; ++k) Store(x + j0 + k * W, s[k]);
}

// The pair's forward pass (ScanForwardGroup) over all its groups; sums: 4·L doubles of
// scratch (used where the state takes more than one group).
template <typename V, bool kStates>
CB_INLINE void ScanForward(const ScanPair& p, float* x, float* y, double* sums, float* xs,
                           float* as) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  if (!kStates && p.np == 0) {
    for (int64_t l = 0; l < p.length; ++l) y[l] = 0.0f;
  }
  for (int64_t j0 = 0; j0 < p.np; j0 += kGroupVectors * W) {
    const int64_t vectors = std::min(p.np - j0, kGroupVectors * W) / W;
    const bool first = j0 == 0, last = j0 + vectors * W == p.np;
    if (vectors == 1) {
      ScanForwardGroup<V, 1, kStates>(p, j0, first, last, x, y, sums, xs, as);
    } else if (vectors == 2) {
      ScanForwardGroup<V, 2, kStates>(p, j0, first, last, x, y, sums, xs, as);
    } else if (vectors == 3) {
      ScanForwardGroup<V, 3, kStates>(p, j0, first, last, x, y, sums, xs, as);
    } else {
      ScanForwardGroup<V, 4, kStates>(p, j0, first, last, x, y, sums, xs, as);
    }
  }
}

// Where the gradient's terms go: db and dc rows ([lb][np] double, the row of step l at l·step;
// step 0: one row for every step), da [np] (double).
struct ScanGradOut {
  float* du;
  float* ddelta;
  double* da;
  double* db;
  int64_t db_step;
  double* dc;
  int64_t dc_step;
};

// Lanes [j0, j0 + K·W) of the pair's reverse-time pass over its states xs and decays as
// ([L][np], from ScanForward), the adjoint g_l = dy_l·C_l + a_{l+1}·g_{l+1} in registers.
// Writes du_l = Δ_l·Σ_n g_l·B_l and dΔ_l = u_l·Σ_n g_l·B_l + Σ_n ((g_l·x_{l−1})·a_l)·A (sums
// in double by position mod 4, carried between groups through gb_sums and da_sums [L][4]) in
// the last group, and adds (in double) g_l·(Δ_l·u_l) into db's row of step l, dy_l·x_l into
// dc's and Σ_l ((g_l·x_{l−1})·a_l)·Δ_l into da (a row with step 0 gets the pair's sum over l).
template <typename V, int K>
CB_INLINE void ScanBackwardGroup(const ScanPair& p, int64_t j0, bool first, bool last,
                                 const float* dy, const float* xs, const float* as,
                                 double* gb_sums, double* da_sums, const ScanGradOut& out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  using DV = DoublesOf<V>;
  const int64_t np = p.np;
  V a[K], g[K];
  DV sa[K], sb[K], sc[K];
  for (int k = 0; k < K; ++k) {
    a[k] = Load<V>(p.a + j0 + k * W);
    g[k] = Splat<V>(0.0f);
    sa[k] = sb[k] = sc[k] = DV{};
  }
  for (int64_t l = p.length - 1; l >= 0; --l) {
    const float dl = p.delta[l], ul = p.u[l];
    const V dyv = Splat<V>(dy[l]);
    const V dv = Splat<V>(dl);
    const V duv = Splat<V>(dl * ul);
    const float* brow = p.b + l * p.b_step + j0;
    const float* crow = p.c + l * p.c_step + j0;
    const float* xl = xs + l * np + j0;
    const float* al = as + l * np + j0;
    double* dbl = out.db + l * out.db_step + j0;
    double* dcl = out.dc + l * out.dc_step + j0;
    const bool end = l + 1 == p.length;
    D4 sgb = {}, sda = {};
    if (!first) {
      sgb = LoadD4(gb_sums + 4 * l);
      sda = LoadD4(da_sums + 4 * l);
    }
    for (int k = 0; k < K; ++k) {
      V gk = dyv * Load<V>(crow + k * W);
      if (!end) gk = gk + Load<V>(al + np + k * W) * g[k];
      g[k] = gk;
      const DV tb = Widen(gk * duv), tc = Widen(dyv * Load<V>(xl + k * W));
      if (out.db_step == 0) {
        sb[k] += tb;
      } else {
        AddTo(dbl + k * W, tb);
      }
      if (out.dc_step == 0) {
        sc[k] += tc;
      } else {
        AddTo(dcl + k * W, tc);
      }
      AccumulateFirst(sgb, gk * Load<V>(brow + k * W), p.n - j0 - k * W);
      if (l > 0) {  // x_{−1} = 0: no terms at l = 0
        const V dd = (gk * Load<V>(xl - np + k * W)) * Load<V>(al + k * W);
        AccumulateFirst(sda, dd * a[k], p.n - j0 - k * W);
        sa[k] += Widen(dd * dv);
      }
    }
    if (last) {
      const float gb = static_cast<float>(SumLanes(sgb));
      out.du[l] = dl * gb;
      out.ddelta[l] = ul * gb + static_cast<float>(SumLanes(sda));
    } else {
      StoreD4(gb_sums + 4 * l, sgb);
      StoreD4(da_sums + 4 * l, sda);
    }
  }
  for (int k = 0; k < K; ++k) {
    AddTo(out.da + j0 + k * W, sa[k]);
    if (out.db_step == 0) AddTo(out.db + j0 + k * W, sb[k]);
    if (out.dc_step == 0) AddTo(out.dc + j0 + k * W, sc[k]);
  }
}

// The pair's reverse-time pass (ScanBackwardGroup) over all its groups; gb_sums, da_sums: 4·L
// doubles of scratch each.
template <typename V>
CB_INLINE void ScanBackward(const ScanPair& p, const float* dy, const float* xs, const float* as,
                            double* gb_sums, double* da_sums, const ScanGradOut& out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  if (p.np == 0) {  // no state: Σ_n over nothing
    for (int64_t l = 0; l < p.length; ++l) {
      out.du[l] = p.delta[l] * 0.0f;
      out.ddelta[l] = p.u[l] * 0.0f + 0.0f;
    }
  }
  for (int64_t j0 = 0; j0 < p.np; j0 += kGroupVectors * W) {
    const int64_t vectors = std::min(p.np - j0, kGroupVectors * W) / W;
    const bool first = j0 == 0, last = j0 + vectors * W == p.np;
    if (vectors == 1) {
      ScanBackwardGroup<V, 1>(p, j0, first, last, dy, xs, as, gb_sums, da_sums, out);
    } else if (vectors == 2) {
      ScanBackwardGroup<V, 2>(p, j0, first, last, dy, xs, as, gb_sums, da_sums, out);
    } else if (vectors == 3) {
      ScanBackwardGroup<V, 3>(p, j0, first, last, dy, xs, as, gb_sums, da_sums, out);
    } else {
      ScanBackwardGroup<V, 4>(p, j0, first, last, dy, xs, as, gb_sums, da_sums, out);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SelectiveScan(U [Bt, D, L], Delta [Bt, D, L], A [D, N], B, C) -> (Y [Bt, D, L],
// LastState [Bt, D, N]), B and C rank 4, broadcast to [Bt, D, N, L]: per pair (b, d), from
// x = 0, x ← exp(Δ_l·A[d]) ⊙ x + (Δ_l·u_l)·B_l; y_l = Σ_n x·C_l; LastState is the last x.

struct ScanJob {
  Blocks blocks;  // (batch, channel) pairs
  int64_t channels = 0, length = 0, n = 0, np = 0;
  const float* u = nullptr;
  const float* delta = nullptr;
  const float* a_rows = nullptr;  // [D][np]
  Operand b, c;
  float* y = nullptr;
  float* last = nullptr;
};

template <typename V>
CB_INLINE void ScanPairs(const ScanJob& job, int64_t q0, int64_t q1) {
  const int64_t L = job.length, n = job.n, np = job.np;
  std::vector<float> x(static_cast<size_t>(np));
  std::vector<double> sums(static_cast<size_t>(4 * L));
  SliceRows brows(job.b, n, np), crows(job.c, n, np);
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t b = q / job.channels, d = q % job.channels;
    const ScanPair p{job.u + q * L,
                     job.delta + q * L,
                     job.a_rows + d * np,
                     brows.For(job.b.SliceOf(b, d)),
                     brows.Step(),
                     crows.For(job.c.SliceOf(b, d)),
                     crows.Step(),
                     L,
                     n,
                     np};
    std::fill(x.begin(), x.end(), 0.0f);
    ScanForward<V, false>(p, x.data(), job.y + q * L, sums.data(), nullptr, nullptr);
    std::copy(x.begin(), x.begin() + n, job.last + q * n);
  }
}

CB_RANGE_AT_EVERY_WIDTH(ScanPairs, ScanJob, ScanPairs)

OrtStatus* ComputeSelectiveScan(OrtKernelContext* ctx, Simd simd) {
  ScanInputs in;
  CB_RETURN_IF_ERROR(GetScanInputs(ctx, "SelectiveScan", 0, &in));
  Shape last;
  last.rank = 3;
  last.dims[0] = in.batch;
  last.dims[1] = in.channels;
  last.dims[2] = in.n;
  ScanJob job;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, in.us, &job.y));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, last, &job.last));
  const int64_t W = LanesOf(simd);
  job.channels = in.channels;
  job.length = in.length;
  job.n = in.n;
  job.np = (in.n + W - 1) / W * W;
  job.u = in.u;
  job.delta = in.delta;
  job.b = in.b;
  job.c = in.c;
  const std::vector<float> a_rows = PaddedRows(in.a, in.channels, in.n, job.np);
  job.a_rows = a_rows.data();
  const int64_t steps = std::max<int64_t>(1, in.length * in.n);
  job.blocks = {in.batch * in.channels, std::max<int64_t>(1, kScanTaskSteps / steps), simd};
  return RunBlocks<ScanJob, ScanPairsSse2, ScanPairsAvx2, ScanPairsAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// SelectiveScanGrad(dY [Bt, D, L], U, Delta, A, B, C) -> (dU, dDelta, dA [D, N], dB, dC), each
// in its input's shape: the gradient of SelectiveScan's Y (ScanBackwardGroup has the formulas;
// no gradient comes in through LastState).
//
// The pairs are tiled into tasks of bt batches × dt channels (bt is 1, or Bt where B or C is
// shared by the batch but not constant over the length: then a task holds that operand's whole
// sum over the batch). Each task runs its pairs in order (batch, then channel) and adds their
// terms in double into its own partial sums: dA per channel and, for B and C where they are
// broadcast, one [lb][np] row block per slice the task's pairs read. The partial sums are then
// added up over the tasks in task order and rounded once to float32. The tiles depend on the
// shapes only, so the bits do not depend on the thread count (nor on the width). Where B or C
// is not broadcast at all, each pair writes its own slice of dB or dC.

struct ScanGradJob {
  Blocks blocks;  // tasks: b_tiles × d_tiles, row-major
  int64_t batch = 0, channels = 0, length = 0, n = 0, np = 0;
  int64_t b_tile = 1, d_tile = 1, d_tiles = 0;
  const float* dy = nullptr;
  const float* u = nullptr;
  const float* delta = nullptr;
  const float* a_rows = nullptr;  // [D][np]
  Operand b, c;
  float* du = nullptr;
  float* ddelta = nullptr;
  // dB, dC: the outputs where written per pair (`*_own`), else the tasks' partial sums,
  // [tasks][slots][lb][np].
  float* db = nullptr;
  float* dc = nullptr;
  bool b_own = false, c_own = false;
  int64_t b_slots = 0, c_slots = 0;
  double* b_sums = nullptr;
  double* c_sums = nullptr;
  double* a_sums = nullptr;  // [tasks][d_tile][np]
};

// The slot of a task's partial sums of op that pair (b, d) adds into, b0 and d0 being the task's
// first batch and channel.
int64_t SlotOf(const Operand& op, int64_t d_tile, int64_t b, int64_t d, int64_t b0, int64_t d0) {
  return (op.bb == 1 ? 0 : b - b0) * (op.db == 1 ? 1 : d_tile) + (op.db == 1 ? 0 : d - d0);
}

int64_t SlotsOf(const Operand& op, int64_t b_tile, int64_t d_tile) {
  return (op.bb == 1 ? 1 : b_tile) * (op.db == 1 ? 1 : d_tile);
}

// One pair's own gradient rows [L][np] (double) written out as its slice [N, L] of out.
void WriteOwnSlice(const std::vector<double>& rows, int64_t n, int64_t np, int64_t length,
                   float* out) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t l = 0; l < length; ++l) {
      out[i * length + l] = static_cast<float>(rows[l * np + i]);
    }
  }
}

template <typename V>
CB_INLINE void ScanGradTasks(const ScanGradJob& job, int64_t t0, int64_t t1) {
  const int64_t L = job.length, n = job.n, np = job.np;
  const int64_t b_row = job.b.lb * np, c_row = job.c.lb * np;
  std::vector<float> xs(static_cast<size_t>(L * np)), as(xs.size());
  std::vector<float> x(static_cast<size_t>(np));
  std::vector<double> gb_sums(static_cast<size_t>(4 * L)), da_sums(gb_sums.size());
  std::vector<double> b_own(job.b_own ? static_cast<size_t>(b_row) : 0);
  std::vector<double> c_own(job.c_own ? static_cast<size_t>(c_row) : 0);
  SliceRows brows(job.b, n, np), crows(job.c, n, np);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t b0 = t / job.d_tiles * job.b_tile, d0 = t % job.d_tiles * job.d_tile;
    const int64_t b1 = std::min(job.batch, b0 + job.b_tile);
    const int64_t d1 = std::min(job.channels, d0 + job.d_tile);
    double* a_sums = job.a_sums + t * job.d_tile * np;
    double* b_sums = job.b_own ? nullptr : job.b_sums + t * job.b_slots * b_row;
    double* c_sums = job.c_own ? nullptr : job.c_sums + t * job.c_slots * c_row;
    std::fill(a_sums, a_sums + job.d_tile * np, 0.0);
    if (b_sums) std::fill(b_sums, b_sums + job.b_slots * b_row, 0.0);
    if (c_sums) std::fill(c_sums, c_sums + job.c_slots * c_row, 0.0);
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t d = d0; d < d1; ++d) {
        const int64_t q = b * job.channels + d;
        const int64_t b_slice = job.b.SliceOf(b, d), c_slice = job.c.SliceOf(b, d);
        const ScanPair p{job.u + q * L,
                         job.delta + q * L,
                         job.a_rows + d * np,
                         brows.For(b_slice),
                         brows.Step(),
                         crows.For(c_slice),
                         crows.Step(),
                         L,
                         n,
                         np};
        std::fill(x.begin(), x.end(), 0.0f);
        ScanForward<V, true>(p, x.data(), nullptr, nullptr, xs.data(), as.data());
        double* db = b_own.data();
        if (job.b_own) {
          std::fill(b_own.begin(), b_own.end(), 0.0);
        } else {
          db = b_sums + SlotOf(job.b, job.d_tile, b, d, b0, d0) * b_row;
        }
        double* dc = c_own.data();
        if (job.c_own) {
          std::fill(c_own.begin(), c_own.end(), 0.0);
        } else {
          dc = c_sums + SlotOf(job.c, job.d_tile, b, d, b0, d0) * c_row;
        }
        const ScanGradOut out{job.du + q * L, job.ddelta + q * L, a_sums + (d - d0) * np,
                              db, brows.Step(), dc, crows.Step()};
        ScanBackward<V>(p, job.dy + q * L, xs.data(), as.data(), gb_sums.data(), da_sums.data(),
                        out);
        if (job.b_own) WriteOwnSlice(b_own, n, np, L, job.db + b_slice * n * L);
        if (job.c_own) WriteOwnSlice(c_own, n, np, L, job.dc + c_slice * n * L);
      }
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(ScanGradTasks, ScanGradJob, ScanGradTasks)

// Adds up the tasks' partial sums of dB or dC into the output, slice by slice.
struct ScanSumJob {
  Blocks blocks;  // slices of the output
  Operand op;
  int64_t n = 0, np = 0;
  int64_t b_tile = 1, b_tiles = 0, d_tile = 1, d_tiles = 0, slots = 0;
  const double* sums = nullptr;
  float* out = nullptr;
};

template <typename V>
CB_INLINE void ScanSumSlices(const ScanSumJob& job, int64_t s0, int64_t s1) {
  const Operand& op = job.op;
  const int64_t row = op.lb * job.np;
  std::vector<double> acc(static_cast<size_t>(row));
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t b = s / op.db, d = s % op.db;
    const int64_t bi0 = op.bb == 1 ? 0 : b / job.b_tile;
    const int64_t bi1 = op.bb == 1 ? job.b_tiles : bi0 + 1;
    const int64_t ci0 = op.db == 1 ? 0 : d / job.d_tile;
    const int64_t ci1 = op.db == 1 ? job.d_tiles : ci0 + 1;
    const int64_t slot =
        SlotOf(op, job.d_tile, b, d, bi0 * job.b_tile, ci0 * job.d_tile);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t bi = bi0; bi < bi1; ++bi) {
      for (int64_t ci = ci0; ci < ci1; ++ci) {
        const double* src = job.sums + ((bi * job.d_tiles + ci) * job.slots + slot) * row;
        for (int64_t k = 0; k < row; ++k) acc[k] += src[k];
      }
    }
    float* dst = job.out + s * job.n * op.lb;
    for (int64_t i = 0; i < job.n; ++i) {
      for (int64_t l = 0; l < op.lb; ++l) {
        dst[i * op.lb + l] = static_cast<float>(acc[l * job.np + i]);
      }
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(ScanSumSlices, ScanSumJob, ScanSumSlices)

OrtStatus* ComputeSelectiveScanGrad(OrtKernelContext* ctx, Simd simd) {
  Shape dys;
  ScanInputs in;
  ScanGradJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dY", &dys, &job.dy));
  CB_RETURN_IF_ERROR(GetScanInputs(ctx, "SelectiveScanGrad", 1, &in));
  if (!SameShape(dys, in.us)) {
    return Error("Cannot run SelectiveScanGrad as dY must have U's shape: dY " +
                 ShapeString(dys) + ", U " + ShapeString(in.us));
  }
  float* da = nullptr;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, in.us, &job.du));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, in.us, &job.ddelta));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 2, in.as, &da));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 3, in.bs, &job.db));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 4, in.cs, &job.dc));
  const int64_t Bt = in.batch, D = in.channels, L = in.length, N = in.n;
  const int64_t W = LanesOf(simd);
  const int64_t np = (N + W - 1) / W * W;
  job.batch = Bt;
  job.channels = D;
  job.length = L;
  job.n = N;
  job.np = np;
  job.u = in.u;
  job.delta = in.delta;
  job.b = in.b;
  job.c = in.c;
  const std::vector<float> a_rows = PaddedRows(in.a, D, N, np);
  job.a_rows = a_rows.data();

  // Tiles: a whole batch per task where an operand shared by the batch changes with the step
  // (else its partial sums would take Bt × its size), channels for about kScanTaskSteps.
  auto owned = [&](const Operand& op) { return op.bb == Bt && op.db == D && op.lb == L; };
  auto batch_shared = [&](const Operand& op) {
    return op.bb == 1 && Bt > 1 && op.lb == L && L > 1;
  };
  job.b_own = owned(in.b);
  job.c_own = owned(in.c);
  job.b_tile = batch_shared(in.b) || batch_shared(in.c) ? Bt : 1;
  const int64_t pair_steps = std::max<int64_t>(1, job.b_tile * L * N);
  job.d_tile = std::min(std::max<int64_t>(1, D), std::max<int64_t>(1, kScanTaskSteps / pair_steps));
  const int64_t b_tiles = Bt == 0 ? 0 : Bt / job.b_tile;
  job.d_tiles = (D + job.d_tile - 1) / job.d_tile;
  const int64_t tasks = b_tiles * job.d_tiles;
  job.b_slots = SlotsOf(in.b, job.b_tile, job.d_tile);
  job.c_slots = SlotsOf(in.c, job.b_tile, job.d_tile);
  // Each task writes all of its own partial sums before it reads them.
  const int64_t a_size = tasks * job.d_tile * np;
  const int64_t b_size = job.b_own ? 0 : tasks * job.b_slots * in.b.lb * np;
  const int64_t c_size = job.c_own ? 0 : tasks * job.c_slots * in.c.lb * np;
  std::unique_ptr<double[]> sums(new double[static_cast<size_t>(a_size + b_size + c_size)]);
  job.a_sums = sums.get();
  job.b_sums = job.a_sums + a_size;
  job.c_sums = job.b_sums + b_size;
  job.blocks = {tasks, 1, simd};
  CB_RETURN_IF_ERROR((RunBlocks<ScanGradJob, ScanGradTasksSse2, ScanGradTasksAvx2,
                                ScanGradTasksAvx512>(ctx, &job)));

  // dA[d] = the tasks' sums for channel d, in batch-tile order.
  for (int64_t d = 0; d < D; ++d) {
    const int64_t ci = d / job.d_tile;
    for (int64_t i = 0; i < N; ++i) {
      double s = 0.0;
      for (int64_t bi = 0; bi < b_tiles; ++bi) {
        s += job.a_sums[((bi * job.d_tiles + ci) * job.d_tile + d % job.d_tile) * np + i];
      }
      da[d * N + i] = static_cast<float>(s);
    }
  }
  const std::pair<const Operand*, bool> outs[] = {{&in.b, job.b_own}, {&in.c, job.c_own}};
  for (const auto& [op, own] : outs) {
    if (own) continue;
    ScanSumJob sum;
    sum.op = *op;
    sum.n = N;
    sum.np = np;
    sum.b_tile = job.b_tile;
    sum.b_tiles = b_tiles;
    sum.d_tile = job.d_tile;
    sum.d_tiles = job.d_tiles;
    const bool is_b = op == &in.b;
    sum.slots = is_b ? job.b_slots : job.c_slots;
    sum.sums = is_b ? job.b_sums : job.c_sums;
    sum.out = is_b ? job.db : job.dc;
    const int64_t per_slice = std::max<int64_t>(1, N * op->lb * (op->bb == 1 ? b_tiles : 1) *
                                                       (op->db == 1 ? job.d_tiles : 1));
    sum.blocks = {op->bb * op->db, RowsPerBlock(per_slice), simd};
    CB_RETURN_IF_ERROR((RunBlocks<ScanSumJob, ScanSumSlicesSse2, ScanSumSlicesAvx2,
                                  ScanSumSlicesAvx512>(ctx, &sum)));
  }
  return nullptr;
}

}  // namespace

CB_REGISTER_OP("SelectiveScan", 5, 2, 0, ComputeSelectiveScan);
CB_REGISTER_OP("SelectiveScanGrad", 6, 5, 0, ComputeSelectiveScanGrad);

}  // namespace cb
