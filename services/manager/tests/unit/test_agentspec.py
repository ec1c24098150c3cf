import datetime

import pytest

from hsm_common import constants, models, names
from hsm_manager.decide import agentspec, owners

OWNER = owners.device_owner("hsm", "uid-1")
CONFIG = agentspec.AgentConfig(image="hsm-agent:dev")
ROOT = agentspec.AgentConfig("hsm-agent:dev", run_as_root=True)
SPEC = models.HSMDeviceSpec.model_validate(
    {
        "deviceType": "Generic",
        "pkcs11": {
            "libraryPath": "/usr/lib/softhsm/libsofthsm2.so",
            "tokenLabel": "t1",
            "pinSecret": {"name": "pin", "key": "user-pin"},
        },
    }
)
HASH = agentspec.template_hash("hsm", SPEC, CONFIG)


def device(serial: str, node: str = "n1", available: bool = True) -> models.AggregatedDevice:
    return models.AggregatedDevice(
        device_path="/dev/bus/usb/001/002",
        serial_number=serial,
        node_name=node,
        available=available,
        last_seen=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )


def existing(serial: str, node: str = "n1", template_hash: str = HASH) -> agentspec.ExistingAgent:
    return agentspec.ExistingAgent(agentspec.agent_name("hsm", serial), serial, node, template_hash)


def test_agent_name_is_stable_and_dns_safe() -> None:
    name = agentspec.agent_name("hsm", "DENK 03/0123_x")
    assert name == agentspec.agent_name("hsm", "DENK 03/0123_x")
    assert names.validate_path(name) == name


def test_new_available_device_gets_an_agent() -> None:
    plan = agentspec.plan("hsm", [device("A")], [], HASH)
    assert [d.serial_number for d in plan.create] == ["A"]


def test_unavailable_device_gets_no_new_agent() -> None:
    assert agentspec.plan("hsm", [device("A", available=False)], [], HASH).empty()


def test_unavailable_device_within_grace_keeps_its_agent() -> None:
    assert agentspec.plan("hsm", [device("A", available=False)], [existing("A")], HASH).empty()


def test_device_gone_beyond_grace_loses_its_agent() -> None:
    plan = agentspec.plan("hsm", [], [existing("A")], HASH)
    assert plan.delete == (agentspec.agent_name("hsm", "A"),)


def test_device_on_another_node_is_recreated() -> None:
    plan = agentspec.plan("hsm", [device("A", node="n2")], [existing("A", node="n1")], HASH)
    assert [d.node_name for d in plan.recreate] == ["n2"]


def test_changed_template_is_recreated() -> None:
    plan = agentspec.plan("hsm", [device("A")], [existing("A", template_hash="old")], HASH)
    assert len(plan.recreate) == 1


def test_matching_agent_needs_nothing() -> None:
    assert agentspec.plan("hsm", [device("A")], [existing("A")], HASH).empty()


def test_deployment_is_pinned_single_recreate_and_owned() -> None:
    obj = agentspec.deployment("hsm", "ns", SPEC, device("A", node="n7"), OWNER, CONFIG)
    pod = obj["spec"]["template"]["spec"]
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["nodeSelector"]["kubernetes.io/hostname"] == "n7"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert agentspec.existing(obj) == existing("A", node="n7")


