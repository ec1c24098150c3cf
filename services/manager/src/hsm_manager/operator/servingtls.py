"""The serving certificates the operator issues from the manager's CA, and the CAs it publishes for them:
the REST API's (unless the user supplies it) and the one every component's /metrics serves.

One daemon thread checks at start, every CHECK_INTERVAL, and at once when a Secret the operator issues
is deleted or changed: deleting it is how a user renews the certificate now (a key that may have leaked),
and a Secret that no longer holds a good leaf is repaired before a new pod needs it (the API pod cannot
start while its Secret volume is missing; the others mount theirs optionally and serve a self-signed
certificate meanwhile). The pods load a renewed certificate by themselves (api.tls, hsm_metricsauth), so
renewing is only replacing the Secret's data. The CA rotation calls check after each round, so both leaves
are issued again by the new CA as soon as it signs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.gateway import pki

from . import config, informer

log = logging.getLogger(__name__)

#: Seconds between checks: leaves live 90 days and are renewed with 30 left, so hourly is plenty.
CHECK_INTERVAL = 3600.0


class ServingCertificates:
    """Keeps the API's serving Secret (when the operator issues it), the metrics Secret and the CA
    ConfigMaps of both current."""

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
        self._thread = threading.Thread(target=self._run, name="serving-certificates", daemon=True)
        # A supplied API Secret is the user's (cert-manager renews it): only the issued ones are watched.
        self._watched = {constants.METRICS_TLS_SECRET, *([cfg.api_tls_secret] if cfg.api_tls_issue else [])}
        self._watch = informer.Informer(client, "Secret", self.noticed, pki.SELECTOR)

    def check(self) -> None:
        """Issue or renew the leaves the operator owns, then publish the CAs that sign them.

        A user-supplied API Secret (cfg.api_tls_issue false) is only read: its ``ca.crt`` (cert-manager
        fills it in for CA issuers) is published; without one, API clients bring their own CA file.
        """
        with self._lock:
            self._check_api()
            self._check_metrics()

    def noticed(self, kind: str, obj: kube.Obj) -> None:
        """An event of one of the operator's Secrets: one issued here (deleted, edited) is checked now."""
        meta = obj["metadata"]
        if meta.get("namespace") == self._cfg.namespace and meta.get("name") in self._watched:
            self._due.set()

    def _check_api(self) -> None:
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

    def _check_metrics(self) -> None:
        namespace = self._cfg.namespace
        names = pki.metrics_names(namespace)
        if pki.ensure_serving(self._client, namespace, constants.METRICS_TLS_SECRET, self._ca(), names):
            log.info("metrics_certificate_issued", extra={"secret": constants.METRICS_TLS_SECRET})
        if pki.publish_ca(self._client, namespace, self._trusted(), pki.METRICS_CA_CONFIGMAP):
            log.info("metrics_ca_published", extra={"configmap": pki.METRICS_CA_CONFIGMAP})

    def start(self) -> None:
        self._thread.start()
        self._watch.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._due.set()
        self._watch.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.clear()
            try:
                self.check()
            except kube.KubeError as error:  # the next check tries again; the pods keep their current ones
                log.warning("serving_certificates_check_failed", extra={"error": str(error)})
            self._due.wait(CHECK_INTERVAL)
