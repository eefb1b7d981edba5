import { standInOnClusterPort, type PortStandIn } from "./preflight.js";
import { probeTcp, type Probe } from "./tcp-probe.js";

/**
 * The agent's reach into the cluster network: TCP connects to cluster
 * addresses (peer latency, preflight, the cluster's check that it can reach
 * a joiner back) and a listener on its own cluster address while it waits to
 * join. A host uses its own network; the scale benchmark's simulator, whose
 * members' addresses carry no traffic, gives one of its own.
 */
export interface ClusterNetwork {
  probe: Probe;
  standIn(address: string): Promise<PortStandIn>;
}

export const hostNetwork: ClusterNetwork = { probe: probeTcp, standIn: standInOnClusterPort };
