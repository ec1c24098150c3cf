"""What a Secret holds for an HSM secret: the keys spec.data selects, then spec.target.template's. Pure."""

from __future__ import annotations

import hashlib
import json

from hsm_common import models

from . import templates


class KeyMissing(Exception):
    """spec.data names a key the HSM secret does not hold; the message names the key only."""


def select(spec: models.HSMSecretSpec, data: dict[str, bytes]) -> dict[str, bytes]:
    """The HSM secret's keys under their Secret names: all as they are, or those spec.data lists."""
    if spec.data is None:
        return dict(data)
    missing = sorted({item.key for item in spec.data if item.key not in data})
    if missing:
        raise KeyMissing(f"spec.data names {', '.join(missing)}, which the HSM secret does not hold")
    return {item.secret_key: data[item.key] for item in spec.data}


def secret_data(spec: models.HSMSecretSpec, data: dict[str, bytes]) -> dict[str, bytes]:
    """The Secret's data for the HSM secret's data.

    Raises KeyMissing or templates.TemplateFailed; neither message holds a value.
    """
    selected = select(spec, data)
    template = spec.target.template
    if template is None:
        return selected
    rendered = templates.render(template.data, selected)
    if template.merge_policy == models.TemplateMergePolicy.MERGE:
        return {**selected, **rendered}
    return rendered


def digest(spec: models.HSMSecretSpec) -> str:
    """A digest of everything in spec that shapes the Secret beyond the HSM's data and the type; "" when
    the Secret is a plain copy, so that plain Secrets carry what they carried before targets existed."""
    if not spec.shaped():
        return ""
    shaping = {
        "data": None if spec.data is None else [item.to_wire() for item in spec.data],
        "target": spec.target.model_copy(update={"type": None}).to_wire(),
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()
