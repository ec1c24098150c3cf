"""The REST API's serving certificate: issued and renewed from the manager's CA, or supplied by the user;
either way the CA that signs it is published for API clients.

One daemon thread checks at start and then every CHECK_INTERVAL. The API pod mounts the Secret and loads
a renewed certificate by itself (api.tls), so renewing is only replacing the Secret's data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hsm_manager import kube
from hsm_manager.gateway import pki

from . import config

log = logging.getLogger(__name__)

#: Seconds between checks: leaves live 90 days and are renewed with 30 left, so hourly is plenty.
CHECK_INTERVAL = 3600.0


class ApiCertificate:
    """Keeps the API's serving Secret (when the operator issues it) and the CA ConfigMap current."""

    def __init__(
        self,
        client: kube.Kube,
        ca: Callable[[], pki.KeyPair],
        cfg: config.OperatorConfig,
        trusted: Callable[[], bytes] | None = None,
    ) -> None:
        """ca: the CA that signs now; trusted: the PEM CAs clients should trust now (default: ca's
        certificate), more than one while a CA rotation overlaps them."""
        self._client = client
        self._ca = ca
        self._trusted = trusted or (lambda: ca().cert)
        self._cfg = cfg
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-certificate", daemon=True)

    def check(self) -> None:
        """Issue or renew the API's leaf if the operator owns it, then publish the CA that signs it.

        A user-supplied Secret (cfg.api_tls_issue false) is only read: its ``ca.crt`` (cert-manager fills
        it in for CA issuers) is published; without one, clients bring their own CA file.
        """
        cfg = self._cfg
        if cfg.api_tls_issue:
            names = pki.service_names(cfg.api_service, cfg.namespace)
            if pki.ensure_serving(self._client, cfg.namespace, cfg.api_tls_secret, self._ca(), names):
                log.info("api_certificate_issued", extra={"secret": cfg.api_tls_secret})
            ca_pem = self._trusted()
        else:
            try:
                supplied = self._client.get("Secret", cfg.namespace, cfg.api_tls_secret)
            except kube.NotFound:
                log.warning("api_certificate_missing", extra={"secret": cfg.api_tls_secret})
                return
            ca_pem = pki.secret_data(supplied).get("ca.crt", b"")
            if not ca_pem:
                return
        if pki.publish_ca(self._client, cfg.namespace, ca_pem):
            log.info("api_ca_published", extra={"configmap": pki.API_CA_CONFIGMAP})

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                self.check()
            except kube.KubeError as error:  # the next check tries again; the API keeps its current one
                log.warning("api_certificate_check_failed", extra={"error": str(error)})
            if self._stop.wait(CHECK_INTERVAL):
                return
