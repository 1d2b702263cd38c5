/**
 * The CUDA library's entry points (`native/cuda/*.cu`, built by `buildCudaOps`) as Deno FFI
 * symbols, one handle per family: the device count, and the selective scan's and metric
 * attention's host and timing entries. Return codes: 0, −(a CUDA error code), or the family's own
 * codes (scan: −1000 a bad shape, −1001 N outside 1..64, −1002 a null pointer, −1003 sizes too
 * large, −1004 a bad repeat count or workspace; metric attention: see
 * {@linkcode CudaMetricAttentionLibrary}), which are checked before any CUDA call and so come
 * back the same without a GPU.
 * @module
 */

const SYMBOLS = {
  ClaimbenchCudaDeviceCount: { parameters: [], result: "i32" },
  ClaimbenchSelectiveScanHost: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "i64",
      "i64",
      "i64",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  ClaimbenchSelectiveScanGradHost: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "i64",
      "i64",
      "i64",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  ClaimbenchSelectiveScanTime: {
    parameters: ["i64", "i64", "i64", "i64", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
} as const;

/** The CUDA library's selective-scan entry points. */
export type CudaScanLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Opens the CUDA library at `path`. */
export function openCudaScan(path: string): CudaScanLibrary {
  return Deno.dlopen(path, SYMBOLS);
}

// (p, m, bias, scale, B, H, T, K) as every metric-attention entry takes them.
const METRIC_INPUTS = ["buffer", "buffer", "buffer", "f32", "i64", "i64", "i64", "i64"] as const;

const METRIC_SYMBOLS = {
  ClaimbenchCudaDeviceCount: { parameters: [], result: "i32" },
  // (p, m, bias, scale, B, H, T, K, y)
  ClaimbenchMetricAttentionHost: { parameters: [...METRIC_INPUTS, "buffer"], result: "i32" },
  // (dy, p, m, bias, scale, B, H, T, K, dp, dm)
  ClaimbenchMetricAttentionGradHost: {
    parameters: ["buffer", ...METRIC_INPUTS, "buffer", "buffer"],
    result: "i32",
  },
  // (B, H, T, K) → bytes, or an error code
  ClaimbenchMetricAttentionWorkspaceBytes: {
    parameters: ["i64", "i64", "i64", "i64"],
    result: "i64",
  },
  // (B, H, T, K, causal, backward, repeats, ms_per_call)
  ClaimbenchMetricAttentionTime: {
    parameters: ["i64", "i64", "i64", "i64", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
} as const;

/**
 * The CUDA library's metric-attention entry points (`native/cuda/metric_attention.cu`), with the
 * same return codes: −1000 B, H or T below 1, −1001 K outside 1..64, −1002 a null pointer, −1003
 * sizes too large, −1004 a bad repeat count or workspace.
 */
export type CudaMetricAttentionLibrary = Deno.DynamicLibrary<typeof METRIC_SYMBOLS>;

/** Opens the CUDA library at `path` for its metric-attention entry points. */
export function openCudaMetricAttention(path: string): CudaMetricAttentionLibrary {
  return Deno.dlopen(path, METRIC_SYMBOLS);
}