def test_deployment_mounts_the_pin_as_a_file_and_never_in_env_or_args() -> None:
    container = agentspec.deployment("hsm", "ns", SPEC, device("A"), OWNER, CONFIG)["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert "--pin-file=/etc/hsm/pin/user-pin" in container["args"]
    assert all("secretKeyRef" not in str(e) for e in container["env"])


def test_deployment_runs_non_root_with_read_only_root() -> None:
    pod = agentspec.deployment("hsm", "ns", SPEC, device("A"), OWNER, CONFIG)["spec"]["template"]["spec"]
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"]
    assert security["runAsNonRoot"]


def test_agents_mount_their_service_account_token_for_the_reviews_of_metrics_scrapers() -> None:
    pod = agentspec.deployment("hsm", "ns", SPEC, device("A"), OWNER, CONFIG)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert agentspec.service_account("hsm", "ns", OWNER)["automountServiceAccountToken"] is False


def test_metrics_are_served_on_their_own_port_and_probes_stay_on_the_health_port() -> None:
    container = agentspec.deployment("hsm", "ns", SPEC, device("A"), OWNER, CONFIG)["spec"]["template"][
        "spec"
    ]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 9090, "health": 8093, "metrics": 8080}
    assert f"--metrics-listen=$(POD_IP):{constants.PORT_METRICS}" in container["args"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == constants.PORT_AGENT_HEALTH


def test_metrics_serve_the_operators_metrics_leaf_from_an_optional_secret_not_the_agents_own() -> None:
    pod = _pod()
    volume = next(v for v in pod["volumes"] if v["name"] == "metrics-tls")
    assert volume["secret"] == {"secretName": "hsm-metrics-tls", "optional": True, "defaultMode": 0o400}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "metrics-tls")
    assert mount == {"name": "metrics-tls", "mountPath": constants.METRICS_CERT_DIR, "readOnly": True}
    assert f"--metrics-cert-dir={constants.METRICS_CERT_DIR}" in pod["containers"][0]["args"]


def test_deployment_labels_select_agents_of_the_device() -> None:
    labels = agentspec.deployment("hsm", "ns", SPEC, device("A"), OWNER, CONFIG)["spec"]["template"][
        "metadata"
    ]["labels"]
    assert labels[constants.LABEL_DEVICE] == "hsm"
    assert labels[constants.LABEL_COMPONENT] == "agent"


def test_tls_secret_holds_cert_key_and_client_ca() -> None:
    secret = agentspec.tls_secret("hsm", "hsm-agent-x", "ns", OWNER, b"c", b"k", b"ca")
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    assert secret["metadata"]["name"] == agentspec.tls_secret_name("hsm-agent-x")


def _args(spec: models.HSMDeviceSpec) -> list[str]:
    container = agentspec.deployment("hsm", "ns", spec, device("A"), OWNER, CONFIG)["spec"]["template"][
        "spec"
    ]["containers"][0]
    return list(container["args"])


def test_without_label_or_slot_the_usb_serial_names_the_token() -> None:
    pkcs11 = SPEC.pkcs11.model_copy(update={"token_label": None, "slot_id": None})
    args = _args(SPEC.model_copy(update={"pkcs11": pkcs11}))
    assert "--serial=A" in args
    assert not any(a.startswith(("--token-label", "--slot-id")) for a in args)


def test_a_token_label_names_the_token_without_a_serial_check() -> None:
    pkcs11 = SPEC.pkcs11.model_copy(update={"token_label": "PicoHSM", "slot_id": None})
    args = _args(SPEC.model_copy(update={"pkcs11": pkcs11}))
    assert "--token-label=PicoHSM" in args
    assert not any(a.startswith("--serial") for a in args)


def test_an_object_budget_and_size_from_the_spec_reach_the_agent() -> None:
    pkcs11 = SPEC.pkcs11.model_copy(update={"max_objects": 40, "max_object_size": 2048})
    args = _args(SPEC.model_copy(update={"pkcs11": pkcs11}))
    assert "--max-objects=40" in args
    assert "--max-object-size=2048" in args


def test_without_a_budget_in_the_spec_the_agent_picks_its_defaults() -> None:
    assert not any(a.startswith(("--max-objects", "--max-object-size")) for a in _args(SPEC))


def test_a_changed_object_budget_changes_the_template_hash() -> None:
    pkcs11 = SPEC.pkcs11.model_copy(update={"max_objects": 40})
    assert agentspec.template_hash("hsm", SPEC.model_copy(update={"pkcs11": pkcs11}), CONFIG) != HASH


def _pod(config: agentspec.AgentConfig = CONFIG, serial: str = "A") -> dict:  # type: ignore[type-arg]
    return agentspec.deployment("hsm", "ns", SPEC, device(serial), OWNER, config)["spec"]["template"]["spec"]


