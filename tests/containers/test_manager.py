"""The manager image: its command line, and what its API needs to start."""

import pathlib
import re
from collections.abc import Callable
from typing import Any

from testcontainers.core import container as tc_container

from devcluster import ports, testkit

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


def test_the_api_without_a_kubernetes_config_fails_to_boot_and_says_why(
    new_container: NewContainer, container_logs: Logs
) -> None:
    # Every worker builds the production app, which needs a Kubernetes client before it serves anything,
    # /api/v1/health included: a kubeconfig (--kubeconfig or KUBECONFIG) or the in-cluster ServiceAccount.
    command = ["api", f"--listen=127.0.0.1:{ports.free_port()}", "--metrics-listen=", "--workers=1"]
    with new_container("manager").with_command(command) as container:
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


def test_the_api_with_a_kubeconfig_answers_health_under_gunicorn(
    new_container: NewContainer, container_logs: Logs, http_get: Any, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    config.chmod(0o644)  # the image's user, 65532, reads it
    port = ports.free_port()
    command = ["api", f"--listen=127.0.0.1:{port}", "--metrics-listen=", "--workers=1", "--kubeconfig=/kc"]
    container = (
        new_container("manager").with_command(command).with_volume_mapping(str(config), "/kc", mode="ro")
    )
    with container:

        def answered() -> tuple[int, Any] | None:
            try:
                return http_get(port, "/api/v1/health")  # type: ignore[no-any-return]
            except OSError:
                return None

        status, body = testkit.poll(answered, 30, "the API's health endpoint")
        assert status == 200, container_logs(container)
        assert body["data"]["status"] == "ok", body
