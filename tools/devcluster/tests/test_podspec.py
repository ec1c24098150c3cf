"""Pod spec → local process translation."""

import pathlib
from typing import Any

import pytest

from devcluster.podrunner import spec

SECRETS: dict[tuple[str, str], dict[str, bytes]] = {("ns", "pin"): {"pin": b"1234", "other": b"x"}}
CONFIGMAPS: dict[tuple[str, str], dict[str, str]] = {("ns", "cfg"): {"mode": "fast", "conf.yaml": "a: 1"}}


def _secret(namespace: str, name: str) -> dict[str, bytes] | None:
    return SECRETS.get((namespace, name))


def _configmap(namespace: str, name: str) -> dict[str, str] | None:
    return CONFIGMAPS.get((namespace, name))


def _mint(audience: str | None, expiration: int | None) -> str:
    return f"token-for-{audience}"


def _pod(**container: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "main", "image": "ghcr.io/x/hsm-agent:1.0"}
    base.update(container)
    return {
        "metadata": {"name": "agent-0", "namespace": "ns", "uid": "u-1", "labels": {"app": "agent"}},
        "spec": {
            "nodeName": "kwok-node-1",
            "serviceAccountName": "agent",
            "containers": [base],
            "volumes": [
                {"name": "pin", "secret": {"secretName": "pin", "items": [{"key": "pin", "path": "pin"}]}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "scratch", "emptyDir": {}},
                {
                    "name": "token",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"path": "token", "audience": "api"}},
                            {"configMap": {"name": "cfg", "items": [{"key": "mode", "path": "mode"}]}},
                        ]
                    },
                },
            ],
        },
        "status": {"podIP": "127.1.1.7", "hostIP": "127.0.0.1"},
    }


def _launch(pod: dict[str, Any], tmp_path: pathlib.Path) -> spec.Launch:
    return spec.launch(pod, ("/venv/bin/hsm-agent",), tmp_path, {"PATH": "/bin"}, _secret, _configmap, _mint)


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("hsm-agent", "hsm-agent"),
        ("hsm-agent:1.0", "hsm-agent"),
        ("registry.local:5000/team/hsm-discovery:v2", "hsm-discovery"),
        ("ghcr.io/x/hsm-manager@sha256:abc", "hsm-manager"),
    ],
)
def test_image_name_ignores_registry_path_tag_and_digest(image: str, name: str) -> None:
    assert spec.image_name(image) == name


def test_expand_replaces_known_variables_and_keeps_unknown_ones() -> None:
    assert spec.expand("$(A)-$(B)-$$(A)", {"A": "1"}) == "1-$(B)-$(A)"


def test_downward_api_fields_resolve_from_the_pod() -> None:
    pod = _pod()
    assert spec.field_value(pod, "metadata.name") == "agent-0"
    assert spec.field_value(pod, "metadata.namespace") == "ns"
    assert spec.field_value(pod, "spec.nodeName") == "kwok-node-1"
    assert spec.field_value(pod, "status.podIP") == "127.1.1.7"
    assert spec.field_value(pod, "metadata.labels['app']") == "agent"


def test_unknown_field_ref_is_an_error() -> None:
    with pytest.raises(spec.SpecError):
        spec.field_value(_pod(), "spec.nope")


def test_args_run_after_the_entrypoint(tmp_path: pathlib.Path) -> None:
    plan = _launch(_pod(args=["--port", "9000"]), tmp_path)
    assert plan.argv == ("/venv/bin/hsm-agent", "--port", "9000")


def test_command_naming_the_entrypoint_runs_the_resolved_script(tmp_path: pathlib.Path) -> None:
    plan = _launch(_pod(command=["hsm-agent"], args=["serve"]), tmp_path)
    assert plan.argv == ("/venv/bin/hsm-agent", "serve")


def test_an_entrypoint_under_a_mount_path_is_not_rewritten(tmp_path: pathlib.Path) -> None:
    pod = _pod(args=["--cache=/tmp/cache"], volumeMounts=[{"name": "scratch", "mountPath": "/tmp"}])
    plan = spec.launch(pod, ("/tmp/checkout/.venv/bin/hsm-agent",), tmp_path, {}, _secret, _configmap, _mint)
    assert plan.argv == ("/tmp/checkout/.venv/bin/hsm-agent", f"--cache={tmp_path}/volumes/scratch/cache")


def test_other_command_replaces_the_entrypoint(tmp_path: pathlib.Path) -> None:
    plan = _launch(_pod(command=["/bin/sh", "-c"], args=["echo hi"]), tmp_path)
    assert plan.argv == ("/bin/sh", "-c", "echo hi")