def test_the_agent_requests_one_device_of_its_hsmdevice() -> None:
    resources = _pod()["containers"][0]["resources"]
    assert resources["requests"]["hsm.j5t.io/hsm"] == "1"
    assert resources["limits"]["hsm.j5t.io/hsm"] == "1"


def test_the_agent_pod_mounts_no_host_path() -> None:
    for config in (CONFIG, ROOT):
        assert all("hostPath" not in volume for volume in _pod(config)["volumes"])


def test_the_agent_has_only_its_own_env_and_volumes() -> None:
    pod = _pod()
    assert [e["name"] for e in pod["containers"][0]["env"]] == ["POD_IP"]
    volumes = ["pin", "tls", "metrics-tls", "tmp", "pcscd"]
    assert [v["name"] for v in pod["volumes"]] == volumes
    assert [m["name"] for m in pod["containers"][0]["volumeMounts"]] == volumes


@pytest.mark.parametrize("config", [CONFIG, ROOT], ids=["non-root", "root"])
def test_the_agent_is_never_privileged_and_drops_every_capability(config: agentspec.AgentConfig) -> None:
    security = _pod(config)["containers"][0]["securityContext"]
    assert "privileged" not in security
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["readOnlyRootFilesystem"] is True


def test_pcscd_writes_only_to_its_own_empty_dir() -> None:
    pod = _pod()
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/run/pcscd"]]


def test_a_root_agent_runs_as_root_and_a_default_one_as_its_own_user() -> None:
    assert _pod(ROOT)["containers"][0]["securityContext"]["runAsUser"] == 0
    security = _pod()["containers"][0]["securityContext"]
    assert (security["runAsNonRoot"], security["runAsUser"]) == (True, agentspec.AGENT_UID)


def test_the_template_hash_leaves_serial_and_node_out() -> None:
    assert agentspec.template_hash("hsm", SPEC, CONFIG) == HASH
    first = agentspec.deployment("hsm", "ns", SPEC, device("A", node="n1"), OWNER, CONFIG)
    second = agentspec.deployment("hsm", "ns", SPEC, device("B", node="n2"), OWNER, CONFIG)
    assert agentspec.existing(first).template_hash == agentspec.existing(second).template_hash == HASH


def test_running_as_root_changes_the_template_hash() -> None:
    assert agentspec.template_hash("hsm", SPEC, ROOT) != HASH


def test_another_image_changes_the_template_hash() -> None:
    assert agentspec.template_hash("hsm", SPEC, agentspec.AgentConfig("hsm-agent:next")) != HASH


def test_changed_device_plugin_additions_change_the_template_hash() -> None:
    mounts = agentspec.AgentConfig("hsm-agent:dev", device_mounts=("/var/lib/softhsm",))
    env = agentspec.AgentConfig("hsm-agent:dev", device_env=(("SOFTHSM2_CONF", "/a.conf"),))
    assert (
        len({HASH, agentspec.template_hash("hsm", SPEC, mounts), agentspec.template_hash("hsm", SPEC, env)})
        == 3
    )


def test_device_plugin_additions_stay_out_of_the_pod_spec() -> None:
    config = agentspec.AgentConfig(
        "hsm-agent:dev", device_mounts=("/var/lib/softhsm",), device_env=(("SOFTHSM2_CONF", "/a.conf"),)
    )
    assert _pod(config) == _pod()


def test_agents_of_an_older_template_are_recreated() -> None:
    plan = agentspec.plan("hsm", [device("A")], [existing("A")], agentspec.template_hash("hsm", SPEC, ROOT))
    assert len(plan.recreate) == 1


def test_service_links_stay_out_of_the_environment() -> None:
    assert _pod()["enableServiceLinks"] is False


def test_a_non_root_agent_owns_its_secret_volumes_through_its_group() -> None:
    pod = _pod()
    assert pod["securityContext"] == {"fsGroup": pod["containers"][0]["securityContext"]["runAsGroup"]}
    assert _pod(ROOT)["securityContext"] == {}
