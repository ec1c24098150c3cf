"""Installs the whole system on a devcluster, as the scenario test and the demo both use it.

Two real nodes (kubelet, containerd, kube-proxy) running the images ``make images`` builds, each with its own
SoftHSM2 token and a hotplug testbed holding a mocked Pico HSM whose USB serial is that token's serial (so
the agent the operator starts for the device picks that token). The system comes from ``kubectl kustomize
deploy/kustomize/overlays/e2e | kubectl apply -f -``; then a PIN Secret and an HSMDevice, and a user
ServiceAccount allowed to use the REST API in the user namespaces, which the tests reach through the API's
Service (kube-proxy in a node's namespace, a forwarder from the host's loopback).
"""

import dataclasses
import os
import pathlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import (
    access,
    cluster,
    hsmapi,
    kubeapi,
    kubeconfig,
    kubectl,
    nodes,
    realnodes,
    softhsm,
    testbed,
    usbhsm,
    wait,
)

NAMESPACE = "hsm-secrets-operator-system"
GROUP_PATH = "/apis/hsm.j5t.io/v1alpha1"
DEVICE = "pico"
PIN_SECRET = "hsm-pin"  # noqa: S105 (the Secret's name, not a password)
# Demo credentials of throwaway SoftHSM2 tokens; never used for anything real.
PIN = "246810"
SO_PIN = "13579246"
USER = "hsm-user"
"""The user ServiceAccount (in ``default``) that calls the REST API and kubectl hsm."""
API_PORT = 8090
API_SERVICE = "hsm-api"
API_FORWARD = "forward-api"
"""The forwarder from the host's loopback to the API's Service (a cluster process)."""
API_SERVER_NAME = f"{API_SERVICE}.{NAMESPACE}.svc"
"""The name the API's certificate is verified for: the forwarder's URL says 127.0.0.1."""
API_CA_CONFIGMAP = "hsm-api-ca"
"""Where the operator publishes the CA of the API's certificate."""
API_CA_FILE = "api-ca.crt"
"""That CA, written into the run directory for curl and the tests."""
_LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_DEVICE = "hsm.j5t.io/device"

Step = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Options:
    """What to install and where."""

    run_dir: pathlib.Path
    repo_root: pathlib.Path
    user_namespaces: tuple[str, ...] = ("team-a", "team-b")
    node_count: int = 2
    timeout: float = 120.0
    """Seconds each wait (pool Ready, agents Ready, …) may take."""


@dataclasses.dataclass(frozen=True)
class System:
    """The installed system."""

    cluster: cluster.Cluster
    client: kubeapi.Client
    softhsm2_confs: dict[str, pathlib.Path]
    """Node name → SoftHSM2 configuration of its token store as the host reaches it."""
    serials: dict[str, str]
    """Node name → serial of its token (and USB serial of its mocked device)."""
    descriptions: dict[str, pathlib.Path]
    """Node name → umockdev description of its device."""
    api: hsmapi.HsmApi
    """The REST API through its Service, acting as the user ServiceAccount."""
    user_kubeconfig: pathlib.Path

    def testbed(self, node: str) -> testbed.Testbed:
        """The hotplug testbed of ``node``."""
        return testbed.Testbed(self.cluster.run_dir, node)


def repo_root() -> pathlib.Path:
    """The checkout this package runs from (the directory holding ``deploy/kustomize``)."""
    for parent in [pathlib.Path.cwd(), *pathlib.Path(__file__).resolve().parents]:
        if (parent / "deploy" / "kustomize").is_dir():
            return parent
    raise FileNotFoundError("no deploy/kustomize above the working directory or this package")


def cluster_settings(options: Options, archives: tuple[pathlib.Path, ...], sandbox: str) -> cluster.Settings:
    """Nodes running the images of ``archives`` (``realnodes.image_archives``), each with a testbed."""
    return cluster.Settings(
        run_dir=options.run_dir,
        node_count=options.node_count,
        testbed_nodes=tuple(nodes.name(i) for i in range(1, options.node_count + 1)),
        images=archives,
        sandbox_image=sandbox,
    )


def _create(client: kubeapi.Client, path: str, body: dict[str, Any]) -> None:
    """POST ``body`` to ``path``; an object that already exists is fine (install is re-runnable)."""
    try:
        client.request("POST", path, body)
    except kubeapi.ApiError as err:
        if err.status != 409:
            raise


