/**
 * The op table of a built native op library (`native/build.ts`): the custom ops its kernel files
 * register with `CB_REGISTER_OP`, as its `ClaimbenchOpTable()` export lists them, so that tests
 * can check them against the TypeScript registry.
 * @module
 */

/** One op of the native library: its name (domain `ai.claimbench`) and its arity. */
export interface NativeOp {
  name: string;
  inputs: number;
  outputs: number;
}

/**
 * The ops the native library at `library` registers, sorted by name.
 *
 * @example
 * ```ts
 * import { buildNativeOps } from "./build.ts";
 * const adamW = nativeOpTable(await buildNativeOps()).find((op) => op.name === "AdamW");
 * // adamW: { name: "AdamW", inputs: 14, outputs: 3 }
 * ```
 */
export function nativeOpTable(library: string): NativeOp[] {
  const lib = Deno.dlopen(library, {
    ClaimbenchOpTable: { parameters: [], result: "pointer" },
  });
  try {
    const table = lib.symbols.ClaimbenchOpTable();
    if (table === null) {
      throw new TypeError(`Cannot read the op table of ${library} as it returned a null pointer`);
    }
    // The C string lives as long as the library: read it before closing.
    return JSON.parse(Deno.UnsafePointerView.getCString(table)) as NativeOp[];
  } finally {
    lib.close();
  }
}
