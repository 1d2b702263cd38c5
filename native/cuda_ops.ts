/**
 * The CUDA library's entry points (`native/cuda/*.cu`, built by `buildCudaOps`) as Deno FFI
 * symbols: the device count and the selective scan's host and timing entries. Return codes: 0,
 * −(a CUDA error code), or the scan's own codes (−1000 a bad shape, −1001 N outside 1..64,
 * −1002 a null pointer, −1003 sizes too large, −1004 a bad repeat count or workspace), which are
 * checked before any CUDA call and so come back the same without a GPU.
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
