import { assertEquals, assertThrows } from "@std/assert";
import { parseArgs } from "@std/cli";

Deno.test("parseArgs collects repeated flags and applies defaults", () => {
  const a = parseArgs(["run", "--suite", "a", "--suite", "b", "--fresh"], {
    string: ["suite", "profile"],
    boolean: ["fresh"],
    collect: ["suite"],
    default: { profile: "full" },
  });
  assertEquals(a._, ["run"]);
  assertEquals(a.suite, ["a", "b"]);
  assertEquals(a.profile, "full");
  assertEquals(a.fresh, true);
});

Deno.test("parseArgs rejects an unknown flag, naming it", () => {
  assertThrows(() => parseArgs(["--bogus"], { string: ["suite"] }), TypeError, "--bogus");
});

Deno.test("parseArgs collects repeated booleans; absent booleans are false, collects []", () => {
  const opts = { string: ["out"], boolean: ["fresh", "debug"], collect: ["out", "fresh"] };
  const a = parseArgs(["--out", "a", "--out", "b", "--fresh", "--fresh", "--debug"], opts);
  assertEquals([a.out, a.fresh, a.debug], [["a", "b"], [true, true], true]);
  const b = parseArgs([], opts);
  assertEquals([b.out, b.fresh, b.debug], [[], [], false]);
});
