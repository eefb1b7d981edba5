/**
 * V8 flags the coordinator runs with, wherever it runs (the systemd unit, the
 * lab, the benchmarks). Its live heap is small, but it allocates fast
 * (thousands of heartbeats a second), and V8's default lets such a heap grow
 * to three or four times what is live. Growing 25 % past the live size keeps
 * the resident size near what is needed, for a few more major collections.
 */
export const COORDINATOR_NODE_FLAGS = ["--heap-growing-percent=25"];
