"""``kubectl hsm`` end to end against the API on the devcluster (real TokenReview/SAR, real agents).

The API, its agents and the users come from the module fixture of test_api.py (loaded by path: e2e
test modules are not importable by name). That API runs as a local process, not a pod, so the plugin is
pointed at it with --server; credentials come from a ServiceAccount kubeconfig. The port-forward path to
the API Service is exercised by test_scenario.py, where the API runs as a pod.
"""

import base64
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from devcluster import testkit

_spec = importlib.util.spec_from_file_location(
    "e2e_api_harness", pathlib.Path(__file__).with_name("test_api.py")
)
assert _spec is not None
assert _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)
api = harness.api  # the module-scoped fixture, instantiated for this module too


def kubectl_hsm(
    setup: "harness.Setup",
    *args: str,
    user: str = "admin",
    stdin: bytes | None = None,
    kubeconfig: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("HSM_TOKEN", "HSM_API_URL", "KUBECONFIG")}
    command = [sys.executable, "-m", "kubectl_hsm.cli", "--server", setup.url]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    else:
        env["HSM_TOKEN"] = setup.tokens[user]
    return subprocess.run(
        [*command, *args], env=env, input=stdin, capture_output=True, timeout=60, check=False
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_create_and_get_round_trip_binary_files(api: "harness.Setup", tmp_path: pathlib.Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)))
    ns = api.ns_a
    ok(
        kubectl_hsm(
            api, "-n", ns, "create", "files", "--from-file", f"blob={blob}", "--from-literal", "user=app"
        )
    )
    assert kubectl_hsm(api, "-n", ns, "get", "files", "--key", "blob").stdout == bytes(range(256))
    shown = yaml.safe_load(ok(kubectl_hsm(api, "-n", ns, "get", "files", "-o", "yaml")))
    assert base64.b64decode(shown["data"]["user"]) == b"app"


def test_update_from_an_env_file_replaces_the_data(api: "harness.Setup", tmp_path: pathlib.Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("# settings\nHOST=db\nPORT=5432\n")
    ns = api.ns_a
    ok(kubectl_hsm(api, "-n", ns, "create", "envd", "--from-literal", "old=1"))
    ok(kubectl_hsm(api, "-n", ns, "update", "envd", "--from-env-file", str(env)))
    shown = yaml.safe_load(ok(kubectl_hsm(api, "-n", ns, "get", "envd")))
    assert set(shown["data"]) == {"HOST", "PORT"}


def test_update_with_a_stale_version_fails(api: "harness.Setup") -> None:
    ns = api.ns_a
    ok(kubectl_hsm(api, "-n", ns, "create", "cas", "--from-literal", "k=1"))
    result = kubectl_hsm(api, "-n", ns, "update", "cas", "--from-literal", "k=2", "--if-version", "7")
    assert result.returncode == 1
    assert b"VERSION_CONFLICT" in result.stderr


def test_list_shows_the_namespace_sorted(api: "harness.Setup") -> None:
    ns = api.ns_b
    for name in ("list-b", "list-a"):
        ok(kubectl_hsm(api, "-n", ns, "create", name, "--from-literal", "k=v"))
    lines = ok(kubectl_hsm(api, "-n", ns, "list")).splitlines()
    names = [line.split()[1] for line in lines[1:]]
    assert names == sorted(names)
    assert {"list-a", "list-b"} <= set(names)


def test_delete_of_a_key_then_the_secret(api: "harness.Setup") -> None:
    ns = api.ns_a
    ok(kubectl_hsm(api, "-n", ns, "create", "del", "--from-literal", "a=1", "--from-literal", "b=2"))
    ok(kubectl_hsm(api, "-n", ns, "delete", "del", "--key", "a"))
    assert set(yaml.safe_load(ok(kubectl_hsm(api, "-n", ns, "get", "del")))["data"]) == {"b"}
    ok(kubectl_hsm(api, "-n", ns, "delete", "del"))
    result = kubectl_hsm(api, "-n", ns, "get", "del")
    assert result.returncode == 1
    assert b"NOT_FOUND" in result.stderr


def test_versions_shows_both_devices_in_sync(api: "harness.Setup") -> None:
    ns = api.ns_a
    ok(kubectl_hsm(api, "-n", ns, "create", "vers", "--from-literal", "k=v"))
    text = ok(kubectl_hsm(api, "-n", ns, "versions", "vers"))
    assert "hsm-a" in text
    assert "hsm-b" in text
    assert "in sync: yes" in text


def test_health_devices_and_mirror_sync(api: "harness.Setup") -> None:
    assert "2/2 devices" in ok(kubectl_hsm(api, "health"))
    assert "hsm-b" in ok(kubectl_hsm(api, "devices"))
    assert "checked" in ok(kubectl_hsm(api, "mirror", "sync"))


def test_rotate_pin_never_prints_the_pin(api: "harness.Setup", kube: testkit.Kube) -> None:
    pin = harness.PIN
    result = kubectl_hsm(api, "rotate-pin", "--pin-stdin", stdin=f"{pin}\n{pin}\n".encode())
    assert ok(result).startswith("PIN changed")
    assert pin.encode() not in result.stdout + result.stderr


def test_a_user_without_permission_is_refused(api: "harness.Setup") -> None:
    result = kubectl_hsm(api, "-n", api.ns_b, "get", "anything", user="alice")
    assert result.returncode == 1
    assert b"403" in result.stderr


def test_credentials_come_from_the_kubeconfig(
    api: "harness.Setup", kube: testkit.Kube, tmp_path: pathlib.Path
) -> None:
    config = kube.service_account_kubeconfig(api.system, "alice", tmp_path / "alice.kubeconfig")
    result = kubectl_hsm(
        api, "-n", api.ns_a, "create", "via-config", "--from-literal", "k=v", kubeconfig=str(config)
    )
    assert ok(result).startswith(f"secret {api.ns_a}/via-config created")


def test_the_namespace_defaults_to_the_kubeconfig_context(
    api: "harness.Setup", kube: testkit.Kube, tmp_path: pathlib.Path
) -> None:
    config = kube.service_account_kubeconfig(api.system, "admin", tmp_path / "admin.kubeconfig")
    # The ServiceAccount kubeconfig's context namespace is the system namespace, where admin may not write.
    result = kubectl_hsm(api, "create", "ctx", "--from-literal", "k=v", kubeconfig=str(config))
    assert result.returncode == 1
    assert f"{api.system}".encode() in result.stderr


@pytest.mark.parametrize("args", [["get"], ["bogus"], ["update"]])
def test_usage_errors_exit_2(api: "harness.Setup", args: list[str]) -> None:
    assert kubectl_hsm(api, *args).returncode == 2
