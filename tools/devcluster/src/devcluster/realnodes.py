"""Real nodes for a cluster: their network, files, forwarders and supervisors (``network``, ``noderun``)."""

import os
import pathlib
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from . import hosthygiene, images, kubeapi, kubeconfig, netforward, network, nodeconfig, noderun, pki, softhsm
from .schsm import sandbox

NODES_DIR = "nodes"


def files(run_dir: pathlib.Path, node: network.Node) -> nodeconfig.NodeFiles:
    """Where ``node``'s files live on the host."""
    return nodeconfig.NodeFiles(run_dir / NODES_DIR / node.name)


def data_dir(run_dir: pathlib.Path, node_name: str) -> pathlib.Path:
    """The host directory a node sees as ``nodeconfig.HOST_DATA`` (SoftHSM2 tokens, the testbed)."""
    return run_dir / NODES_DIR / node_name / "data"


AGENT_UID = 65532
"""The agents' user: the token stores on the nodes must be theirs."""


def softhsm_store(run_dir: pathlib.Path, node_name: str) -> pathlib.Path:
    """``node_name``'s SoftHSM2 token store; returns the configuration the host uses (``softhsm2-util``).

    The store has a second configuration, ``softhsm2.conf``, with the path the node's pods see
    (``nodeconfig.HOST_DATA``/softhsm): agent pods are given that one.
    """
    store = data_dir(run_dir, node_name) / "softhsm"
    host_conf = softhsm.write_conf(store, name="host.conf")
    (store / "softhsm2.conf").write_text(softhsm.conf_text(nodeconfig.HOST_DATA / "softhsm" / "tokens"))
    give_tokens(host_conf)
    return host_conf


def give_tokens(host_conf: pathlib.Path) -> None:
    """Hand the store's tokens to the agents' user (softhsm2-util, run as root here, makes them root's)."""
    tokens = host_conf.parent / "tokens"
    for path in [tokens, *tokens.rglob("*")]:
        os.chown(path, AGENT_UID, AGENT_UID)


def netns_path(run_dir: pathlib.Path, node: int = 1) -> pathlib.Path:
    """The network namespace file of the cluster's ``node``-th node."""
    block = int((run_dir / "pod-block").read_text())
    return pathlib.Path("/run/netns") / network.Node(block, node).netns


def in_node(run_dir: pathlib.Path, argv: list[str], node: int = 1) -> list[str]:
    """``argv`` run inside a node's network namespace: where pod and Service addresses are reachable."""
    return ["nsenter", f"--net={netns_path(run_dir, node)}", "--", *argv]


class NodeNetwork:
    """Starts programs in a node's network namespace (a ``schsm.sandbox.Launcher``), each the leader of a
    new process group with stderr to its log."""

    def __init__(self, run_dir: pathlib.Path, node: int = 1) -> None:
        self._run_dir = run_dir
        self._node = node

    def start(
        self,
        argv: Sequence[str],
        log: pathlib.Path,
        env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
    ) -> subprocess.Popen[str]:
        return sandbox.launch(in_node(self._run_dir, list(argv), self._node), log, env, stdin, stdout)


def in_cluster_server(server: str) -> str:
    """The API server's URL as seen from inside a node (``server`` is the host's https://127.0.0.1:PORT)."""
    return f"https://{network.APISERVER_IP}:{server.rsplit(':', 1)[1]}"


def create_network(block: int, count: int) -> None:
    """Build the hub and node namespaces; on failure remove what was made."""
    try:
        for cmd in network.setup_commands(block, count):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    except BaseException:
        hosthygiene.remove_block(block)
        raise


def egress_socket(block: int) -> pathlib.Path:
    """The API server's egress proxy socket (a short path: Unix socket paths are limited to 108 bytes)."""
    return hosthygiene.scratch_dir(block) / "egress.sock"


