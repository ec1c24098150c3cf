"""What a pass asks of the agents: each one's state of a path, and the HSM copy read and shaped for the
Secret."""

from __future__ import annotations

import dataclasses

from hsm_common import checksum, models
from hsm_manager.decide import model, shape, sources, sync
from hsm_manager.gateway import endpoints
from hsm_manager.gateway import errors as agent_errors

from . import secretmanifest


class ReadFailed(Exception):
    """The agent chosen to read from failed or returned data that does not match its checksum."""


def observe(directory: endpoints.Directory, endpoint: endpoints.AgentEndpoint, path: str) -> sync.Observation:
    """What endpoint holds of path, or why it could not say."""
    try:
        return sync.Observation(endpoint.name, directory.client(endpoint).state(path))
    except agent_errors.AgentCallError as error:
        return sync.Observation(endpoint.name, error=error.summary)


@dataclasses.dataclass(frozen=True)
class Copy:
    """One agent's copy of a path, as read and checked against its checksum."""

    data: dict[str, bytes]
    version: int
    checksum: str


def observe_by_reading(
    directory: endpoints.Directory, endpoint: endpoints.AgentEndpoint, path: str
) -> tuple[sync.Observation, Copy | None]:
    """What endpoint holds of path, learnt by reading it: for a pass that will need the value anyway, one
    call instead of two."""
    try:
        copy = _checked(directory.client(endpoint).read(path))
    except agent_errors.AgentCallError:
        copy = None
    if copy is None:
        # Absent, deleted, unreadable or not matching its checksum: observed as observe would, so the pass
        # decides, and its own read fails, exactly as without this read.
        return observe(directory, endpoint, path), None
    state = model.PathState(version=copy.version, checksum=copy.checksum)
    return sync.Observation(endpoint.name, state), copy


def made(
    directory: endpoints.Directory,
    spec: models.HSMSecretSpec,
    source: endpoints.AgentEndpoint,
    path: str,
    copy: Copy | None = None,
) -> secretmanifest.Written:
    """The HSM copy on source (copy, when the pass read it already), shaped by spec; ReadFailed,
    shape.KeyMissing or TemplateFailed."""
    copy = copy or _read(directory, source, path)
    return secretmanifest.Written(shape.secret_data(spec, copy.data), copy.version, copy.checksum)


def made_from(
    directory: endpoints.Directory,
    spec: models.HSMSecretSpec,
    found: list[endpoints.AgentEndpoint],
    picked: list[sources.Picked],
) -> secretmanifest.Written:
    """Every source's newest copy read and merged in order, shaped by spec; as made."""
    read = []
    for chosen in picked:
        copy = _read(directory, next(e for e in found if e.name == chosen.agent), chosen.path)
        # What was read binds the MAC, even if a source moved since it was observed.
        read.append((chosen, copy.data, model.PathState(version=copy.version, checksum=copy.checksum)))
    merged, conflicts = sources.merge([(chosen.path, data) for chosen, data, _ in read])
    now = [dataclasses.replace(chosen, state=state) for chosen, _, state in read]
    whole = sources.combined(now)
    return secretmanifest.Written(
        shape.secret_data(spec, merged),
        whole.version,
        whole.checksum,
        tuple(sources.versions(now)),
        tuple(conflicts),
    )


def _read(directory: endpoints.Directory, endpoint: endpoints.AgentEndpoint, path: str) -> Copy:
    try:
        secret = directory.client(endpoint).read(path)
    except agent_errors.AgentCallError as error:
        raise ReadFailed(f"reading from {endpoint.name} failed: {error.summary}") from None
    copy = _checked(secret)
    if copy is None:
        raise ReadFailed(f"data read from {endpoint.name} does not match its checksum")
    return copy


def _checked(secret: model.Secret) -> Copy | None:
    """The copy read, None when its data does not match the checksum the agent gave with it."""
    data = dict(secret.data)
    digest = checksum.checksum(data)
    if secret.checksum and digest != secret.checksum:
        return None
    return Copy(data, secret.version, digest)


SOURCES = "dataFrom"
"""The name the merged sources decide under; never an agent's, never read from."""


@dataclasses.dataclass(frozen=True)
class Heard:
    """What the agents of the device said of the HSMSecret's paths."""

    found: list[endpoints.AgentEndpoint]
    picked: list[sources.Picked] | sync.Decision | None
    """dataFrom's newest copy of each source, or the decision that none can be had; None for hsmPath."""
    observations: list[sync.Observation]
    read: Copy | None = None
    """The one agent's copy of hsmPath, when the pass read it while asking (ask's will_write)."""


def ask(
    directory: endpoints.Directory,
    spec: models.HSMSecretSpec,
    paths: list[str],
    device: tuple[str, str],
    will_write: bool = False,
) -> Heard:
    """Each agent of device (namespace, name)'s state of paths: of the one hsmPath, or of every dataFrom
    source as one copy.

    will_write: the pass has no Secret to compare with, so any copy found is read; a device with one agent
    is then asked by reading (a cold start of thousands of HSMSecrets makes half the agent calls).
    """
    device_ns, device_name = device
    found = directory.endpoints(device_ns, device_name)
    picked: list[sources.Picked] | sync.Decision | None = None
    if spec.data_from is None and will_write and len(found) == 1:
        observation, copy = observe_by_reading(directory, found[0], paths[0])
        return Heard(found, None, [observation], copy)
    if spec.data_from is None:
        observations = [observe(directory, e, paths[0]) for e in found]
    else:
        picked = sources.pick([(p, [observe(directory, e, p) for e in found]) for p in paths])
        # The sources decide as one copy; the write reads each from the agent pick chose.
        observations = (
            [sync.Observation(SOURCES, sources.combined(picked))] if isinstance(picked, list) else []
        )
    return Heard(found, picked, observations)
