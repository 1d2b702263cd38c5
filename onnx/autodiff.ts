/**
 * Reverse-mode automatic differentiation over a recorded graph: walks the nodes between the
 * parameters and a scalar loss backwards, applies each op's rule from the gradient table, sums
 * gradients that reach a value along several paths, and sums broadcast gradients back to their
 * input's shape (unbroadcasting happens here and nowhere else).
 * @module
 */
import { type Node, staticShape, type Value } from "./graph.ts";
import { CUSTOM_DOMAIN } from "./custom/kit.ts";
import { columnSums } from "./custom/linear.ts";
import { MS_DOMAIN } from "./ops.ts";

/** Domains whose ops the gradient table covers: ONNX, ours, and ORT's `FusedMatMul`. */
const DIFFERENTIABLE_DOMAINS: readonly string[] = ["", CUSTOM_DOMAIN, MS_DOMAIN];
import { GRADIENTS, type GradRule } from "./gradients.ts";
import { add, expand, isFloat, reduceSum, reshape } from "./ops.ts";

/** Sums `grad` (shape broadcast from `target`'s) back to `target`'s shape. */
export function unbroadcast(grad: Value, target: Value): Value {
  const gs = staticShape(grad, "unbroadcast a gradient");
  const ts = staticShape(target, "unbroadcast a gradient");
  if (gs.length === ts.length && gs.every((d, i) => d === ts[i])) return grad;
  const lead = gs.length - ts.length;
  const axes: number[] = [];
  gs.forEach((d, i) => {
    if (i < lead || (ts[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  // A bias over the rows (a linear layer's: every leading axis summed, the last kept): one
  // ColumnSums over the rows, which has a native kernel and ReduceSum's bits.
  const last = gs.length - 1;
  const rows = last >= 1 && axes.length === last && axes.every((a, i) => a === i);
  const summed = rows
    ? columnSums(reshape(grad, [-1, gs[last]]))
    : axes.length
    ? reduceSum(grad, axes, { keepdims: true })
    : grad;
  return reshape(summed, ts);
}

/**
 * Appends to the graph the gradient of the scalar `loss` with respect to each of `wrt`.
 * A parameter the loss does not depend on gets a zero gradient.
 */
export function gradients(loss: Value, wrt: readonly Value[]): Value[] {
  const g = loss.graph;
  if (loss.shape.length !== 0) {
    throw new TypeError(`Cannot differentiate ${loss.name} of shape [${loss.shape}]: not a scalar`);
  }
  // Forward pass: which values depend on a parameter.
  const depends = new Set(wrt.map((v) => v.name));
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (n.inputs.some((i) => i && depends.has(i.name))) {
      nodes.push(n);
      for (const o of n.outputs) if (isFloat(o.dtype)) depends.add(o.name);
    }
  }
  const pending = new Map<string, Value>([[loss.name, g.scalar(1, loss.dtype)]]);
  const accumulate = (v: Value, grad: Value) => {
    const prev = pending.get(v.name);
    pending.set(v.name, prev ? add(prev, grad) : grad);
  };
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    const dys = node.outputs.map((o) => pending.get(o.name) ?? null);
    if (dys.every((d) => d === null)) continue;
    const needs = node.inputs.map((i) => !!i && depends.has(i.name) && isFloat(i.dtype));
    const rule = (GRADIENTS as Readonly<Record<string, GradRule | undefined>>)[node.op];
    if (!rule || !DIFFERENTIABLE_DOMAINS.includes(node.domain)) {
      throw new TypeError(`Cannot differentiate ${node.domain}${node.op}: no gradient rule`);
    }
    const dy = dys[0] ?? dys.find((d) => d !== null)!;
    const grads = rule({ node, dy, dys, needs });
    node.inputs.forEach((input, i) => {
      const grad = grads[i];
      if (input && needs[i] && grad) accumulate(input, unbroadcast(grad, input));
    });
  }
  return wrt.map((v) =>
    pending.get(v.name) ?? expand(g.scalar(0, v.dtype), staticShape(v, "build a zero gradient"))
  );
}
