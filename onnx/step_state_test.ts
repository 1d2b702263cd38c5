import { assertEquals, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import type { ParamSpec } from "./optim.ts";
import { tensor } from "./runtime.ts";
import {
  advanceFeeds,
  initialStepState,
  stateFeeds,
  stateParams,
  storeFeeds,
} from "./step_state.ts";

const params = (): ParamSpec[] => {
  const r = new Prng(5);
  return [
    { name: "w", shape: [4, 2], init: new Float32Array(8).map(() => r.normal()), decay: true },
    { name: "b", shape: [2], init: new Float32Array(2), decay: false },
  ];
};

Deno.test("state feeds flatten p, m and v in parameter order, and store back as views", () => {
  const ps = params();
  const state = initialStepState(ps);
  state.tensors.set("m.b", Float32Array.of(7, 8));
  const feeds = stateFeeds(state, ps);
  assertEquals(Object.keys(feeds), ["p", "m", "v"]);
  assertEquals(feeds.p.dims, [10]);
  assertEquals(Array.from(feeds.m.data as Float32Array).slice(8), [7, 8]);
  const next = {
    "next.p": tensor("float32", new Float32Array(10).fill(1), [10]),
    "next.m": tensor("float32", new Float32Array(10).fill(2), [10]),
    "next.v": tensor("float32", new Float32Array(10).fill(3), [10]),
  };
  advanceFeeds(feeds, next);
  storeFeeds(state, feeds, ps);
  assertEquals(Array.from(state.tensors.get("v.w")!), new Array(8).fill(3));
  assertEquals(Array.from(state.tensors.get("p.b")!), [1, 1]);
  state.tensors.delete("m.w");
  assertThrows(() => stateFeeds(state, ps), RangeError, "m.w");
});

Deno.test("the initial state holds the initial parameters and zero moments", () => {
  const ps = params();
  const state = initialStepState(ps);
  assertEquals([...state.tensors.keys()], ["p.w", "m.w", "v.w", "p.b", "m.b", "v.b"]);
  assertEquals(stateParams(state).get("w"), ps[0].init);
  assertEquals(state.tensors.get("v.w"), new Float32Array(8));
});
