"""The namespaces a caller may list HSM secrets in, for the console's namespace picker.

Candidates are the namespaces that hold live secrets on the HSMs (a path's first segment is its
namespace), read from the agents' indexes (no value is read). HSMSecret resources are not a source: the
API's ServiceAccount may not read them, and granting it cluster-wide ``list hsmsecrets`` for a picker would
widen what a compromised API pod could see. Namespaces are not listed either (that needs cluster-wide
``list namespaces``); a namespace without secrets yet is typed in the console, and the API decides.

Each candidate is kept only when a SubjectAccessReview allows the caller ``list hsmsecrets`` there, as
listing its secrets would; a caller allowed in every namespace costs one review. At most
``MAX_REVIEWED`` namespaces are reviewed one by one per request (the reviews are cached like every
other), so a caller cannot make one request cost an unbounded number of reviews.
"""

from __future__ import annotations

import dataclasses

from hsm_manager.mirroring import errors as mirror_errors
from hsm_manager.mirroring import reads, service

from . import auth, permissions

#: Most namespaces reviewed one by one in a request; the rest is left out and the answer says so.
MAX_REVIEWED = 64


@dataclasses.dataclass(frozen=True)
class Holding:
    """The namespaces that hold live secrets on the HSMs, sorted."""

    namespaces: list[str]
    complete: bool
    """False when a device did not answer: a namespace whose secrets only it holds may be missing."""


@dataclasses.dataclass(frozen=True)
class Visible:
    """What a caller is told: the namespaces it may list, of those holding secrets."""

    namespaces: list[str]
    complete: bool
    """As Holding.complete."""
    truncated: bool
    """More namespaces hold secrets than were reviewed (MAX_REVIEWED): the others were not considered."""


def holding(mirror: service.Mirror) -> Holding:
    """The namespaces of the live secrets on every HSMDevice's agents."""
    found: set[str] = set()
    devices = mirror.devices()
    # A device whose agents are all down has no group to ask: its namespaces may be missing.
    complete = set(mirror.directory.deployed(mirror.namespace)) <= set(devices)
    for device in devices:
        try:
            listed = reads.list_live(mirror.group(device), "")
        except mirror_errors.MirrorError:
            complete = False
            continue
        complete = complete and not listed.unavailable
        found.update(path.partition("/")[0] for path in listed.entries)
    return Holding(sorted(found), complete)


def visible(guard: auth.Guard, user: auth.User, held: Holding) -> Visible:
    """The namespaces of held that user may list HSM secrets in (at most MAX_REVIEWED reviewed)."""
    if guard.allows(user, auth.Access("list", permissions.SECRETS, "")):
        # Allowed in every namespace: one review answers for all of them.
        return Visible(held.namespaces, held.complete, truncated=False)
    reviewed = held.namespaces[:MAX_REVIEWED]
    allowed = [ns for ns in reviewed if guard.allows(user, auth.Access("list", permissions.SECRETS, ns))]
    return Visible(allowed, held.complete, truncated=len(held.namespaces) > MAX_REVIEWED)
