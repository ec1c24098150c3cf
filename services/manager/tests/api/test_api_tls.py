"""HTTPS of a real gunicorn on 127.0.0.1: TLS only, and a certificate swapped the kubelet's way is served to
new connections without a restart."""

from __future__ import annotations

import argparse
import collections.abc
import os
import pathlib
import socket
import ssl

import pytest
import requests
from cryptography import x509

from hsm_manager.api import config
from hsm_manager.gateway import pki

from ..polling import wait_until
from .conftest import TLS, Api, start_api, stop_api

NAMES = ["localhost"]


class SecretVolume:
    """A directory laid out as the kubelet lays out a mounted Secret: ``tls.crt -> ..data/tls.crt``,
    ``..data -> ..<generation>``; ``swap`` replaces every file at once by repointing ``..data``."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self._generation = 0
        root.mkdir(parents=True)

    def write(self, files: dict[str, bytes]) -> None:
        self._generation += 1
        target = self.root / f"..gen{self._generation}"
        target.mkdir()
        for name, content in files.items():
            (target / name).write_bytes(content)
        link = self.root / "..data_tmp"
        link.symlink_to(target.name)
        os.replace(link, self.root / "..data")  # atomic, as the kubelet's rename
        for name in files:
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.new_ca()


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory, ca: pki.KeyPair) -> SecretVolume:
    root = tmp_path_factory.mktemp("tls")
    found = SecretVolume(root / "mount")
    leaf = pki.issue_serving(ca, NAMES)
    found.write({"tls.crt": leaf.cert, "tls.key": leaf.key})
    (root / "ca.crt").write_bytes(ca.cert)
    return found


@pytest.fixture(scope="module")
def https_api(
    tmp_path_factory: pytest.TempPathFactory, volume: SecretVolume
) -> collections.abc.Iterator[Api]:
    files = TLS(volume.root / "tls.crt", volume.root / "tls.key", volume.root.parent / "ca.crt")
    served = start_api(tmp_path_factory.mktemp("api"), {}, workers=2, threads=2, tls=files)
    yield served
    stop_api(served)


def _port(api: Api) -> int:
    return int(api.url.rsplit(":", 1)[1])


def served_serial(api: Api, ca: pki.KeyPair) -> int:
    """The serial of the certificate a new connection is handed (verified against ca)."""
    context = ssl.create_default_context(cadata=ca.cert.decode())
    with (
        socket.create_connection(("127.0.0.1", _port(api)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_health_answers_over_https_verified_with_the_ca(https_api: Api) -> None:
    response = https_api.call("GET", "/api/v1/health", token=None)
    assert response.status_code == 200


def test_plain_http_gets_no_http_answer(https_api: Api) -> None:
    plain = https_api.url.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{plain}/api/v1/health", timeout=5)


def test_a_client_without_the_ca_fails_verification(https_api: Api) -> None:
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(f"{https_api.url}/api/v1/health", timeout=5, verify=True)


def test_a_swapped_certificate_reaches_new_connections_without_a_restart(
    https_api: Api, volume: SecretVolume, ca: pki.KeyPair
) -> None:
    before = served_serial(https_api, ca)
    pid = https_api.process.pid
    renewed = pki.issue_serving(ca, NAMES)
    volume.write({"tls.crt": renewed.cert, "tls.key": renewed.key})
    expected = x509.load_pem_x509_certificate(renewed.cert).serial_number
    # Both workers must serve it: every new connection, whichever worker takes it, shows the new one.
    wait_until(lambda: served_serial(https_api, ca) == expected, 10, "the renewed certificate served")
    assert all(served_serial(https_api, ca) == expected for _ in range(20))
    assert before != expected
    assert https_api.process.pid == pid
    assert https_api.process.poll() is None
    assert https_api.call("GET", "/api/v1/health", token=None).status_code == 200


def test_a_certificate_that_does_not_load_leaves_the_last_good_one_served(
    https_api: Api, volume: SecretVolume, ca: pki.KeyPair
) -> None:
    one, other = pki.issue_serving(ca, NAMES), pki.issue_serving(ca, NAMES)
    volume.write({"tls.crt": one.cert, "tls.key": other.key})  # a key of another pair
    # Every connection still completes a verified handshake, never with the pair that does not load. Each
    # worker keeps its own last good pair (one that saw no connection since an earlier swap keeps an older
    # good one), so the serial served need not be the same across connections.
    bad = x509.load_pem_x509_certificate(one.cert).serial_number
    assert all(served_serial(https_api, ca) != bad for _ in range(10))
    assert "tls_reload_failed" in https_api.log.read_text()


def test_the_plain_http_flag_says_it_is_for_debugging_only() -> None:
    parser = argparse.ArgumentParser(prog="hsm-manager api")
    config.add_flags(parser)
    shown = parser.format_help()
    flag = " ".join(shown.split("--insecure-plain-http", 1)[1].split())
    assert "local debugging only" in flag
    assert "unencrypted" in flag
