"""kwok stages and node manifests."""

import yaml

from devcluster import kwokconfig, nodes


def test_runner_images_get_only_an_ip_from_kwok_and_others_get_ready() -> None:
    stages = {s["metadata"]["name"]: s for s in yaml.safe_load_all(kwokconfig.render(["hsm-agent", "extra"]))}
    ip_stage = stages["pod-ip-for-runner"]["spec"]
    ours = [e for e in ip_stage["selector"]["matchExpressions"] if e["key"] == kwokconfig.IMAGE_NAME_KEY]
    assert ours == [{"key": kwokconfig.IMAGE_NAME_KEY, "operator": "In", "values": ["extra", "hsm-agent"]}]
    assert "Ready" not in ip_stage["next"]["statusTemplate"]
    ready = stages["pod-ready"]["spec"]["selector"]["matchExpressions"]
    assert {"key": kwokconfig.IMAGE_NAME_KEY, "operator": "NotIn", "values": ["extra", "hsm-agent"]} in ready


def test_every_stage_has_a_kind_kwok_knows() -> None:
    for stage in yaml.safe_load_all(kwokconfig.render(["hsm-agent"])):
        assert stage["spec"]["resourceRef"]["kind"] in {"Node", "Pod"}


def test_nodes_get_their_own_loopback_pod_cidr_and_no_taint() -> None:
    first, second = nodes.manifest(1), nodes.manifest(2)
    assert first["spec"]["podCIDR"] == "127.1.1.0/24"
    assert second["spec"]["podCIDR"] == "127.1.2.0/24"
    assert "taints" not in first["spec"]
    assert first["metadata"]["annotations"][nodes.KWOK_ANNOTATION] == nodes.KWOK_ANNOTATION_VALUE
