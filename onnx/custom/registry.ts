/**
 * Every op of claimbench's own ONNX domain, one line each. The registry drives the gradient
 * table's entries for them (`onnx/gradients.ts`), their finite-difference checks and the
 * native-kernel-against-definition checks (`onnx/custom/registry_test.ts`), and the check that
 * the native library's op table (`native/`) lists exactly the ops declared here with a kernel.
 * Adding an op: its family file (wrapper, traced definition, rule, checks), its kernel file, and
 * one line here (`onnx/custom/README.md`).
 * @module
 */
import { BIAS_ATTENTION, BIAS_ATTENTION_GRAD } from "./attention.ts";
import { CAUSAL_DEPTHWISE_CONV1D, CAUSAL_DEPTHWISE_CONV1D_GRAD, CONV1D_IM2COL } from "./conv.ts";
import { BIAS_GELU, BIAS_GELU_GRAD, GELU_GRAD } from "./gelu.ts";
import { LAYER_NORM_GRAD, ROW_LAYER_NORM } from "./layer_norm.ts";
import { BIAS_RESIDUAL, COLUMN_SUMS, MATMUL_TRANS_A } from "./linear.ts";
import { MASKED_CROSS_ENTROPY, MASKED_CROSS_ENTROPY_GRAD } from "./loss.ts";
import { METRIC_ATTENTION, METRIC_ATTENTION_GRAD } from "./metric_attention.ts";
import { ADAMW, SUM_OF_SQUARES } from "./optim.ts";
import { SELECTIVE_SCAN, SELECTIVE_SCAN_GRAD } from "./selective_scan.ts";
import { BATCH_TRANSPOSE } from "./transpose.ts";

/** The custom ops, each declared once in its family's file. */
export const CUSTOM_OPS = [
  BIAS_ATTENTION,
  BIAS_ATTENTION_GRAD,
  CONV1D_IM2COL,
  CAUSAL_DEPTHWISE_CONV1D,
  CAUSAL_DEPTHWISE_CONV1D_GRAD,
  GELU_GRAD,
  BIAS_GELU,
  BIAS_GELU_GRAD,
  ROW_LAYER_NORM,
  LAYER_NORM_GRAD,
  COLUMN_SUMS,
  MATMUL_TRANS_A,
  BIAS_RESIDUAL,
  MASKED_CROSS_ENTROPY,
  MASKED_CROSS_ENTROPY_GRAD,
  ADAMW,
  SUM_OF_SQUARES,
  SELECTIVE_SCAN,
  SELECTIVE_SCAN_GRAD,
  METRIC_ATTENTION,
  METRIC_ATTENTION_GRAD,
  BATCH_TRANSPOSE,
] as const;

/** The name of a registered custom op. */
export type CustomOpName = (typeof CUSTOM_OPS)[number]["name"];
