import test from "ava";
import { PER_AGENT_RATE_LIMIT } from "../../coordinator/gateway/agent-gateway.js";
import { RateLimiter } from "../../coordinator/gateway/rate-limiter.js";

test("an agent may send 20 messages at once, then 5 a second; another agent's flood takes nothing from it", (t) => {
  const limiter = new RateLimiter(PER_AGENT_RATE_LIMIT, 100);
  const burst = Array.from({ length: 25 }, () => limiter.allow("c/flooder", 0));
  t.is(burst.filter(Boolean).length, 20, "the burst");
  t.false(limiter.allow("c/flooder", 100), "nothing earned back in 100 ms");
  t.true(limiter.allow("c/flooder", 200), "one earned back in 200 ms");
  const second = Array.from({ length: 10 }, () => limiter.allow("c/flooder", 1_200));
  t.is(second.filter(Boolean).length, 5, "five earned back in the next second");
  t.true(limiter.allow("c/honest", 1_200), "an honest agent has its own bucket");
});

test("the senders remembered are bounded: past the limit idle ones are forgotten, and a new one still gets its burst", (t) => {
  const limiter = new RateLimiter(PER_AGENT_RATE_LIMIT, 3);
  for (const s of ["a", "b", "c"]) limiter.allow(s, 0);
  t.true(limiter.allow("d", 60_000));
  t.true(limiter.size <= 3);
});
