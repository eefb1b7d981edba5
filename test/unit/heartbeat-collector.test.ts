import test from "ava";
import { HeartbeatCollector } from "../../agent/heartbeat.js";
import type { IncusClient, IncusMember } from "../../agent/incus-client.js";

const member = (name: string): IncusMember => ({
  server_name: name,
  url: `https://192.0.2.${name.slice(-1)}:8443`,
  database: true,
  status: "Online",
  message: "Fully operational",
  roles: ["database"],
  failure_domain: "default",
  description: "",
  groups: ["default"],
  config: {},
  architecture: "x86_64",
});

/** The few calls a beat makes, answered by a clustered member of `members`. */
function memberOf(members: IncusMember[]): IncusClient {
  return {
    server: async () => ({ environment: { server_version: "6.0.4", server_name: "node1", server_clustered: true }, api_extensions: [], config: {} }),
    members: async () => members,
    storagePools: async () => [],
    instances: async () => [],
  } as unknown as IncusClient;
}

test("a member's view goes out when it changed, when asked for, and every thirtieth beat anyway; not on the beats between", async (t) => {
  const members = [member("node1"), member("node2")];
  const collector = new HeartbeatCollector(memberOf(members), async () => ({ reachable: true, rttMs: 0.2 }), () => "node1", {
    intervalMs: 1_000,
    peersPerRound: 4,
    probeTimeoutMs: 100,
    viewTimeoutMs: 100,
    viewEvery: 1,
  });
  const carriesView = async () => (await collector.collect(async () => 1, { offsetMs: null, rttMs: null })).view !== undefined;
  const beats: boolean[] = [];
  beats.push(await carriesView(), await carriesView());
  collector.resendView();
  beats.push(await carriesView());
  members.push(member("node3"));
  beats.push(await carriesView());
  for (let beat = 5; beat <= 30; beat++) beats.push(await carriesView());
  t.deepEqual(
    beats.flatMap((sent, i) => (sent ? [i + 1] : [])),
    [1, 3, 4, 30],
    "the first beat, the one after a nudge, the one after a member joined, and the thirtieth",
  );
});