def test_env_has_pod_ip_downward_values_and_secret_keys(tmp_path: pathlib.Path) -> None:
    env = [
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "PIN", "valueFrom": {"secretKeyRef": {"name": "pin", "key": "pin"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "ADDR", "value": "$(NODE):1"},
    ]
    plan = _launch(_pod(env=env), tmp_path)
    assert plan.env["POD_IP"] == "127.1.1.7"
    assert plan.env["NODE"] == "kwok-node-1"
    assert plan.env["PIN"] == "1234"
    assert plan.env["MODE"] == "fast"
    assert plan.env["ADDR"] == "kwok-node-1:1"
    assert plan.env["PATH"] == "/bin"


def test_missing_secret_key_is_an_error_unless_optional(tmp_path: pathlib.Path) -> None:
    ref = {"name": "pin", "key": "absent"}
    with pytest.raises(spec.SpecError):
        _launch(_pod(env=[{"name": "X", "valueFrom": {"secretKeyRef": ref}}]), tmp_path)
    plan = _launch(
        _pod(env=[{"name": "X", "valueFrom": {"secretKeyRef": {**ref, "optional": True}}}]), tmp_path
    )
    assert "X" not in plan.env


def test_volumes_are_written_under_the_pod_dir(tmp_path: pathlib.Path) -> None:
    plan = _launch(_pod(), tmp_path)
    assert plan.files[tmp_path / "volumes" / "pin" / "pin"] == b"1234"
    assert tmp_path / "volumes" / "pin" / "other" not in plan.files
    assert plan.files[tmp_path / "volumes" / "cfg" / "conf.yaml"] == b"a: 1"
    assert plan.files[tmp_path / "volumes" / "token" / "token"] == b"token-for-api"
    assert plan.files[tmp_path / "volumes" / "token" / "mode"] == b"fast"
    assert tmp_path / "volumes" / "scratch" in plan.dirs


def test_mount_paths_are_rewritten_in_args_and_env(tmp_path: pathlib.Path) -> None:
    mounts = [
        {"name": "pin", "mountPath": "/etc/hsm/pin"},
        {"name": "cfg", "mountPath": "/etc/hsm"},
    ]
    pod = _pod(
        volumeMounts=mounts,
        args=["--pin-file=/etc/hsm/pin/pin", "--config", "/etc/hsm/conf.yaml", "/etc/hsmx"],
        env=[{"name": "CONF", "value": "/etc/hsm"}],
    )
    plan = _launch(pod, tmp_path)
    volumes = tmp_path / "volumes"
    assert plan.argv[1] == f"--pin-file={volumes / 'pin'}/pin"
    assert plan.argv[3] == f"{volumes / 'cfg'}/conf.yaml"
    assert plan.argv[4] == "/etc/hsmx"
    assert plan.env["CONF"] == str(volumes / "cfg")


def test_missing_secret_volume_is_an_error(tmp_path: pathlib.Path) -> None:
    pod = _pod()
    pod["spec"]["volumes"] = [{"name": "v", "secret": {"secretName": "absent"}}]
    with pytest.raises(spec.SpecError):
        _launch(pod, tmp_path)


def test_pod_ip_in_args_expands_from_env(tmp_path: pathlib.Path) -> None:
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    plan = _launch(_pod(env=env, args=["--bind", "$(POD_IP)"]), tmp_path)
    assert plan.argv[-1] == "127.1.1.7"


def test_rewritten_paths_are_not_rewritten_again() -> None:
    mounts = {"/tmp": pathlib.Path("/tmp/run/volumes/tmp"), "/tmp/cache": pathlib.Path("/tmp/run/volumes/c")}
    assert spec.rewrite_paths("/tmp/metrics", mounts) == "/tmp/run/volumes/tmp/metrics"
    assert spec.rewrite_paths("/tmp/cache/x", mounts) == "/tmp/run/volumes/c/x"


def test_mount_path_inside_another_path_is_left_alone() -> None:
    mounts = {"/tmp": pathlib.Path("/host/tmp")}
    assert spec.rewrite_paths("/var/tmp/x", mounts) == "/var/tmp/x"
    assert spec.rewrite_paths("--dir=/tmp", mounts) == "--dir=/host/tmp"


def test_host_path_volumes_are_the_host_paths_themselves(tmp_path: pathlib.Path) -> None:
    pod = _pod(volumeMounts=[{"name": "sys", "mountPath": "/sys"}], args=["--sysfs=/sys/bus/usb"])
    pod["spec"]["volumes"].append({"name": "sys", "hostPath": {"path": "/sys", "type": "Directory"}})
    plan = _launch(pod, tmp_path)
    assert plan.argv[1] == "--sysfs=/sys/bus/usb"
    assert pathlib.Path("/sys") not in plan.dirs
