"""The REST API's serving certificate: issued and renewed from the manager's CA, or supplied by the user;
either way the CA that signs it is published for API clients.

One daemon thread checks at start, every CHECK_INTERVAL, and at once when the Secret the operator issues
is deleted or changed: deleting it is how a user renews the certificate now (a key that may have leaked),
and a Secret that no longer holds a good leaf is repaired before a new API pod needs it (a pod cannot start
while its Secret volume is missing). The API pod mounts the Secret and loads a renewed certificate by itself
(api.tls), so renewing is only replacing the Secret's data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hsm_manager import kube
from hsm_manager.gateway import pki

from . import config, informer

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
        # This thread and the CA rotation's (which calls check after each round) must not both create a
        # missing Secret: one check at a time.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._due = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-certificate", daemon=True)
        # A supplied Secret is the user's (cert-manager renews it), so only the issued one is watched.
        self._watch = (
            informer.Informer(client, "Secret", self.noticed, pki.SELECTOR) if cfg.api_tls_issue else None
        )

    def check(self) -> None:
        """Issue or renew the API's leaf if the operator owns it, then publish the CA that signs it.

        A user-supplied Secret (cfg.api_tls_issue false) is only read: its ``ca.crt`` (cert-manager fills
        it in for CA issuers) is published; without one, clients bring their own CA file.
        """
        with self._lock:
            self._check()

    def noticed(self, kind: str, obj: kube.Obj) -> None:
        """An event of one of the operator's Secrets: the API's (deleted, edited, or ours) is checked now."""
        meta = obj["metadata"]
        if (meta.get("namespace"), meta.get("name")) == (self._cfg.namespace, self._cfg.api_tls_secret):
            self._due.set()

    def _check(self) -> None:
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
        if self._watch is not None:
            self._watch.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._due.set()
        if self._watch is not None:
            self._watch.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.clear()
            try:
                self.check()
            except kube.KubeError as error:  # the next check tries again; the API keeps its current one
                log.warning("api_certificate_check_failed", extra={"error": str(error)})
            self._due.wait(CHECK_INTERVAL)
