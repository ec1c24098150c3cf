"""The operator against the devcluster, acting as its own ServiceAccount with the RBAC of deploy/kustomize
(a host process in node-1's network namespace, see operator_env).

Covered here: HSMDevice → owned pool, discovery DaemonSet and agent ServiceAccount; the CA, client
certificate and MAC key Secrets; HSMSecret status without agents (DeviceUnavailable, nothing deleted);
hsmPath escapes refused; deleting one of two HSMDevices removes only its objects.
"""

import pathlib
import sys
import uuid
from collections.abc import Iterator

import pytest

from devcluster import kubeapi, testkit

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import operator_env as env

GROUP_PATH = env.GROUP_PATH
poll, get = testkit.poll, env.get
device, hsmsecret = env.device_manifest, env.hsmsecret_manifest


@pytest.fixture(scope="module")
def operator(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The operator process as ServiceAccount hsm-manager of a fresh namespace; yields that namespace."""
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    op = env.start_operator(kube, tmp_path_factory.mktemp("operator"), ("--default-sync-interval=10s",))
    try:
        yield op.namespace
    finally:
        env.remove_operator(op)
        print(op.log.read_text()[-4000:])


def test_operator_keeps_its_ca_and_mac_key_in_its_namespace(kube: testkit.Kube, operator: str) -> None:
    for name in ("hsm-manager-ca", "hsm-manager-mac-key"):
        assert get(kube, f"/api/v1/namespaces/{operator}/secrets/{name}") is not None


def test_device_gets_an_owned_pool_and_discovery_daemonset(kube: testkit.Kube, operator: str) -> None:
    kube.client.request(
        "POST", f"{GROUP_PATH}/namespaces/{operator}/hsmdevices", device(operator, "alpha", "e2e")
    )
    pool = poll(
        lambda: (
            (p := get(kube, f"{GROUP_PATH}/namespaces/{operator}/hsmpools/alpha-pool"))
            and p.get("status")
            and p
        ),
        30,
        "the pool with a status",
    )
    daemonset = poll(
        lambda: get(kube, f"/apis/apps/v1/namespaces/{operator}/daemonsets/alpha-discovery"),
        30,
        "the DaemonSet",
    )
    assert pool["metadata"]["ownerReferences"][0]["name"] == "alpha"
    assert daemonset["metadata"]["ownerReferences"][0]["name"] == "alpha"
    assert pool["status"]["phase"] in ("Pending", "Aggregating", "Error")


def test_hsmsecret_without_agents_reports_device_unavailable(kube: testkit.Kube, operator: str) -> None:
    kube.client.request(
        "POST", f"{GROUP_PATH}/namespaces/{operator}/hsmdevices", device(operator, "beta", "e2e")
    )
    path = f"{GROUP_PATH}/namespaces/{operator}/hsmsecrets"
    kube.client.request("POST", path, hsmsecret(operator, "lonely", device="beta"))
    ready = poll(
        lambda: next(
            (c for c in ((get(kube, f"{path}/lonely") or {}).get("status") or {}).get("conditions", [])
             if c["type"] == "Ready"),
            None,
        ),
        30,
        "the Ready condition",
    )  # fmt: skip
    assert (ready["status"], ready["reason"]) == ("False", "DeviceUnavailable")
    assert get(kube, f"/api/v1/namespaces/{operator}/secrets/lonely") is None


@pytest.mark.parametrize("hsm_path", ["../b/x", "/abs/x", "UPPER/x"])
def test_hsmsecret_path_escape_is_refused(kube: testkit.Kube, operator: str, hsm_path: str) -> None:
    path = f"{GROUP_PATH}/namespaces/{operator}/hsmsecrets"
    with pytest.raises(kubeapi.ApiError) as refused:
        kube.client.request(
            "POST", path, hsmsecret(operator, f"esc-{uuid.uuid4().hex[:6]}", hsmPath=hsm_path)
        )
    assert refused.value.status == 422
    assert "hsmPath" in refused.value.body


def test_deleting_one_device_leaves_the_other(kube: testkit.Kube, operator: str) -> None:
    base = f"{GROUP_PATH}/namespaces/{operator}"
    for name in ("one", "two"):
        kube.client.request("POST", f"{base}/hsmdevices", device(operator, name, "e2e"))
    for name in ("one", "two"):
        poll(lambda n=name: get(kube, f"{base}/hsmpools/{n}-pool"), 30, f"pool {name}")
    kube.client.request("DELETE", f"{base}/hsmdevices/one")
    poll(lambda: get(kube, f"{base}/hsmpools/one-pool") is None, 60, "pool one to be collected")
    poll(
        lambda: get(kube, f"/apis/apps/v1/namespaces/{operator}/daemonsets/one-discovery") is None,
        60,
        "DaemonSet one to be collected",
    )
    assert get(kube, f"{base}/hsmpools/two-pool") is not None
    assert get(kube, f"/apis/apps/v1/namespaces/{operator}/daemonsets/two-discovery") is not None
