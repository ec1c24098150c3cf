"""The manager image: its command line, and what its API needs to start."""

import http.client
import json
import pathlib
import re
import socket
import ssl
from collections.abc import Callable
from typing import Any

from testcontainers.core import container as tc_container

from devcluster import ports, testkit
from hsm_manager.gateway import pki

Logs = Callable[[tc_container.DockerContainer], str]
NewContainer = Callable[[str], tc_container.DockerContainer]


def test_help_exits_zero_and_names_the_operator_and_api_commands(
    new_container: NewContainer, container_logs: Logs
) -> None:
    with new_container("manager").with_command(["--help"]) as container:
        code = container.wait()
        logs = container_logs(container)
    assert code == 0, logs
    assert re.search(r"^\s+operator\s", logs, re.MULTILINE), logs
    assert re.search(r"^\s+api\s", logs, re.MULTILINE), logs


TLS_DIR = "/etc/hsm-api/tls"
"""Where the API's pod mounts its serving certificate (the default of --tls-cert-file/--tls-key-file)."""


def serving_files(tmp_path: pathlib.Path) -> tuple[pathlib.Path, bytes]:
    """A directory with tls.crt and tls.key for 127.0.0.1's name "localhost", and the CA that signed them."""
    ca = pki.new_ca()
    leaf = pki.issue_serving(ca, ["localhost"])
    folder = tmp_path / "tls"
    folder.mkdir()
    (folder / "tls.crt").write_bytes(leaf.cert)
    (folder / "tls.key").write_bytes(leaf.key)
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user, 65532, reads them
    return folder, ca.cert


def test_the_api_without_its_certificate_refuses_to_start_and_says_where_it_looked(
    new_container: NewContainer, container_logs: Logs
) -> None:
    command = ["api", f"--listen=127.0.0.1:{ports.free_port()}", "--metrics-listen=", "--workers=1"]
    with new_container("manager").with_command(command) as container:
        code = container.wait()
        logs = container_logs(container)
    assert code == 2, logs
    assert f"no serving certificate at {TLS_DIR}/tls.crt" in logs, logs
    assert "Traceback" not in logs, logs


def test_the_api_without_a_kubernetes_config_fails_to_boot_and_says_why(
    new_container: NewContainer, container_logs: Logs, tmp_path: pathlib.Path
) -> None:
    # Every worker builds the production app, which needs a Kubernetes client before it serves anything,
    # /api/v1/health included: a kubeconfig (--kubeconfig or KUBECONFIG) or the in-cluster ServiceAccount.
    folder, _ = serving_files(tmp_path)
    command = ["api", f"--listen=127.0.0.1:{ports.free_port()}", "--metrics-listen=", "--workers=1"]
    container = (
        new_container("manager").with_command(command).with_volume_mapping(str(folder), TLS_DIR, mode="ro")
    )
    with container:
        code = container.wait()
        logs = container_logs(container)
    assert code != 0, logs
    assert "Service host/port is not set" in logs, logs
    assert "Worker failed to boot" in logs, logs


# Read at start only: the client is built from it, no request is made before one is needed. Port 1 on the
# loopback answers nothing, so the test cannot reach anything outside this machine.
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: not-a-secret}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def https_get(port: int, path: str, ca: bytes) -> tuple[int, Any]:
    """A GET on 127.0.0.1 over HTTPS, the server verified with ca for the name "localhost"."""
    context = ssl.create_default_context(cadata=ca.decode())
    connection = http.client.HTTPSConnection("localhost", port, timeout=5, context=context)
    # Connected here, to 127.0.0.1 itself: no resolver decides where "localhost" is.
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.sock = context.wrap_socket(raw, server_hostname="localhost")
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, json.loads(body) if body else None


def test_the_api_with_a_kubeconfig_answers_health_under_gunicorn_over_https(
    new_container: NewContainer, container_logs: Logs, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    config.chmod(0o644)  # the image's user, 65532, reads it
    folder, ca = serving_files(tmp_path)
    port = ports.free_port()
    command = ["api", f"--listen=127.0.0.1:{port}", "--metrics-listen=", "--workers=1", "--kubeconfig=/kc"]
    container = (
        new_container("manager")
        .with_command(command)
        .with_volume_mapping(str(config), "/kc", mode="ro")
        .with_volume_mapping(str(folder), TLS_DIR, mode="ro")
    )
    with container:

        def answered() -> tuple[int, Any] | None:
            try:
                return https_get(port, "/api/v1/health", ca)
            except OSError:
                return None

        status, body = testkit.poll(answered, 30, "the API's health endpoint")
        assert status == 200, container_logs(container)
        assert body["data"]["status"] == "ok", body