def make_tokens(
    run_dir: pathlib.Path, node_names: list[str]
) -> tuple[dict[str, pathlib.Path], dict[str, str], dict[str, pathlib.Path]]:
    """One SoftHSM2 token per node in the node's own store, and a Pico HSM description carrying its serial."""
    confs: dict[str, pathlib.Path] = {}
    serials: dict[str, str] = {}
    descriptions: dict[str, pathlib.Path] = {}
    (run_dir / "devices").mkdir(exist_ok=True)
    for node in node_names:
        confs[node] = realnodes.softhsm_store(run_dir, node)
        serials[node] = softhsm.init_token(confs[node], f"{node}-token", PIN, SO_PIN)
        realnodes.give_tokens(confs[node])
        descriptions[node] = run_dir / "devices" / f"{node}.umockdev"
        descriptions[node].write_text(usbhsm.description(usbhsm.PICO_HSM, serials[node]))
    return confs, serials, descriptions


def apply_overlay(kubeconfig: pathlib.Path, repo: pathlib.Path, overlay: str = "e2e") -> None:
    """``kubectl kustomize deploy/kustomize/overlays/<overlay> | kubectl apply -f -`` (server-side)."""
    kubectl.apply_kustomization(kubeconfig, repo / "deploy" / "kustomize" / "overlays" / overlay)


def create_device(client: kubeapi.Client) -> None:
    """The PIN Secret and the HSMDevice (no token label: each agent picks its token by serial)."""
    _create(
        client,
        f"/api/v1/namespaces/{NAMESPACE}/secrets",
        {"metadata": {"name": PIN_SECRET}, "stringData": {"pin": PIN}},
    )
    device = {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMDevice",
        "metadata": {"name": DEVICE, "namespace": NAMESPACE},
        "spec": {
            "deviceType": "PicoHSM",
            "discovery": {"usb": [usbhsm.PICO_HSM.usb_ids()]},
            "pkcs11": {
                "libraryPath": str(softhsm.MODULE),
                "pinSecret": {"name": PIN_SECRET, "key": "pin"},
            },
        },
    }
    _create(client, f"{GROUP_PATH}/namespaces/{NAMESPACE}/hsmdevices", device)


def pool(client: kubeapi.Client, device: str = DEVICE) -> dict[str, Any]:
    """The HSMPool status of ``device`` ({} before the operator wrote one)."""
    try:
        found = client.get(f"{GROUP_PATH}/namespaces/{NAMESPACE}/hsmpools/{device}-pool")
    except kubeapi.ApiError as err:
        if err.status == 404:
            return {}
        raise
    status: dict[str, Any] = found.get("status") or {}
    return status


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    return (
        status.get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    )


def pods(client: kubeapi.Client, component: str) -> list[dict[str, Any]]:
    """Pods of one component (agent, discovery, api, manager) in the operator namespace."""
    selector = f"{_LABEL_COMPONENT}={component}"
    items: list[dict[str, Any]] = client.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")[
        "items"
    ]
    return items


def device_agents(client: kubeapi.Client, device: str) -> list[dict[str, Any]]:
    """The agent pods of ``device``, Ready or not."""
    return [
        pod for pod in pods(client, "agent") if pod["metadata"].get("labels", {}).get(LABEL_DEVICE) == device
    ]


def ready_agents(client: kubeapi.Client, device: str = DEVICE) -> dict[str, dict[str, Any]]:
    """Node name → the Ready agent pod of ``device`` on that node."""
    found = {}
    for pod in device_agents(client, device):
        if _ready(pod):
            found[pod["spec"]["nodeName"]] = pod
    return found


def api_service_ip(client: kubeapi.Client) -> str | None:
    """The ClusterIP of the API's Service, once its pod is Ready (kube-proxy routes to Ready pods only)."""
    if not any(_ready(pod) for pod in pods(client, "api")):
        return None
    found = client.get(f"/api/v1/namespaces/{NAMESPACE}/services/{API_SERVICE}")
    ip: str | None = found["spec"].get("clusterIP")
    return ip


