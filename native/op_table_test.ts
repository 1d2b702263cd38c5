import { assertEquals } from "@std/assert";
import { buildNativeOps } from "./build.ts";
import { type NativeOp, nativeOpTable } from "./op_table.ts";

/** claimbench's native ops and their arity (MaskedCrossEntropy's Targets are int32). */
const OPS: readonly NativeOp[] = [
  { name: "BiasAttention", inputs: 3, outputs: 1 },
  { name: "BiasAttentionGrad", inputs: 4, outputs: 1 },
  { name: "GeluGrad", inputs: 2, outputs: 1 },
  { name: "LayerNormGrad", inputs: 5, outputs: 3 },
  { name: "ColumnSums", inputs: 1, outputs: 1 },
  { name: "AdamW", inputs: 14, outputs: 3 },
  { name: "RowLayerNorm", inputs: 3, outputs: 3 },
  { name: "MaskedCrossEntropy", inputs: 3, outputs: 1 },
  { name: "MaskedCrossEntropyGrad", inputs: 4, outputs: 1 },
  { name: "BiasResidual", inputs: 3, outputs: 1 },
  { name: "BiasGelu", inputs: 2, outputs: 2 },
  { name: "SumOfSquares", inputs: 1, outputs: 1 },
  { name: "BiasGeluGrad", inputs: 2, outputs: 2 },
  { name: "MatMulTransA", inputs: 2, outputs: 1 },
  { name: "SelectiveScan", inputs: 5, outputs: 2 },
  { name: "SelectiveScanGrad", inputs: 6, outputs: 5 },
  { name: "MetricAttention", inputs: 4, outputs: 1 },
  { name: "MetricAttentionGrad", inputs: 5, outputs: 2 },
  { name: "BatchTranspose", inputs: 1, outputs: 1 },
  { name: "CausalDepthwiseConv1d", inputs: 3, outputs: 1 },
  { name: "CausalDepthwiseConv1dGrad", inputs: 3, outputs: 2 },
];

Deno.test("the native library registers exactly claimbench's ops, sorted by name, with their arity", async () => {
  const table = nativeOpTable(await buildNativeOps());
  const byName = [...OPS].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  assertEquals(table, byName);
});
