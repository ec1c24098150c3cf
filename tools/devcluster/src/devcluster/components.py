"""Command lines of the control-plane processes (pure: paths and ports in, argv out)."""

import dataclasses
import pathlib

from . import pki

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"


@dataclasses.dataclass(frozen=True)
class Ports:
    """Ports chosen at start, all on 127.0.0.1."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


def etcd(bin_dir: pathlib.Path, run_dir: pathlib.Path, ports: Ports) -> list[str]:
    """etcd with a single member; fsync off because the data dies with the run anyway."""
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"),
        "--name=devcluster",
        f"--data-dir={run_dir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=devcluster={peer}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver(bin_dir: pathlib.Path, run_dir: pathlib.Path, ports: Ports, certs: pki.Paths) -> list[str]:
    """kube-apiserver with RBAC and service-account tokens.

    `--endpoint-reconciler-type=none`: the default reconciler writes the advertise address into the
    `kubernetes` Endpoints, and loopback addresses are rejected there.
    """
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        "--endpoint-reconciler-type=none",
        "--authorization-mode=RBAC",
        f"--client-ca-file={certs.ca_cert}",
        # Published in kube-system/extension-apiserver-authentication; without it controller-manager and
        # scheduler log an error about the missing request-header CA every few seconds.
        f"--requestheader-client-ca-file={certs.ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--tls-cert-file={certs.server_cert}",
        f"--tls-private-key-file={certs.server_key}",
        f"--cert-dir={run_dir / 'apiserver-certs'}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={certs.sa_pub}",
        f"--service-account-signing-key-file={certs.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        # Kubelets are reached at their InternalIP (through the egress proxy); hostnames resolve nowhere.
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-certificate-authority={certs.ca_cert}",
        "--profiling=false",
    ]


def controller_manager(
    bin_dir: pathlib.Path, kubeconfig: pathlib.Path, ports: Ports, certs: pki.Paths
) -> list[str]:
    """kube-controller-manager with every default controller (garbage collector included)."""
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        "--controllers=*",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={certs.sa_key}",
        f"--root-ca-file={certs.ca_cert}",
        f"--cluster-signing-cert-file={certs.ca_cert}",
        f"--cluster-signing-key-file={certs.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--profiling=false",
    ]


def scheduler(bin_dir: pathlib.Path, kubeconfig: pathlib.Path, ports: Ports) -> list[str]:
    """kube-scheduler."""
    return [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        "--leader-elect=false",
        "--profiling=false",
    ]
