"""The API's CA read from the cluster (ConfigMap hsm-api-ca), against a stand-in API server: found, or a
message that says what to do when the user may not read it or it is not there."""

from __future__ import annotations

import collections.abc
import http.server
import json
import pathlib
import threading

import pytest
import yaml

from kubectl_hsm import connect

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PATH = "/api/v1/namespaces/hsm-system/configmaps/hsm-api-ca"


class _ApiServer(http.server.BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, dict[str, object]]] = {}

    def do_GET(self) -> None:
        status, body = self.answers.get(self.path, (404, {"kind": "Status", "code": 404}))
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def kubeconfig(tmp_path: pathlib.Path) -> collections.abc.Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ApiServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{httpd.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    yield str(path)
    _ApiServer.answers = {}
    httpd.shutdown()
    thread.join(5)


def test_the_published_ca_is_returned(kubeconfig: str) -> None:
    _ApiServer.answers = {PATH: (200, {"kind": "ConfigMap", "data": {"ca.crt": CA}})}
    assert connect.cluster_ca(kubeconfig, None, "hsm-system") == CA


def test_a_user_who_may_not_read_it_is_told_which_role_or_flag_helps(kubeconfig: str) -> None:
    _ApiServer.answers = {PATH: (403, {"kind": "Status", "code": 403})}
    with pytest.raises(
        connect.ConnectError, match="hsm-api-client Role, or pass --certificate-authority FILE"
    ):
        connect.cluster_ca(kubeconfig, None, "hsm-system")


def test_a_missing_configmap_says_it_is_not_published(kubeconfig: str) -> None:
    with pytest.raises(connect.ConnectError, match=r"is missing.*--certificate-authority FILE"):
        connect.cluster_ca(kubeconfig, None, "hsm-system")


def test_a_configmap_without_a_certificate_is_refused(kubeconfig: str) -> None:
    _ApiServer.answers = {PATH: (200, {"kind": "ConfigMap", "data": {"ca.crt": "not a certificate"}})}
    with pytest.raises(connect.ConnectError, match="holds no CA certificate"):
        connect.cluster_ca(kubeconfig, None, "hsm-system")
