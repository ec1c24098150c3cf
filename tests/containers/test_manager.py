"""The manager image: its command line, and what its API needs to start."""

import re
from collections.abc import Callable

from testcontainers.core import container as tc_container

from devcluster import ports

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
