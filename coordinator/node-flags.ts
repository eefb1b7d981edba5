/**
 * V8 flags the coordinator runs with, wherever it runs (the systemd unit, the
 * lab, the benchmarks). Its live heap is small, but it allocates fast
 * (thousands of heartbeats a second), and V8's default lets such a heap grow
 * to three or four times what is live. Growing 25 % past the live size keeps
 * the resident size near what is needed, for a few more major collections.
 */
export const COORDINATOR_NODE_FLAGS = ["--heap-growing-percent=25"];

/**
 * The environment the coordinator runs with, wherever it runs. glibc gives
 * threads that allocate at once arenas of their own, up to eight per core,
 * and each keeps what was freed in it: at 1,000 agents eight such arenas
 * held about 100 MB of a 292 MB resident size, and two arenas took the peak
 * at 2,000 agents from 351 to 262 MB. The coordinator's work is on one
 * thread; the others (V8's and libuv's helpers) allocate little.
 */
export const COORDINATOR_ENV = { MALLOC_ARENA_MAX: "2" } as const;
