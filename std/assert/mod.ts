/**
 * The subset of `@std/assert` that claimbench uses, built on `node:assert/strict`.
 *
 * JSR (where `@std/assert` lives) is unreachable from our machines; `deno.json` maps the name
 * `@std/assert` here so switching to the real package is a one-line change of that mapping.
 * Signatures follow `@std/assert` 1.x.
 * @module
 */
import assert from "node:assert/strict";

/** Error thrown by every assertion here (the real package exports a class of this name). */
export class AssertionError extends Error {
  /** Creates an assertion error with the given message. */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

function rethrow(e: unknown, msg?: string): never {
  if (e instanceof assert.AssertionError) {
    throw new AssertionError(msg ? `${msg}: ${e.message}` : e.message);
  }
  throw e;
}

/** Asserts that `expr` is truthy. */
export function assert_(expr: unknown, msg = "Expected expression to be truthy"): asserts expr {
  if (!expr) throw new AssertionError(msg);
}
export { assert_ as assert };

/** Asserts deep equality (structural, strict) of `actual` and `expected`. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  try {
    assert.deepStrictEqual(actual, expected);
  } catch (e) {
    rethrow(e, msg);
  }
}

/** Asserts that `actual` and `expected` are not deeply equal. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  try {
    assert.notDeepStrictEqual(actual, expected);
  } catch (e) {
    rethrow(e, msg);
  }
}

/** Asserts `Object.is(actual, expected)`. */
export function assertStrictEquals<T>(actual: unknown, expected: T, msg?: string): void {
  try {
    assert.strictEqual(actual, expected);
  } catch (e) {
    rethrow(e, msg);
  }
}

/**
 * Asserts `|actual − expected| ≤ tolerance`. As in `@std/assert`, the default tolerance is
 * relative: 1e-7 × |expected| (exact equality, including equal infinities, always passes).
 */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance?: number,
  msg?: string,
): void {
  if (Object.is(actual, expected)) return;
  const tol = tolerance ?? Math.abs(expected * 1e-7);
  const delta = Math.abs(expected - actual);
  if (!(delta <= tol)) {
    const base = `Expected actual: "${actual}" to be close to "${expected}": delta "${delta}"` +
      ` is greater than "${tol}"`;
    throw new AssertionError(msg ? `${msg}: ${base}` : base);
  }
}

/** Asserts `actual > expected`. */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual > expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} > ${expected}`);
  }
}

/** Asserts `actual >= expected`. */
export function assertGreaterOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual >= expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} >= ${expected}`);
  }
}

/** Asserts `actual < expected`. */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual < expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} < ${expected}`);
  }
}

/** Asserts `actual <= expected`. */
export function assertLessOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual <= expected)) {
    throw new AssertionError(msg ?? `Expect ${actual} <= ${expected}`);
  }
}

/** Asserts that `actual` includes `expected` as a substring. */
export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  if (!actual.includes(expected)) {
    throw new AssertionError(msg ?? `Expected "${actual}" to contain "${expected}"`);
  }
}

/** Asserts that `actual` matches the regular expression `expected`. */
export function assertMatch(actual: string, expected: RegExp, msg?: string): void {
  if (!expected.test(actual)) {
    throw new AssertionError(msg ?? `Expected "${actual}" to match ${expected}`);
  }
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/**
 * Asserts that `fn` throws. With an error class, also checks the class and, when given, that
 * the message includes `msgIncludes`. Returns the thrown error.
 */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  errorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): E {
  let thrown: unknown;
  let didThrow = false;
  try {
    fn();
  } catch (e) {
    thrown = e;
    didThrow = true;
  }
  if (!didThrow) throw new AssertionError(msg ?? "Expected function to throw.");
  checkError(thrown, errorClass, msgIncludes, msg);
  return thrown as E;
}

/** Asserts that the promise returned by `fn` rejects; same checks as {@linkcode assertThrows}. */
export async function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  errorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): Promise<E> {
  let thrown: unknown;
  let didThrow = false;
  try {
    await fn();
  } catch (e) {
    thrown = e;
    didThrow = true;
  }
  if (!didThrow) throw new AssertionError(msg ?? "Expected function to reject.");
  checkError(thrown, errorClass, msgIncludes, msg);
  return thrown as E;
}

function checkError<E extends Error>(
  thrown: unknown,
  errorClass: ErrorClass<E> | undefined,
  msgIncludes: string | undefined,
  msg: string | undefined,
): void {
  if (errorClass && !(thrown instanceof errorClass)) {
    throw new AssertionError(
      msg ??
        `Expected error to be instance of "${errorClass.name}", but was "${
          (thrown as Error)?.constructor?.name
        }": ${(thrown as Error)?.message}`,
    );
  }
  if (msgIncludes !== undefined) {
    const message = (thrown as Error)?.message ?? String(thrown);
    if (!message.includes(msgIncludes)) {
      throw new AssertionError(
        msg ?? `Expected error message to include "${msgIncludes}", but got "${message}"`,
      );
    }
  }
}

/** Always throws: marks code that must not be reached. */
export function fail(msg?: string): never {
  throw new AssertionError(msg ? `Failed assertion: ${msg}` : "Failed assertion.");
}
