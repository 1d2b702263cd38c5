/**
 * The custom-op kit: what an op of claimbench's own ONNX domain (`ai.claimbench`) is made of.
 *
 * An op is one {@linkcode CustomOp} record in its family's file (`onnx/custom/<family>.ts`),
 * listed once in `onnx/custom/registry.ts`:
 * - a typed wrapper that checks shapes and appends the node ({@linkcode emitCustomOp});
 * - its portable definition, a model-local ONNX function that any ONNX Runtime inlines, traced
 *   by {@linkcode traceFunction} from a composition of the builder's wrappers (`onnx/ops.ts`),
 *   the same builder the models use: the composition is written once;
 * - its gradient rule, which the registry adds to the one gradient table (`onnx/gradients.ts`);
 * - its finite-difference cases, and for an op with a native kernel (`native/kernels/`) how that
 *   kernel must agree with the definition; tests run both for every registered op.
 * @module
 */
import {
  type Dim,
  type DType,
  Graph,
  initializerData,
  nodeData,
  OPSET,
  type Value,
} from "../graph.ts";
import type { Attr } from "../graph.ts";
import type { FunctionData, NodeData } from "../proto.ts";
import type { GradArgs, GradRule } from "../gradients.ts";
import type { CheckInput, GradCheckCase } from "../gradcheck.ts";

/** The ONNX domain of claimbench's own ops. */
export const CUSTOM_DOMAIN = "ai.claimbench";

/** How a native kernel must agree with its op's portable definition. */
export interface KernelCheck {
  /** Sample inputs of the op (float32 unless said; `data` fixes values, else uniform [−1, 1)). */
  readonly inputs: readonly CheckInput[];
  /** Builds the op from graph inputs of those shapes; returns every output of the node. */
  readonly build: (xs: Value[]) => Value[];
  /**
   * `"bits"`: the kernel computes its definition's bits; a number: the largest allowed
   * |native − portable| / (1 + |portable|) (the kernel has its own rounding).
   */
  readonly agreement: "bits" | number;
}

/** One custom op: its ONNX signature, gradient rule, and the checks the registry drives. */
export interface CustomOp<Name extends string = string> {
  /** The op's name in `ai.claimbench` (and its native kernel's). */
  readonly name: Name;
  /** Formal input names of its ONNX function, in order (the kernel's input count). */
  readonly inputs: readonly string[];
  /** Formal output names (the kernel's output count). */
  readonly outputs: readonly string[];
  /** Reverse-mode rule: the gradient table's entry for this op. */
  readonly gradient: GradRule;
  /** Finite-difference checks of that rule, or why there are none. */
  readonly gradCheck: readonly GradCheckCase[] | "not differentiable";
  /** Present when `native/kernels/` has a CPU kernel for the op. */
  readonly kernel?: KernelCheck;
}

/** An input of a traced definition: its formal name, dtype and (possibly symbolic) shape. */
export interface TraceInput {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

/**
 * Traces `compose` into the ONNX function that defines op `name`: the composition runs on a
 * fresh graph whose inputs are `inputs`; its nodes become the function's body, its constants
 * `Constant` nodes, and the values it returns the function's `outputs`, in order.
 */
export function traceFunction(
  name: string,
  inputs: readonly TraceInput[],
  outputs: readonly string[],
  compose: (xs: Value[]) => readonly Value[],
): FunctionData {
  const g = new Graph(`${name} definition`);
  const xs = inputs.map((i) => g.input(i.name, i.dtype, i.shape));
  const ys = compose(xs);
  if (ys.length !== outputs.length) {
    throw new TypeError(
      `Cannot define ${name} as its composition returns ${ys.length} values for ` +
        `${outputs.length} outputs (${outputs.join(", ")})`,
    );
  }
  // A value a node produces takes its output's name; an input, a constant or a value returned
  // twice is copied to it by an Identity node.
  const rename = new Map<string, string>();
  const copies: NodeData[] = [];
  ys.forEach((y, i) => {
    if (y.graph !== g) throw new TypeError(`Cannot define ${name}: output ${i} is not traced`);
    if (g.producer(y) === undefined || rename.has(y.name)) {
      copies.push({ opType: "Identity", inputs: [y.name], outputs: [outputs[i]] });
    } else rename.set(y.name, outputs[i]);
  });
  const named = (n: string) => rename.get(n) ?? n;
  const constants: NodeData[] = g.initializers.map((init) => {
    const { name: _, ...value } = initializerData(init);
    return {
      opType: "Constant",
      inputs: [],
      outputs: [named(init.value.name)],
      attributes: { value: { kind: "tensor", value } },
    };
  });
  const body = g.nodes.map(nodeData).map((n) => ({
    ...n,
    inputs: n.inputs.map((i) => (i === "" ? i : named(i))),
    outputs: n.outputs.map(named),
  }));
  const domains = Object.fromEntries(
    body.filter((n) => n.domain).map((n) => [n.domain as string, 1]),
  );
  return {
    name,
    domain: CUSTOM_DOMAIN,
    inputs: inputs.map((i) => i.name),
    outputs: [...outputs],
    opsets: { "": OPSET, ...domains },
    nodes: [...constants, ...body, ...copies],
  };
}

/**
 * Appends a node of `op` to its first input's graph, with `definition` (its traced ONNX
 * function) registered there for the portable engine.
 */
export function emitCustomOp(
  op: CustomOp,
  definition: FunctionData,
  inputs: readonly Value[],
  outputs: readonly { dtype: DType; shape: readonly Dim[] }[],
  attrs: Record<string, Attr> = {},
): Value[] {
  if (inputs.length !== op.inputs.length || outputs.length !== op.outputs.length) {
    throw new TypeError(
      `Cannot emit ${op.name} with ${inputs.length} inputs and ${outputs.length} outputs: it ` +
        `takes ${op.inputs.length} and gives ${op.outputs.length}`,
    );
  }
  const g = inputs[0].graph;
  g.useFunction(definition);
  return g.node(op.name, inputs, outputs, attrs, CUSTOM_DOMAIN);
}

/** The trace inputs of `op` from the values it is applied to, each dim as `shapes` says. */
export function traceInputs(
  op: CustomOp,
  values: readonly Value[],
  shapes: readonly (readonly Dim[])[],
): TraceInput[] {
  return op.inputs.map((name, i) => ({ name, dtype: values[i].dtype, shape: shapes[i] }));
}

/**
 * The dims a definition is traced with for a value of `rank`: symbolic `d0`, `d1`, …, the last
 * one `last` when given (a name shared with another input, or a number the composition needs).
 */
export function symbolicDims(rank: number, last?: Dim): Dim[] {
  return Array.from(
    { length: rank },
    (_, i) => (i === rank - 1 && last !== undefined ? last : `d${i}`),
  );
}

/** The rule of a gradient op: training never differentiates twice. */
export function secondOrder(name: string): GradRule {
  return () => {
    throw new TypeError(`Cannot differentiate ${name}: no second-order rule`);
  };
}

/** A node's inputs, all present (custom ops have no optional inputs). */
export function nodeInputs(args: GradArgs): Value[] {
  return args.node.inputs as Value[];
}
