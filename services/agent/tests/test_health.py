"""Health over HTTP, metrics over HTTPS to allowed callers only, and the index-only RPCs that make no PKCS#11
call."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import prometheus_client

from hsm_agent.store import secret_store
from hsm_metricsauth import server as metricsauth
from hsmproto.v1 import hsm_pb2


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def metrics_text(service: Any) -> str:
    """What the agent's metrics endpoint serves (its registry, as rendered for a scrape)."""
    return prometheus_client.generate_latest(service.metrics.registry).decode()


def pkcs11_calls_besides_probes(service) -> float:  # type: ignore[no-untyped-def]
    return sum(
        sample.value
        for metric in service.metrics.pkcs11_calls.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["operation"] != "probe"
    )


def test_ready_agent_is_healthy_and_ready(running) -> None:
    assert get(running.health.port, "/healthz")[0] == 200
    status, body = get(running.health.port, "/readyz")
    assert (status, json.loads(body)["state"]) == (200, "ready")


def test_agent_with_a_wrong_pin_is_alive_but_not_ready(softhsm, start_agent, wait) -> None:
    softhsm.pin_file.write_text("0000")
    service = start_agent(softhsm, ready=False)
    wait(lambda: service.store.state is secret_store.State.WRONG_PIN)
    assert get(service.health.port, "/healthz")[0] == 200
    assert get(service.health.port, "/readyz")[0] == 503
    assert 'hsm_agent_login_failures_total{reason="wrong_pin"} 1.0' in metrics_text(service)


def test_metrics_count_pkcs11_and_grpc_calls(stub, running) -> None:
    stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path="ns/m", secret_data=hsm_pb2.SecretData(data={"k": b"v"}))
    )
    text = metrics_text(running)
    for line in (
        'hsm_agent_pkcs11_calls_total{operation="create",result="ok"} 1.0',
        'hsm_agent_grpc_requests_total{code="OK",method="WriteSecret"} 1.0',
        "hsm_agent_index_entries 1.0",
        "hsm_agent_connected 1.0",
    ):
        assert line in text
    assert 'hsm_agent_pkcs11_call_seconds_bucket{le="0.001",operation="create"}' in text


def test_metrics_are_served_over_https_to_allowed_callers_and_not_on_the_health_port(
    softhsm, start_agent, review_api
) -> None:
    settings = metricsauth.Settings("127.0.0.1:0", kubeconfig=str(review_api.kubeconfig))
    service = start_agent(softhsm, metrics=settings)
    port = service.metrics_server.port
    scraped = review_api.scrape(port)
    assert scraped.status == 200
    assert "hsm_agent_connected 1.0" in scraped.text
    assert "hsm_agent_metrics_certificate_expiry_timestamp_seconds " in scraped.text
    assert review_api.scrape(port, token=None).status == 401
    assert review_api.scrape(port, token=review_api.stranger).status == 403
    assert get(service.health.port, "/metrics")[0] == 404


def test_index_served_calls_make_no_pkcs11_call(stub, running) -> None:
    stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path="ns/idle", secret_data=hsm_pb2.SecretData(data={"k": b"v"}))
    )
    before = pkcs11_calls_besides_probes(running)
    for _ in range(20):
        stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/"))
        stub.GetChecksum(hsm_pb2.GetChecksumRequest(path="ns/idle"))
        stub.ReadMetadata(hsm_pb2.ReadMetadataRequest(path="ns/idle"))
    assert pkcs11_calls_besides_probes(running) == before


def test_reading_a_warm_secret_makes_one_pkcs11_call(stub, running) -> None:
    data = {"a": b"1", "b": b"2", "c": b"3"}
    stub.WriteSecret(hsm_pb2.WriteSecretRequest(path="ns/warm", secret_data=hsm_pb2.SecretData(data=data)))
    before = pkcs11_calls_besides_probes(running)
    stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/warm"))
    assert pkcs11_calls_besides_probes(running) - before == 1