def egress_config(path: pathlib.Path, socket: pathlib.Path) -> pathlib.Path:
    """The API server's EgressSelectorConfiguration: traffic to nodes and pods goes through ``socket``."""
    doc = {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [
            {
                "name": "cluster",
                "connection": {
                    "proxyProtocol": "HTTPConnect",
                    "transport": {"uds": {"udsName": str(socket)}},
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def forwarder_argv(block: int, count: int, api_port: int, ready_file: pathlib.Path) -> list[str]:
    """The forwarder: the API server inside every node namespace, and the API server's way to the nodes."""
    rules: list[netforward.Rule] = [
        netforward.Forward(
            listen=netforward.Endpoint(
                network.APISERVER_IP, api_port, pathlib.Path("/run/netns") / node.netns
            ),
            target=netforward.Endpoint("127.0.0.1", api_port),
        )
        for node in network.nodes(block, count)
    ]
    socket = egress_socket(block)
    socket.parent.mkdir(parents=True, exist_ok=True)
    rules.append(netforward.ConnectProxy(socket, pathlib.Path("/run/netns") / network.hub_netns(block)))
    return netforward.argv(rules, ready_file, allow=[str(network.NODE_NETWORK), str(network.POD_NETWORK)])


def apiserver_args(run_dir: pathlib.Path, block: int, certs: pki.Paths) -> list[str]:
    """Extra kube-apiserver flags for real nodes: node authorization, kubelet client certificate, egress."""
    client_cert = run_dir / "pki" / "apiserver-kubelet-client.crt"
    client_key = pki.issue(certs, client_cert, "kube-apiserver-kubelet-client", "system:masters")
    return [
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={client_cert}",
        f"--kubelet-client-key={client_key}",
        f"--egress-selector-config-file={egress_config(run_dir / 'egress.yaml', egress_socket(block))}",
    ]


def node_object(node: network.Node) -> dict[str, Any]:
    """The Node as created before its kubelet starts: the kubelet never sets ``spec.podCIDR`` itself."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
    }


def publish_apiserver(client: kubeapi.Client, api_port: int) -> None:
    """Point the ``kubernetes`` Service at the forwarder address every node namespace has.

    The API server's own endpoint reconciler is off (it would publish 127.0.0.1, which no pod can reach).
    """
    labels = {
        "kubernetes.io/service-name": "kubernetes",
        "endpointslice.kubernetes.io/managed-by": "devcluster",
    }
    slice_obj: dict[str, Any] = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [network.APISERVER_IP], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
    }
    endpoints: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [
            {
                "addresses": [{"ip": network.APISERVER_IP}],
                "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
            }
        ],
    }
    client.request("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", slice_obj)
    client.request("POST", "/api/v1/namespaces/default/endpoints", endpoints)


def prepare(
    run_dir: pathlib.Path,
    node: network.Node,
    certs: pki.Paths,
    bin_dir: pathlib.Path,
    api_port: int,
    sandbox_image: str,
    archives: tuple[pathlib.Path, ...],
    binds: tuple[tuple[pathlib.Path, pathlib.Path], ...],
) -> pathlib.Path:
    """Write ``node``'s certificates, kubeconfigs and configuration; return its supervisor spec file."""
    node_files = files(run_dir, node)
    for directory in (
        node_files.etc,
        node_files.logs,
        node_files.var_lib,
        node_files.var_log,
        node_files.run,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    etc = node_files.etc
    server = f"https://{network.APISERVER_IP}:{api_port}"
    kubelet_client = etc / "kubelet-client.crt"
    kubelet_key = pki.issue(certs, kubelet_client, f"system:node:{node.name}", "system:nodes")
    pki.issue(certs, etc / "kubelet.crt", node.name, server_ips=(node.ip,))
    proxy_client = etc / "kube-proxy-client.crt"
    proxy_key = pki.issue(certs, proxy_client, "system:kube-proxy")
    kubelet_kubeconfig = kubeconfig.write(
        etc / "kubelet.kubeconfig",
        kubeconfig.for_certificate(server, certs.ca_cert, kubelet_client, kubelet_key),
    )
    proxy_kubeconfig = kubeconfig.write(
        etc / "kube-proxy.kubeconfig",
        kubeconfig.for_certificate(server, certs.ca_cert, proxy_client, proxy_key),
    )
    # The NetworkPolicy engine watches the whole cluster; in this throwaway cluster it is an administrator.
    policy_client = etc / "kube-router-client.crt"
    policy_key = pki.issue(certs, policy_client, "devcluster:kube-router", "system:masters")
    policy_kubeconfig = kubeconfig.write(
        etc / "kube-router.kubeconfig",
        kubeconfig.for_certificate(server, certs.ca_cert, policy_client, policy_key),
    )
    cni_dir = etc / "cni"
    cni_dir.mkdir(exist_ok=True)
    (cni_dir / "10-devcluster.conflist").write_text(nodeconfig.cni_conflist(node))
    (etc / "containerd.toml").write_text(nodeconfig.containerd_toml(sandbox_image, cni_dir))
    (etc / "kubelet.yaml").write_text(nodeconfig.kubelet_config(node, node_files, certs.ca_cert))
    (etc / "kube-proxy.yaml").write_text(nodeconfig.kube_proxy_config(node, proxy_kubeconfig))
    (etc / "resolv.conf").write_text(nodeconfig.resolv_conf())
    spec = noderun.Spec(
        name=node.name,
        cgroup=node.cgroup,
        root=str(node_files.root),
        bin_dir=str(bin_dir),
        kubeconfig=str(kubelet_kubeconfig),
        proxy_kubeconfig=str(proxy_kubeconfig),
        policy_kubeconfig=str(policy_kubeconfig),
        node_ip=node.ip,
        binds=tuple((str(source), str(target)) for source, target in binds),
        archives=tuple(str(a) for a in archives),
    )
    spec_file = etc / "node.json"
    spec.dump(spec_file)
    return spec_file


def supervisor_argv(node: network.Node, spec_file: pathlib.Path) -> list[str]:
    """The node supervisor in the node's network namespace and a private mount namespace of its own."""
    return [
        "nsenter",
        f"--net=/run/netns/{node.netns}",
        "--",
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        sys.executable,
        "-m",
        "devcluster.noderun",
        str(spec_file),
    ]


def image_archives(tag: str = "e2e") -> tuple[tuple[pathlib.Path, ...], str]:
    """Archives of the sandbox image and the system's images (the agent with SoftHSM2), built if needed; and
    the sandbox image's name."""
    pause = images.pause_image()
    built = images.build(tag, agent_target="testtokens")
    return tuple(images.archive(image) for image in (pause, *built)), images.PAUSE_IMAGE
