/**
 * Forward graphs for evaluating trained parameters: the parameters are graph inputs `p.<name>`
 * (as in the train step), so one session serves every seed and checkpoint of a model, and the
 * values come straight from a training state.
 * @module
 */
import { Graph, type Value } from "./graph.ts";
import { type BatchInput, batchInputs, paramInputs, type ParamShape } from "./optim.ts";
import { cachedSession, type Engine, type Session, type Tensor, tensor } from "./runtime.ts";

/** Everything needed to build a forward graph over trained parameters. */
export interface ForwardSpec {
  name: string;
  params: readonly ParamShape[];
  inputs: readonly BatchInput[];
  /** Builds the named outputs from parameter and input values. */
  outputs: (params: Record<string, Value>, inputs: Record<string, Value>) => Record<string, Value>;
  threads: number;
  /** Which kernels run the custom ops. */
  engine: Engine;
}

/** A loaded forward graph; `run` feeds trained values and a batch. */
export interface ForwardSession {
  run(
    values: ReadonlyMap<string, Float32Array>,
    inputs: Record<string, Tensor>,
  ): Promise<Record<string, Tensor>>;
}

/**
 * Builds `spec`'s graph and opens a (cached) session for it. Every parameter of `spec.params`
 * must be in the values passed to `run`; a missing one is an error naming it.
 */
export async function forwardSession(spec: ForwardSpec): Promise<ForwardSession> {
  const g = new Graph(spec.name);
  const p = paramInputs(g, spec.params);
  const x = batchInputs(g, spec.inputs);
  for (const [name, v] of Object.entries(spec.outputs(p, x))) g.output(v, name);
  const session: Session = await cachedSession(g.toModel(), {
    threads: spec.threads,
    engine: spec.engine,
  });
  return {
    async run(values, inputs) {
      const feeds: Record<string, Tensor> = { ...inputs };
      for (const s of spec.params) {
        const v = values.get(s.name);
        if (!v) {
          throw new TypeError(`Cannot run ${spec.name} as parameter ${s.name} has no value`);
        }
        feeds[`p.${s.name}`] = tensor("float32", v, s.shape);
      }
      return await session.run(feeds);
    },
  };
}
