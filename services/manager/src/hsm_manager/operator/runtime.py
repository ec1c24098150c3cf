"""The operator's long-lived parts, wired once (the bootstrap seam) and handed to the handlers in kopf's memo.

``bootstrap`` wires the real adapters; tests hand in a fake Kubernetes client and a fake agent directory
at exactly that seam and drive the same runtime.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.gateway import castore, endpoints, watch

from . import (
    backstop,
    config,
    devices,
    informer,
    mackey,
    mirrorloop,
    pools,
    queue,
    restarts,
    rotation,
    servingtls,
    syncer,
    triggers,
)

log = logging.getLogger(__name__)

# Every Secret a pass writes names its HSMSecret, including one it merges into: that one keeps its owner's
# managed-by label (Helm refuses to upgrade a Secret whose managed-by is not Helm).
MANAGED_SELECTOR = constants.LABEL_SECRET
#: Seconds the start waits for the first list of managed Secrets.
SECRETS_LISTED_TIMEOUT = 60.0


@dataclasses.dataclass
class Runtime:
    """Everything the handlers share."""

    cfg: config.OperatorConfig
    client: kube.Kube
    directory: endpoints.Directory
    known: devices.Devices
    syncer: syncer.Syncer
    queue: queue.SyncQueue
    reconciler: pools.Reconciler
    watches: watch.Watches
    backstop: backstop.Backstop
    mirror: mirrorloop.MirrorLoop
    triggers: triggers.ClusterTriggers
    secrets: informer.Informer
    """Managed Secrets → triggers.secret."""
    hsmsecrets: informer.Informer
    """HSMSecrets → triggers.hsmsecret."""
    certificates: servingtls.ServingCertificates
    """The REST API's and the metrics endpoints' serving certificates, and the CA ConfigMaps their clients
    verify them with."""
    rotation: rotation.Rotation
    """The CA rotation's one owner: the CA Secret, the clients' Secret, the agents' trust bundles."""
    deferred: restarts.Deferred
    """Passes queued later: rollout restarts held back by their minRestartInterval."""

    def start(self) -> None:
        """Start the informers, the sync workers, the backstop and the mirror repair loop.

        The managed Secrets are listed before the first HSMSecret arrives: a pass would otherwise take an
        existing Secret for a missing one and read the token for nothing.
        """
        self.secrets.start()
        if not self.secrets.wait_synced(SECRETS_LISTED_TIMEOUT):
            log.warning("managed Secrets not listed yet; starting the sync anyway")
        self.hsmsecrets.start()
        self.queue.start()
        self.backstop.start()
        self.mirror.start()
        self.certificates.start()
        self.rotation.start()

    def stop(self) -> None:
        """Stop every thread and close the agents' channels."""
        self.rotation.stop()
        self.certificates.stop()
        self.hsmsecrets.stop()
        self.secrets.stop()
        self.mirror.stop()
        self.backstop.stop()
        self.deferred.stop()
        self.watches.stop_all()
        self.queue.stop()
        self.directory.close()

    def refresh_watches(self) -> None:
        """One watch stream per reachable agent in the namespaces of the known HSMDevices."""
        found: list[endpoints.AgentEndpoint] = []
        for namespace in sorted({ns for ns, _ in self.known.all()}):
            found.extend(self.directory.endpoints(namespace))
        self.watches.reconcile(found)

    def requeue_all(self) -> None:
        """Queue a pass of every HSMSecret whose device may have changed: tracked and unresolved ones."""
        for key in sorted(set(self.syncer.paths.tracked()) | set(self.syncer.unresolved())):
            self.queue.put(key)


def bootstrap(
    cfg: config.OperatorConfig, client: kube.Kube, directory: endpoints.Directory | None = None
) -> Runtime:
    """Create the CA, client certificate and MAC key if needed and wire the runtime (not yet started).

    directory: where the agents are; by default found from their pods, over mTLS, with cfg.call_timeout.
    """
    authority = castore.Holder(castore.load(client, cfg.namespace))
    # Trust as the rotation's phase wants it: the rotation's owner keeps it so from then on.
    castore.ensure_client(client, cfg.namespace, authority.current(), datetime.datetime.now(datetime.UTC))
    mac_key = mackey.ensure(client, cfg.namespace)
    if directory is None:
        directory = endpoints.AgentRegistry(
            client, endpoints.SecretTLS(client, cfg.namespace), timeout=cfg.call_timeout
        )
    known = devices.Devices(cfg.namespace)
    # Known before kopf resumes any HSMSecret: else a restart would mark them "device not found" until
    # their backstop, since HSMSecrets and HSMDevices resume in no particular order.
    known.learn(client.list_custom(constants.KIND_DEVICE))
    deferred = restarts.Deferred(lambda key: work.put(key))
    sync = syncer.Syncer(client, directory, known, mac_key, deferred.after)

    def run(key: queue.Key, verify: bool) -> None:
        if sync.run(key, verify) == "gone":
            checks.forget(key)  # deleted while the operator was down: no delete handler will say so

    work = queue.SyncQueue(run, cfg.workers)
    # The backstop's passes read the API server: they catch what the watches missed.
    checks = backstop.Backstop(lambda key: work.put(key, verify=True))
    agents = triggers.AgentTriggers(sync, work)
    cluster = triggers.ClusterTriggers(sync, work, checks, cfg.default_sync_interval)
    certificates = servingtls.ServingCertificates(
        client, lambda: authority.current().signing, cfg, lambda: authority.current().bundle
    )
    return Runtime(
        cfg=cfg,
        client=client,
        directory=directory,
        known=known,
        syncer=sync,
        queue=work,
        reconciler=pools.Reconciler(client, authority, cfg, directory),
        watches=watch.Watches(directory, agents.on_event, agents.on_state),
        backstop=checks,
        mirror=mirrorloop.MirrorLoop(directory, known, cfg.mirror_interval),
        triggers=cluster,
        secrets=informer.Informer(client, "Secret", cluster.secret, MANAGED_SELECTOR),
        hsmsecrets=informer.Informer(client, constants.KIND_SECRET, cluster.hsmsecret),
        certificates=certificates,
        deferred=deferred,
        rotation=rotation.Rotation(
            client,
            cfg.namespace,
            authority,
            directory,
            known,
            rotation.Settings(renew_fraction=cfg.ca_renew_fraction, interval=cfg.ca_rotation_interval),
            # The API's and the metrics' leaves and published CAs follow each step at once, not at their
            # hourly check.
            followers=(certificates.check,),
            api_tls_secret=cfg.api_tls_secret,
        ),
    )