def create_user(client: kubeapi.Client, namespaces: tuple[str, ...]) -> None:
    """The user ServiceAccount ``default/hsm-user`` with a Role on hsmsecrets in each namespace, the
    right to trigger mirror repairs (update on hsmdevices in the operator namespace) and to port-forward
    to the API (the shipped ``hsm-api-client`` Role)."""
    _create(client, "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": USER}})
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete"]
    grants = [(ns, "hsmsecrets", verbs) for ns in namespaces] + [
        (NAMESPACE, "hsmdevices", ["get", "list", "update"])
    ]
    for namespace, resource, allowed in grants:
        if namespace != NAMESPACE:
            _create(client, "/api/v1/namespaces", {"metadata": {"name": namespace}})
        name = f"{USER}-{resource}"
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        role = {
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": ["hsm.j5t.io"], "resources": [resource], "verbs": allowed}],
        }
        _create(client, f"{rbac}/roles", role)
        binding = {
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": USER, "namespace": "default"}],
        }
        _create(client, f"{rbac}/rolebindings", binding)
    # `kubectl hsm` without --server port-forwards to the API Service: the Role the deployment ships for that.
    binding = {
        "metadata": {"name": f"{USER}-api-client", "namespace": NAMESPACE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hsm-api-client"},
        "subjects": [{"kind": "ServiceAccount", "name": USER, "namespace": "default"}],
    }
    _create(client, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/rolebindings", binding)


def install(options: Options, on_step: Step | None = None) -> System:
    """Start the cluster and the system; return once both agents are Ready and the API answers.

    ``on_step`` is called with a short description after each step (the scenario's timeline). On failure
    the cluster is stopped again.
    """
    step = on_step or (lambda _text: None)
    node_names = [nodes.name(i) for i in range(1, options.node_count + 1)]
    running = cluster.up(cluster_settings(options, *realnodes.image_archives()))
    try:
        return _install(options, running, node_names, step)
    except BaseException:
        cluster.down(running.run_dir)
        raise


def _install(options: Options, running: cluster.Cluster, node_names: list[str], step: Step) -> System:
    client = running.client()
    step("cluster up")
    confs, serials, descriptions = make_tokens(options.run_dir, node_names)
    for node in node_names:
        testbed.Testbed(options.run_dir, node).add(descriptions[node])
    step(f"tokens and USB devices on {', '.join(node_names)}: serials {', '.join(serials.values())}")
    apply_overlay(running.kubeconfig, options.repo_root)
    access.wait_crds_established(
        client, ["hsmsecrets.hsm.j5t.io", "hsmdevices.hsm.j5t.io", "hsmpools.hsm.j5t.io"], options.timeout
    )
    step("e2e overlay applied")
    create_device(client)
    step("HSMDevice created")
    wait.until(
        lambda: (
            pool(client).get("phase") == "Ready" and pool(client).get("availableDevices") == len(node_names)
        ),
        options.timeout,
        "HSMPool Ready with every device",
    )
    step("pool Ready")
    wait.until(lambda: len(ready_agents(client)) == len(node_names), options.timeout, "every agent Ready")
    step("agents Ready")
    create_user(client, options.user_namespaces)
    service_ip = wait.until(lambda: api_service_ip(client), options.timeout, "the hsm-api pod Ready")
    url = "https://" + cluster.forward(running.run_dir, API_FORWARD, service_ip, API_PORT)
    ca_file = wait.until(
        lambda: write_api_ca(client, running.run_dir), options.timeout, "the API's CA published"
    )
    user_kubeconfig = running.run_dir / "user.kubeconfig"
    token = access.service_account_token(client, "default", USER, expiration_seconds=24 * 3600)
    kubeconfig.write(
        user_kubeconfig,
        kubeconfig.for_token(
            running.server, running.run_dir / "pki" / "ca.crt", token, options.user_namespaces[0]
        ),
    )
    api = hsmapi.HsmApi(url, token, ca_file, API_SERVER_NAME)
    wait.until(
        lambda: api.call("GET", "/hsm/status") is not None, options.timeout, "the API to reach the agents"
    )
    step(f"API at {url}")
    return System(running, client, confs, serials, descriptions, api, user_kubeconfig)


def elapsed_since(start: float) -> str:
    """Seconds since ``start`` (a ``time.monotonic()`` value), for timelines."""
    return f"{time.monotonic() - start:6.1f}s"


def write_api_ca(client: kubeapi.Client, run_dir: pathlib.Path) -> pathlib.Path:
    """The API's CA as the operator publishes it, written to ``run_dir/api-ca.crt``."""
    found = client.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{API_CA_CONFIGMAP}")
    path = run_dir / API_CA_FILE
    path.write_text(found["data"]["ca.crt"])
    return path


def environment(system: System) -> dict[str, str]:
    """Environment for kubectl and kubectl hsm as the user (KUBECONFIG, HSM_API_URL and the name its
    certificate is verified for; kubectl hsm reads the CA from the cluster)."""
    return {
        **os.environ,
        "KUBECONFIG": str(system.user_kubeconfig),
        "HSM_API_URL": system.api.base_url,
        "HSM_API_TLS_SERVER_NAME": API_SERVER_NAME,
    }
