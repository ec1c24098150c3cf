"""The devcluster's network: one namespace per node joined by a bridge in a hub namespace (pure plan).

Nothing of it exists in the host's network namespace. Each node namespace holds the node's address on the
hub bridge, its pods' bridge, kube-proxy's rules for Services, and an address where a forwarder answers for
the API server (which listens on the host's 127.0.0.1). The host reaches into the namespaces only through
forwarders (``netforward``): the API server dials kubelets and pods through an HTTP CONNECT proxy (its
egress selector), and tests reach Services through a forwarder on 127.0.0.1.

Every cluster on the machine has the same addresses; they never meet, because each cluster has its own
namespaces (named after its address block, ``ipblock``).
"""

import dataclasses
import ipaddress

from . import nodes as node_names

NODE_NETWORK = ipaddress.ip_network("172.30.0.0/24")
"""The hub bridge: .1 is the hub itself, node N is .(10+N)."""
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
"""Node N's pods get 10.244.N.0/24."""
SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/16")
"""ClusterIPs; kube-proxy's rules in every node namespace answer for them."""
KUBERNETES_SERVICE_IP = "10.96.0.1"
"""The ``kubernetes`` Service's ClusterIP (the first address of the range)."""
CLUSTER_DNS_IP = "10.96.0.10"
"""The DNS address pods are given; no Service has it, so lookups fail inside the cluster at once."""
APISERVER_IP = "172.30.255.1"
"""Where the API server is reached inside every node namespace (a forwarder to the host's 127.0.0.1, same
port)."""
HUB_IP = "172.30.0.1"
PREFIX = "hsmdc"


@dataclasses.dataclass(frozen=True)
class Node:
    """One node's place in the network."""

    block: int
    index: int

    @property
    def name(self) -> str:
        """The Node object's name (the kubelet's ``--hostname-override``)."""
        return node_names.name(self.index)

    @property
    def netns(self) -> str:
        """Name of the node's network namespace (``/run/netns/<name>``)."""
        return f"{PREFIX}{self.block}-n{self.index}"

    @property
    def cgroup(self) -> str:
        """Name of the cgroup under every hierarchy's root that holds the node's processes and pods."""
        return self.netns

    @property
    def ip(self) -> str:
        """The node's InternalIP, on the hub bridge."""
        return str(NODE_NETWORK.network_address + 10 + self.index)

    @property
    def pod_cidr(self) -> str:
        """The node's pod range."""
        return f"10.244.{self.index}.0/24"

    @property
    def hub_port(self) -> str:
        """The hub end of the node's veth pair."""
        return f"n{self.index}"


def hub_netns(block: int) -> str:
    """Name of the cluster's hub namespace."""
    return f"{PREFIX}{block}-hub"


def nodes(block: int, count: int) -> list[Node]:
    """The cluster's nodes, 1-based."""
    if not 1 <= count <= 200:
        raise ValueError(f"node count {count} out of range 1..200")
    return [Node(block, index) for index in range(1, count + 1)]


def setup_commands(block: int, count: int) -> list[list[str]]:
    """``ip`` commands that build the hub and every node namespace, wired and routed.

    Both ends of each veth pair are created directly inside their namespaces, so no interface ever
    appears in the host's namespace.
    """
    hub = hub_netns(block)
    prefix = NODE_NETWORK.prefixlen
    all_nodes = nodes(block, count)
    cmds: list[list[str]] = [["ip", "netns", "add", hub]]
    cmds += [["ip", "netns", "add", node.netns] for node in all_nodes]
    cmds += [
        ["ip", "-n", hub, "link", "set", "lo", "up"],
        ["ip", "-n", hub, "link", "add", "br0", "type", "bridge"],
        ["ip", "-n", hub, "addr", "add", f"{HUB_IP}/{prefix}", "dev", "br0"],
        ["ip", "-n", hub, "link", "set", "br0", "up"],
    ]
    for node in all_nodes:
        ns = node.netns
        cmds += [
            [
                "ip",
                "link",
                "add",
                node.hub_port,
                "netns",
                hub,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            ],
            ["ip", "-n", hub, "link", "set", node.hub_port, "master", "br0"],
            ["ip", "-n", hub, "link", "set", node.hub_port, "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "addr", "add", f"{APISERVER_IP}/32", "dev", "lo"],
            ["ip", "-n", ns, "addr", "add", f"{node.ip}/{prefix}", "dev", "eth0"],
            ["ip", "-n", ns, "link", "set", "eth0", "up"],
            # Everything else (Service addresses before kube-proxy's DNAT, stray DNS) goes to the hub, which
            # routes nothing further: no packet leaves the cluster's namespaces.
            ["ip", "-n", ns, "route", "add", "default", "via", HUB_IP],
        ]
        for other in all_nodes:
            if other != node:
                cmds.append(["ip", "-n", ns, "route", "add", other.pod_cidr, "via", other.ip])
        cmds.append(["ip", "-n", hub, "route", "add", node.pod_cidr, "via", node.ip])
    return cmds


def namespaces(block: int, count: int) -> list[str]:
    """Every namespace of the cluster, hub last (deleting a node's namespace removes its veth pair)."""
    return [node.netns for node in nodes(block, count)] + [hub_netns(block)]


def sysctls(netns_is_node: bool) -> dict[str, str]:
    """Per-namespace sysctls: nodes route between pods, the hub and other nodes; the hub only bridges."""
    if not netns_is_node:
        return {"net.ipv4.ip_forward": "0"}
    return {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}
