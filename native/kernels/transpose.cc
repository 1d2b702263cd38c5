// BatchTranspose(X [B, M, N]) -> Y [B, N, M]: each matrix of a batch transposed, the layout change
// between a sequence model's [batch, length, channels] and the selective scan's [batch, channels,
// length]. Its ONNX function definition (Transpose, perm [0, 2, 1]) is in
// onnx/custom/transpose.ts. A copy, so the bits are X's.

#include <cstdint>
#include <string>

#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// Tiles of kTile × kTile elements, so that both the reads of X and the writes of Y stay within a
// few cache lines per tile row.
constexpr int64_t kTile = 16;

struct BatchTransposeJob {
  Blocks blocks;  // (batch, tile row) pairs
  int64_t m = 0;
  int64_t n = 0;
  const float* x = nullptr;
  float* y = nullptr;
};

template <typename V>
CB_INLINE void BatchTransposeTiles(const BatchTransposeJob& job, int64_t u0, int64_t u1) {
  const int64_t m = job.m;
  const int64_t n = job.n;
  const int64_t tile_rows = (m + kTile - 1) / kTile;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t b = u / tile_rows;
    const int64_t i0 = (u % tile_rows) * kTile;
    const int64_t i1 = i0 + kTile < m ? i0 + kTile : m;
    const float* x = job.x + b * m * n;  // [M, N]
    float* y = job.y + b * m * n;        // [N, M]
    for (int64_t j0 = 0; j0 < n; j0 += kTile) {
      const int64_t j1 = j0 + kTile < n ? j0 + kTile : n;
      for (int64_t j = j0; j < j1; ++j) {
        for (int64_t i = i0; i < i1; ++i) y[j * m + i] = x[i * n + j];
      }
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(BatchTransposeTiles, BatchTransposeJob, BatchTransposeTiles)

OrtStatus* ComputeBatchTranspose(OrtKernelContext* ctx, Simd simd) {
  Shape xs;
  BatchTransposeJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  if (xs.rank != 3) {
    return Error("Cannot run BatchTranspose as X must have rank 3: current shape is " +
                 ShapeString(xs));
  }
  job.m = xs.dims[1];
  job.n = xs.dims[2];
  Shape ys = xs;
  ys.dims[1] = job.n;
  ys.dims[2] = job.m;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, ys, &job.y));
  if (job.m == 0 || job.n == 0) return nullptr;
  const int64_t units = xs.dims[0] * ((job.m + kTile - 1) / kTile);
  job.blocks = {units, RowsPerBlock(kTile * job.n), simd};
  return RunBlocks<BatchTransposeJob, BatchTransposeTilesSse2, BatchTransposeTilesAvx2,
                   BatchTransposeTilesAvx512>(ctx, &job);
}

}  // namespace

CB_REGISTER_OP("BatchTranspose", 1, 1, 0, ComputeBatchTranspose);

}  // namespace cb
