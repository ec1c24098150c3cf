"""The scenario's API client over HTTPS: verified against a CA file for a name other than the host dialled
(the forwarder's URL says 127.0.0.1, the API's certificate names its Service), refused otherwise."""

import collections.abc
import http.server
import json
import ssl
import threading
import urllib.error

import pytest

from devcluster import hsmapi, pki


class _Data(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"data": {"path": self.path}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> pki.Paths:
    found = pki.Paths.under(tmp_path_factory.mktemp("pki"))
    pki.create(found)
    return found


@pytest.fixture(scope="module")
def url(paths: pki.Paths) -> collections.abc.Iterator[str]:
    """An HTTPS server on 127.0.0.1 whose certificate names (among others) kubernetes.default.svc."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Data)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths.server_cert, paths.server_key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join(5)


def test_the_api_is_verified_for_the_service_name_with_the_ca_file(url: str, paths: pki.Paths) -> None:
    api = hsmapi.HsmApi(url, "t", paths.ca_cert, "kubernetes.default.svc")
    assert api.call("GET", "/health") == {"path": "/api/v1/health"}


def test_a_name_the_certificate_does_not_carry_is_refused(url: str, paths: pki.Paths) -> None:
    api = hsmapi.HsmApi(url, "t", paths.ca_cert, "hsm-api.elsewhere.svc")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        api.call("GET", "/health")


def test_without_the_ca_the_server_is_refused(url: str) -> None:
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        hsmapi.HsmApi(url, "t", None, "kubernetes.default.svc").call("GET", "/health")
