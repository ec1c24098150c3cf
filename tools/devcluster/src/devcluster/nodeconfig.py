"""Configuration files of one real node: containerd, CNI, kubelet, kube-proxy (pure: facts in, text out).

Paths inside these files are as the node sees them: its supervisor bind-mounts the node's own directories
over ``/var/lib``, ``/var/log`` and ``/run`` in a mount namespace of its own, so two kubelets and two
containerds on one machine never see each other's state.
"""

import dataclasses
import json
import pathlib

import yaml

from . import network

CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CNI_BIN_DIR = "/usr/lib/cni"
HOST_DATA = pathlib.Path("/var/lib/hsm-devcluster")
"""Node-local data the system's pods mount by hostPath (SoftHSM2 tokens, umockdev testbed), per node."""


@dataclasses.dataclass(frozen=True)
class NodeFiles:
    """Where one node's files live on the host."""

    root: pathlib.Path

    @property
    def var_lib(self) -> pathlib.Path:
        """Mounted over the node's ``/var/lib`` (kubelet, containerd, CNI state)."""
        return self.root / "var-lib"

    @property
    def var_log(self) -> pathlib.Path:
        """Mounted over the node's ``/var/log`` (pod and container logs)."""
        return self.root / "var-log"

    @property
    def run(self) -> pathlib.Path:
        """Mounted over the node's ``/run`` (containerd's state and socket, pod network namespaces)."""
        return self.root / "run"

    @property
    def etc(self) -> pathlib.Path:
        """Configuration, certificates and kubeconfigs (read where they are)."""
        return self.root / "etc"

    @property
    def logs(self) -> pathlib.Path:
        """Logs of containerd, kubelet, kube-proxy and the supervisor."""
        return self.root / "logs"

    @property
    def containerd_socket(self) -> pathlib.Path:
        """containerd's socket as the host reaches it (for ``ctr`` and crictl from outside the node)."""
        return self.run / CONTAINERD_SOCKET.removeprefix("/run/")


def containerd_toml(sandbox_image: str, cni_conf_dir: pathlib.Path) -> str:
    """containerd 1.6 with the CRI plugin, runc through cgroupfs and the bridge CNI config of this node."""
    return f"""version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "{CONTAINERD_SOCKET}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # oom_score_adj cannot be lowered on these machines (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf_dir}"
"""


def cni_conflist(node: network.Node) -> str:
    """A bridge network for the node's pods; hairpin so a pod reaches itself through a Service."""
    doc = {
        "cniVersion": "1.0.0",
        "name": "devcluster",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }
    return json.dumps(doc, indent=2)


def kubelet_config(node: network.Node, files: NodeFiles, ca_cert: pathlib.Path) -> str:
    """KubeletConfiguration for cgroupfs on hybrid cgroup v1, in the node's own cgroup, TLS from our CA."""
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(files.etc / "kubelet.crt"),
        "tlsPrivateKeyFile": str(files.etc / "kubelet.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        # Only the API server holds a client certificate of the run's CA besides the admin.
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{node.cgroup}",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "imageServiceEndpoint": f"unix://{CONTAINERD_SOCKET}",
        # No DNS server runs here: pods are told of a ClusterIP nobody serves (kube-proxy rejects it at once),
        # and the node's own resolver configuration names no server at all.
        "clusterDNS": [network.CLUSTER_DNS_IP],
        "clusterDomain": "cluster.local",
        "resolvConf": str(files.etc / "resolv.conf"),
        # Images are loaded, never pulled: nothing may collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "serializeImagePulls": False,
        "containerLogMaxSize": "10Mi",
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def resolv_conf() -> str:
    """A resolver configuration for pods: no nameserver line, so lookups stay inside the pod."""
    return "options ndots:1 attempts:1 timeout:1\n"


def kube_proxy_config(node: network.Node, kubeconfig: pathlib.Path) -> str:
    """kube-proxy in iptables mode inside the node's namespace, leaving host-wide conntrack settings alone."""
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": node.name,
        "bindAddress": node.ip,
        "clusterCIDR": str(network.POD_NETWORK),
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Masquerading every Service connection makes replies return through the node, so a pod reaches
        # a Service whose endpoint sits on the same bridge without host-wide bridge netfilter settings.
        "iptables": {"masqueradeAll": True},
        # Zero: leave the machine-wide conntrack table size and timeouts as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
    return yaml.safe_dump(doc, sort_keys=False)
