import { assertEquals, assertMatch } from "@std/assert";
import { formatSeconds, Progress } from "./progress.ts";

Deno.test("off a TTY, progress prints a timestamped line per interval and a final line", () => {
  let now = 0;
  const lines: string[] = [];
  const p = new Progress("train", 100, {
    tty: false,
    intervalSeconds: 5,
    write: (s) => lines.push(s),
    now: () => now,
  });
  for (let i = 1; i <= 100; i++) {
    now = i * 100; // 10 steps per second
    p.update(i, `loss ${(1 / i).toFixed(3)}`);
  }
  p.finish();
  // Lines at t = 0.1 s (first), 5.1 s, and the final one.
  assertEquals(lines.length, 3);
  assertMatch(
    lines[1],
    /^\[\d\d:\d\d:\d\d\] train \| step 51\/100 \(51%\) \| 10 step\/s \| ETA 5s/,
  );
  assertMatch(lines[2], /step 100\/100 \(100%\).*loss 0\.010\n$/);
});

Deno.test("on a TTY, progress redraws one line at most ten times a second", () => {
  let now = 0;
  const out: string[] = [];
  const p = new Progress("x", 1000, { tty: true, write: (s) => out.push(s), now: () => now });
  for (let i = 1; i <= 1000; i++) {
    now = i; // 1 ms per step
    p.update(i);
  }
  assertEquals(out.length, 10);
  assertEquals(out[0].slice(0, 5), "\r\u001b[2K");
});

Deno.test("durations format compactly", () => {
  assertEquals(formatSeconds(42), "42s");
  assertEquals(formatSeconds(75), "1m15s");
  assertEquals(formatSeconds(3725), "1h02m");
});
