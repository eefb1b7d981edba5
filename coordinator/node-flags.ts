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
 * each thread that allocates its own malloc arena, and V8's helper threads
 * (collector, compiler) each left one holding freed memory: at 2,000 agents
 * they held about 90 MB of a 350 MB resident size. Two arenas are enough for
 * a process whose work is on one thread.
 */
export const COORDINATOR_ENV = { MALLOC_ARENA_MAX: "2" } as const;
