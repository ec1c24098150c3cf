"""The one owner of the CA rotation: observes agents and clients, lets decide.carotation pick the step.

It runs in the operator, the one active instance, in one thread: nothing else writes the CA Secret after its
creation. Each round re-reads the CA Secret (the truth of the phase), brings the clients' Secret and every
agent's Secret in line with it, observes, and takes at most one step.

How "everyone uses the new CA" is observed:
- agents: by handshakes, one fresh channel per Ready agent. Trusting → Issuing needs every agent to accept a
  client leaf of the next CA; Issuing → Stable needs every agent to serve a leaf a client trusting only the
  new CA accepts. The agents re-read their files at each handshake, so this sees what they serve right now,
  whatever the kubelet's sync delay. Not-Ready agents are not probed: their Secret is already in line, and
  they read it whenever they serve again.
- clients (this operator and the API's workers): they re-read the clients' Secret at most every
  client_reload (endpoints.SecretTLS's TTL), so the Secret written that long ago is in use. Their
  handshakes are not observable from here (the agents' gRPC servers do not report their peers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import threading
from collections.abc import Callable, Sequence

from cryptography import x509

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.decide import agentspec, carotation
from hsm_manager.gateway import castore, endpoints, pki, probe

from . import devices, metrics

log = logging.getLogger(__name__)

AGENT_TLS_SELECTOR = f"{constants.LABEL_COMPONENT}={agentspec.COMPONENT}"


@dataclasses.dataclass(frozen=True)
class Settings:
    renew_fraction: float = 1 / 3
    """A rotation begins once less than this share of the CA's lifetime is left."""
    client_reload: datetime.timedelta = datetime.timedelta(seconds=90)
    """How long after the clients' Secret changes every client uses it (SecretTLS's TTL and a margin)."""
    interval: float = 30.0
    """Seconds between rounds (0: no thread; tests call round_once)."""
    probe_timeout: float = 5.0
    """Seconds one probe handshake and call may take."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Rotation:
    """Rounds of the rotation, in one daemon thread."""

    def __init__(
        self,
        client: kube.Kube,
        namespace: str,
        holder: castore.Holder,
        directory: endpoints.Directory,
        known: devices.Devices,
        settings: Settings = Settings(),
        clock: Callable[[], datetime.datetime] = _now,
        followers: Sequence[Callable[[], None]] = (),
        api_tls_secret: str = pki.API_TLS_SECRET,
    ) -> None:
        """followers: called after each round, to bring other leaves in line with the holder's Authority
        (the API's and the metrics' serving certificates and their published CAs). api_tls_secret: the
        Secret (in namespace) of the API's serving certificate, issued by the operator or supplied, whose
        expiry is shown too."""
        self._client = client
        self._namespace = namespace
        self._holder = holder
        self._directory = directory
        self._known = known
        self._settings = settings
        self._clock = clock
        self._followers = tuple(followers)
        self._api_tls_secret = api_tls_secret
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ca-rotation", daemon=True)

    def start(self) -> None:
        if self._settings.interval > 0:
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.interval):
            try:
                self.round_once()
            except Exception:  # a failed round (API server, Conflict) is retried at the next one
                log.exception("ca_rotation_round_failed")

    def round_once(self) -> carotation.Step:
        """One round: push the current state out, observe, take at most one step; returns the step."""
        authority = castore.load(self._client, self._namespace)
        self._holder.set(authority)
        now = self._clock()
        written = castore.ensure_client(self._client, self._namespace, authority, now)
        agents_in_line = self._agent_secrets(authority)
        observed = carotation.Observed(
            agents_trust_next=agents_in_line and self._agents_trust_next(authority),
            agents_serve_signing=agents_in_line and self._agents_serve_signing(authority),
            clients_settled=written is None or now - written >= self._settings.client_reload,
        )
        signing = x509.load_pem_x509_certificate(authority.signing.cert)
        due = carotation.due(
            signing.not_valid_before_utc, signing.not_valid_after_utc, now, self._settings.renew_fraction
        )
        taken = carotation.step(authority.phase, due, observed)
        if taken is not carotation.Step.WAIT:
            authority = {
                carotation.Step.BEGIN: authority.begun,
                carotation.Step.PROMOTE: authority.promoted,
                carotation.Step.DROP: authority.dropped,
            }[taken]()
            castore.save(self._client, self._namespace, authority)
            self._holder.set(authority)
            metrics.CA_ROTATION_STEPS.labels(taken.value).inc()
            log.info("ca_rotation_step", extra={"step": taken.value, "phase": authority.phase.value})
            # Out at once, not a round later: the next facts are observed on what is written now.
            castore.ensure_client(self._client, self._namespace, authority, now)
            self._agent_secrets(authority)
        for follow in self._followers:
            follow()
        self._publish(authority)
        return taken

    def _namespaces(self) -> list[str]:
        return sorted({namespace for namespace, _ in self._known.all()})

    def _agent_secrets(self, authority: castore.Authority) -> bool:
        """Bring every agent's TLS Secret in line with authority; True when all already were."""
        in_line = True
        for namespace in self._namespaces():
            for secret in self._client.list_objects("Secret", namespace, AGENT_TLS_SELECTOR):
                agent = (secret["metadata"].get("labels") or {}).get(agentspec.INSTANCE_LABEL, "")
                if secret.get("type") != "kubernetes.io/tls" or secret["metadata"]["name"] != (
                    agentspec.tls_secret_name(agent)
                ):
                    continue
                wanted = castore.leaf_data(authority, agent, pki.secret_data(secret), client=False)
                if wanted is None:
                    continue
                in_line = False
                # Listed items carry no kind or apiVersion: the list has them, a replace needs them.
                secret |= {"apiVersion": "v1", "kind": "Secret", "data": castore.encode(wanted)}
                with contextlib.suppress(kube.Conflict, kube.NotFound):  # the reconciler got there first
                    self._client.replace(secret)
        return in_line

    def _all_served(self, trusted: bytes, presented: pki.KeyPair) -> bool:
        for namespace in self._namespaces():
            for endpoint in self._directory.endpoints(namespace):
                if not probe.served(endpoint, trusted, presented, self._settings.probe_timeout):
                    log.debug("ca_rotation_waits_for_agent", extra={"agent": endpoint.name})
                    return False
        return True

    def _agents_trust_next(self, authority: castore.Authority) -> bool:
        if authority.next is None:
            return False
        leaf = pki.issue(authority.next, pki.CLIENT_NAME, client=True, lifetime=datetime.timedelta(hours=1))
        return self._all_served(authority.bundle, leaf)

    def _agents_serve_signing(self, authority: castore.Authority) -> bool:
        if authority.previous is None:
            return False
        leaf = pki.issue(
            authority.signing, pki.CLIENT_NAME, client=True, lifetime=datetime.timedelta(hours=1)
        )
        return self._all_served(authority.signing.cert, leaf)

    def _publish(self, authority: castore.Authority) -> None:
        for phase in carotation.Phase:
            metrics.CA_ROTATION_PHASE.labels(phase.value).set(1 if phase is authority.phase else 0)
        gauge = metrics.CERTIFICATE_EXPIRY
        gauge.clear()
        for role, cert in authority.certificates():
            gauge.labels(role, self._namespace, pki.CA_SECRET).set(cert.not_valid_after_utc.timestamp())
        client_data = pki.secret_data(self._client.get("Secret", self._namespace, pki.CLIENT_SECRET))
        _expiry("client", self._namespace, pki.CLIENT_SECRET, client_data.get("tls.crt", b""))
        try:
            api = self._client.get("Secret", self._namespace, self._api_tls_secret)
        except kube.NotFound:
            pass  # a supplied Secret not made yet: no expiry to show (servingtls logs that it is missing)
        else:
            _expiry("api", self._namespace, self._api_tls_secret, pki.secret_data(api).get("tls.crt", b""))
        metrics_tls = constants.METRICS_TLS_SECRET
        with contextlib.suppress(kube.NotFound):  # a follower (servingtls) issues it; none in some tests
            served = pki.secret_data(self._client.get("Secret", self._namespace, metrics_tls))
            _expiry("metrics", self._namespace, metrics_tls, served.get("tls.crt", b""))
        for namespace in self._namespaces():
            for secret in self._client.list_objects("Secret", namespace, AGENT_TLS_SELECTOR):
                data = pki.secret_data(secret)
                _expiry("agent", namespace, secret["metadata"]["name"], data.get("tls.crt", b""))


def _expiry(role: str, namespace: str, name: str, pem: bytes) -> None:
    with contextlib.suppress(ValueError):  # an unreadable leaf shows no expiry; the reconciler re-issues it
        cert = x509.load_pem_x509_certificate(pem)
        metrics.CERTIFICATE_EXPIRY.labels(role, namespace, name).set(cert.not_valid_after_utc.timestamp())
