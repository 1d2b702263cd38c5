import { assert, assertEquals, assertMatch } from "@std/assert";
import { SUITES } from "./registry.ts";

// Every registered suite gets these checks for free.
for (const suite of SUITES) {
  Deno.test(`suite ${suite.id}: id, file and metadata`, () => {
    assertMatch(suite.id, /^[a-z0-9]+(-[a-z0-9]+)*$/);
    const file = new URL(`./${suite.id.replaceAll("-", "_")}.ts`, import.meta.url);
    assert(Deno.statSync(file).isFile, `suites/${suite.id.replaceAll("-", "_")}.ts`);
    for (const field of [suite.title, suite.claim, suite.source]) assert(field.length > 10);
  });
}

Deno.test("suite ids are unique", () => {
  assertEquals(new Set(SUITES.map((s) => s.id)).size, SUITES.length);
});
