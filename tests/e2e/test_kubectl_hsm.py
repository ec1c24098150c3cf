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
from kubectl_hsm import secretdata

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
    command += ["--certificate-authority", str(setup.ca)]
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


def test_rename_key_moves_the_value_in_one_write_on_both_devices(api: "harness.Setup") -> None:
    ns = api.ns_a
    literals = ("--from-literal", "a=1", "--from-literal", "b=2")
    assert "(version 1)" in ok(kubectl_hsm(api, "-n", ns, "create", "ren", *literals))
    assert "renamed to c (version 2)" in ok(kubectl_hsm(api, "-n", ns, "rename-key", "ren", "a", "c"))
    shown = yaml.safe_load(ok(kubectl_hsm(api, "-n", ns, "get", "ren")))
    assert {k: base64.b64decode(v) for k, v in shown["data"].items()} == {"b": b"2", "c": b"1"}
    assert "in sync: yes" in ok(kubectl_hsm(api, "-n", ns, "versions", "ren"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [("a", "b", b"already has a key 'b'"), ("x", "y", b"has no key 'x'"), ("a", "a", b"are the same")],
)
def test_rename_key_refuses_and_changes_nothing(
    api: "harness.Setup", old: str, new: str, message: bytes
) -> None:
    ns = api.ns_a
    name = f"ren-{old}-{new}"
    ok(kubectl_hsm(api, "-n", ns, "create", name, "--from-literal", "a=1", "--from-literal", "b=2"))
    result = kubectl_hsm(api, "-n", ns, "rename-key", name, old, new)
    assert result.returncode == 1
    assert message in result.stderr
    shown = yaml.safe_load(ok(kubectl_hsm(api, "-n", ns, "get", name)))
    assert (shown["version"], set(shown["data"])) == (1, {"a", "b"})


def test_generated_values_are_made_on_the_device_and_never_printed(api: "harness.Setup") -> None:
    ns = api.ns_a
    created = kubectl_hsm(
        api, "-n", ns, "create", "gen", "--generate", "password=32", "--generate", "apiKey=hex:16",
        "--from-literal", "user=app",
    )  # fmt: skip
    ok(created)
    values = secretdata.decode(yaml.safe_load(ok(kubectl_hsm(api, "-n", ns, "get", "gen")))["data"])
    assert values["user"] == b"app"
    assert len(values["password"]) == 32
    assert values["password"].isalnum()
    assert len(bytes.fromhex(values["apiKey"].decode())) == 16
    for value in (values["password"], values["apiKey"]):
        assert value not in created.stdout + created.stderr
    assert "in sync: yes" in ok(kubectl_hsm(api, "-n", ns, "versions", "gen"))
    refused = kubectl_hsm(api, "-n", ns, "update", "gen", "--generate", "password=emoji:3")
    assert refused.returncode == 1
    assert b"generate.password: unknown format 'emoji'" in refused.stderr


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


def test_the_context_flag_picks_the_credentials_and_the_namespace(
    api: "harness.Setup", kube: testkit.Kube, tmp_path: pathlib.Path
) -> None:
    ok(kubectl_hsm(api, "-n", api.ns_a, "create", "by-context", "--from-literal", "k=alice-may-read"))
    users = {}
    for user in ("alice", "nobody"):
        single = kube.service_account_kubeconfig(api.system, user, tmp_path / f"{user}.kubeconfig")
        users[user] = yaml.safe_load(single.read_text())
    cluster = users["alice"]["clusters"][0]
    merged = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": doc["users"][0]["user"]} for name, doc in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": cluster["name"], "user": name, "namespace": api.ns_a}}
            for name in users
        ],
        "current-context": "nobody",
    }
    config = tmp_path / "two-contexts.kubeconfig"
    config.write_text(yaml.safe_dump(merged))
    config.chmod(0o600)
    refused = kubectl_hsm(api, "get", "by-context", kubeconfig=str(config))
    assert refused.returncode == 1
    assert b"403" in refused.stderr
    chosen = kubectl_hsm(api, "--context", "alice", "get", "by-context", "--key", "k", kubeconfig=str(config))
    assert ok(chosen) == "alice-may-read"


def test_a_service_account_acts_through_a_minted_token(api: "harness.Setup", kube: testkit.Kube) -> None:
    # The admin kubeconfig (any identity that may create serviceaccounts/token) mints alice's token.
    result = kubectl_hsm(
        api, "--service-account", f"{api.system}/alice", "-n", api.ns_a,
        "create", "by-token-request", "--from-literal", "k=v",
        kubeconfig=str(kube.kubeconfig),
    )  # fmt: skip
    assert ok(result).startswith(f"secret {api.ns_a}/by-token-request created")
    written = api.call("GET", f"/api/v1/hsm/secrets/{api.ns_a}/by-token-request/versions", "admin").json()
    assert {d["writer"] for d in written["data"]["devices"]} == {f"system:serviceaccount:{api.system}:alice"}
    refused = kubectl_hsm(
        api, "--service-account", f"{api.system}/alice", "-n", api.ns_b, "get", "anything",
        kubeconfig=str(kube.kubeconfig),
    )  # fmt: skip
    assert refused.returncode == 1
    assert b"403" in refused.stderr


def test_a_client_certificate_kubeconfig_is_told_how_to_get_a_token(
    api: "harness.Setup", kube: testkit.Kube
) -> None:
    if kube.devcluster is None:
        pytest.skip("needs the devcluster's admin kubeconfig, which authenticates with a client certificate")
    result = kubectl_hsm(api, "-n", api.ns_a, "list", kubeconfig=str(kube.kubeconfig))
    assert result.returncode == 1
    assert b"no bearer token" in result.stderr
    assert b"--service-account" in result.stderr
