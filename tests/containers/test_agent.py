"""The agent image (softhsm target) serving a host SoftHSM2 token: the gRPC contract and the health port."""

import json
from typing import Any

from hsmproto.v1 import hsm_pb2


def write(agent: Any, path: str, data: dict[str, bytes]) -> hsm_pb2.WriteSecretResponse:
    request = hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data))
    return agent.stub.WriteSecret(request, timeout=10)


def test_a_written_secret_reads_back_byte_exact(agent: Any) -> None:
    data = {"password": b"s3cr\x00t", "user": "päss".encode()}
    written = write(agent, "containers/db", data)
    read = agent.stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="containers/db"), timeout=10)
    assert dict(read.secret_data.data) == data
    assert (read.version, read.checksum) == (written.version, written.checksum)


def test_list_names_every_written_path_under_the_prefix(agent: Any) -> None:
    for name in ("a", "b"):
        write(agent, f"listed/{name}", {"k": name.encode()})
    listed = agent.stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="listed/"), timeout=10)
    assert sorted(listed.paths) == ["listed/a", "listed/b"]


def test_the_agent_reports_the_token_and_device_it_serves(agent: Any) -> None:
    info = agent.stub.GetInfo(hsm_pb2.GetInfoRequest(), timeout=10)
    assert (info.hsm_info.label, info.device_name) == ("containers", "containers")


def test_the_health_port_reports_alive_and_ready(agent: Any, http_get: Any) -> None:
    live, ready = http_get(agent.health_port, "/healthz"), http_get(agent.health_port, "/readyz")
    assert (live[0], live[1]["alive"]) == (200, True)
    assert (ready[0], ready[1]["ready"]) == (200, True)


def test_selftest_checks_the_served_token_from_inside_the_image(agent: Any, soft_token: Any) -> None:
    """The documented `kubectl exec … hsm-agent selftest` line, in the agent's container while it serves."""
    token = ["--token-label=containers", f"--pin-file={soft_token.pin_file}"]
    code, output = agent.container.exec(["hsm-agent", "selftest", *token, "--json", "test"])
    report = json.loads(output)
    assert (code, report["ok"]) == (0, True), output.decode(errors="replace")
    assert [step["ok"] for step in report["steps"]] == [True] * len(report["steps"])
    assert report["path"] == "hsm-selftest/scratch"
    # The served store still answers, and the scratch secret the cycle wrote is gone from it.
    listed = agent.stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="hsm-selftest/"), timeout=10)
    assert list(listed.paths) == []
