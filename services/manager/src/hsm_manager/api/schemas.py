"""Request bodies (pydantic, the wire boundary) and their decoding into validated internal values.

Values travel base64-encoded so binary data round-trips; every name and size is checked with
hsm_common.names before anything touches a device, so a bad request never causes a partial write.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import alias_generators

from hsm_common import constants, names
from hsm_manager.decide import generated

from . import errors

#: PINs are printable ASCII (what tokens accept at their keypads and what agents check).
PIN_PATTERN = r"^[\x20-\x7e]{4,255}$"
#: Longest HSMDevice name a body may carry (a Kubernetes object name).
MAX_DEVICE_NAME = 253


class Body(pydantic.BaseModel):
    """Base of request bodies: camelCase on the wire, unknown fields rejected."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Metadata(Body):
    """User metadata carried to every device with the secret."""

    description: str = pydantic.Field(default="", max_length=1024)
    labels: dict[str, str] = pydantic.Field(default_factory=dict, max_length=64)
    format: str = pydantic.Field(default="", max_length=64)
    data_type: str = pydantic.Field(default="", max_length=64)
    source: str = pydantic.Field(default="", max_length=256)


#: Most keys one request may have generated.
MAX_GENERATED_KEYS = 64


class SecretBody(Body):
    """POST and PUT: the whole secret, values base64-encoded, plus keys whose values a device generates."""

    data: dict[str, str] = pydantic.Field(default_factory=dict)
    generate: dict[str, str] = pydantic.Field(default_factory=dict, max_length=MAX_GENERATED_KEYS)
    """Key → ``[FORMAT:]N`` (decide.generated)."""
    metadata: Metadata | None = None


class PatchBody(Body):
    """PATCH: keys to add or replace (base64), remove (null) or generate."""

    data: dict[str, str | None] = pydantic.Field(default_factory=dict)
    generate: dict[str, str] = pydantic.Field(default_factory=dict, max_length=MAX_GENERATED_KEYS)
    metadata: Metadata | None = None


class ChangePinBody(Body):
    """POST /hsm/change-pin: the PIN of every device of an HSMDevice."""

    device: str | None = pydantic.Field(default=None, max_length=MAX_DEVICE_NAME)
    old_pin: str = pydantic.Field(min_length=4, max_length=255, pattern=PIN_PATTERN)
    new_pin: str = pydantic.Field(min_length=4, max_length=255, pattern=PIN_PATTERN)


class MirrorSyncBody(Body):
    """POST /hsm/mirror/sync: repair divergence between the devices of an HSMDevice."""

    device: str | None = pydantic.Field(default=None, max_length=MAX_DEVICE_NAME)
    prefix: str = pydantic.Field(default="", max_length=254)


#: Most namespaces an import's body may send paths to, each checked on its own (beyond: create on
#: hsmsecrets in every namespace is asked); most mapping rules (``kubectl hsm import`` sends one per
#: HSMSecret; the agents take as many) and known paths it may list.
MAX_IMPORT_NAMESPACES = 64
MAX_IMPORT_RULES = 10_000
MAX_KNOWN_PATHS = 10_000


class ImportLegacyBody(Body):
    """POST /hsm/import-legacy: the Go operator's secrets on the devices' tokens into ours."""

    device: str | None = pydantic.Field(default=None, max_length=MAX_DEVICE_NAME)
    """The HSMDevice whose tokens are searched; none: every HSMDevice."""
    default_namespace: str | None = pydantic.Field(default=None, max_length=253)
    """Namespace of every legacy path no mapping rule matches."""
    mapping: dict[str, str] = pydantic.Field(default_factory=dict, max_length=MAX_IMPORT_RULES)
    """Legacy path or prefix → namespace (the longest matching prefix wins)."""
    known_paths: dict[str, list[str]] = pydantic.Field(default_factory=dict, max_length=MAX_KNOWN_PATHS)
    """Legacy paths known to exist (from the cluster's HSMSecrets) → the keys they should hold."""
    apply: bool = False
    remove_legacy: bool = False
    import_incomplete: bool = False


BodyT = TypeVar("BodyT", bound=Body)


def parse_json(raw: bytes) -> Any:
    """The JSON document in raw, or MalformedBody."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise errors.MalformedBody(f"request body is not valid JSON: {err}", {"field": "body"}) from err


def parse_body(model: type[BodyT], raw: bytes) -> BodyT:
    """raw parsed as model; MalformedBody/InvalidArgument naming the first offending field."""
    document = parse_json(raw)
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as err:
        first = err.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        # pydantic's own message can quote the input; build ours from the location and the rule only.
        raise errors.InvalidArgument(f"{field}: {first['msg']}", {"field": field}) from None


def decode_value(key: str, encoded: str) -> bytes:
    """The bytes of one base64 value; InvalidArgument naming data.<key> (the value itself is never echoed)."""
    try:
        return base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError, ValueError):
        raise errors.InvalidArgument(
            f"data.{key}: value is not valid base64", {"field": f"data.{key}"}
        ) from None


def encode_value(value: bytes) -> str:
    """A value as it travels in a response."""
    return base64.b64encode(value).decode("ascii")


def validate_key(key: str) -> str:
    """key if valid, else InvalidArgument with the field it came from."""
    try:
        return names.validate_key(key)
    except names.InvalidName as err:
        raise errors.InvalidArgument(str(err), {"field": f"data.{_printable(key)}"}) from None


def parse_generate(generate: Mapping[str, str], given: Mapping[str, object]) -> dict[str, generated.Spec]:
    """Validated specs of the keys to generate; a key may not also be ``given`` in data."""
    specs = {}
    for key, text in generate.items():
        field = f"generate.{_printable(key)}"
        try:
            names.validate_key(key)
            specs[key] = generated.parse(text)
        except (names.InvalidName, generated.InvalidSpec) as err:
            raise errors.InvalidArgument(f"{field}: {err}", {"field": field}) from None
        if key in given:
            raise errors.InvalidArgument(f"{field}: the key is also given in data", {"field": field})
    return specs


def decode_secret(body: SecretBody) -> tuple[dict[str, bytes], dict[str, generated.Spec]]:
    """The given data and the specs of the generated keys, checked together (keys, sizes, at least one)."""
    data = {validate_key(key): decode_value(key, value) for key, value in body.data.items()}
    specs = parse_generate(body.generate, data)
    # The generated values' sizes are known before any is made: check the whole secret now, so a request
    # that cannot be written never draws from a device.
    validate_merged({**data, **{key: bytes(spec.size) for key, spec in specs.items()}})
    return data, specs


def decode_patch(data: Mapping[str, str | None]) -> dict[str, bytes | None]:
    """Validated, decoded patch: None removes a key."""
    return {
        validate_key(key): (None if value is None else decode_value(key, value))
        for key, value in data.items()
    }


def validate_merged(data: Mapping[str, bytes]) -> None:
    """Valid secret data (keys, at least one, at most 1 MiB in all: more is PayloadTooLarge)."""
    size = names.secret_size(data)
    if size > constants.MAX_SECRET_BYTES:
        raise errors.PayloadTooLarge(
            f"secret data is {size} bytes (keys and values); at most {constants.MAX_SECRET_BYTES} allowed",
            {"field": "data", "limitBytes": constants.MAX_SECRET_BYTES},
        )
    try:
        names.validate_data(data)
    except names.InvalidName as err:
        raise errors.InvalidArgument(str(err), {"field": "data"}) from None


def _printable(key: str) -> str:
    return key if len(key) <= 64 else key[:64] + "…"


@dataclasses.dataclass(frozen=True)
class SecretPath:
    """A validated ``<namespace>/<name>`` path."""

    path: str
    namespace: str


def parse_path(path: str) -> SecretPath:
    """path validated as an HSM path of at least two segments; InvalidArgument naming the rule."""
    try:
        namespace = names.namespace_of(path)
    except names.InvalidName as err:
        raise errors.InvalidArgument(str(err), {"field": "path"}) from None
    return SecretPath(path, namespace)


PREFIX_PATTERN = r"^[a-z0-9./-]{0,200}$"
_PREFIX = re.compile(PREFIX_PATTERN)


def parse_prefix(prefix: str) -> str:
    """A listing prefix below the namespace: path characters only, at most 200 of them."""
    if not _PREFIX.match(prefix):
        raise errors.InvalidArgument(
            "prefix may hold only lower-case letters, digits, '-', '.' and '/', at most 200 of them",
            {"field": "prefix"},
        )
    return prefix


def parse_namespace(namespace: str, field: str = "namespace") -> str:
    """A namespace (query parameter or body field) validated as a single path segment."""
    try:
        names.validate_path(namespace)
    except names.InvalidName as err:
        raise errors.InvalidArgument(str(err), {"field": field}) from None
    if "/" in namespace:
        raise errors.InvalidArgument(f"{field} must be a single segment", {"field": field})
    return namespace


def import_namespaces(body: ImportLegacyBody) -> list[str]:
    """The namespaces an import body sends paths to, validated; InvalidArgument when it names none."""
    found = []
    if body.default_namespace is not None:
        found.append(parse_namespace(body.default_namespace, "defaultNamespace"))
    for prefix, namespace in body.mapping.items():
        if not prefix.strip("/") or len(prefix) > 1024 or not prefix.isprintable():
            raise errors.InvalidArgument(
                "a mapping prefix must be a legacy path (printable, at most 1024 characters)",
                {"field": "mapping"},
            )
        found.append(parse_namespace(namespace, f"mapping.{_printable(prefix)}"))
    if not found:
        raise errors.InvalidArgument(
            "name a 'defaultNamespace', a 'mapping' or both", {"field": "defaultNamespace"}
        )
    if body.remove_legacy and not body.apply:
        raise errors.InvalidArgument(
            "removeLegacy needs apply: legacy objects are removed only once imported",
            {"field": "removeLegacy"},
        )
    for path, keys in body.known_paths.items():
        if not path.strip("/") or len(path) > 1024 or not path.isprintable():
            raise errors.InvalidArgument(
                "a known path must be a legacy path (printable, at most 1024 characters)",
                {"field": "knownPaths"},
            )
        if len(keys) > 1000 or not all(0 < len(key) <= 1024 and key.isprintable() for key in keys):
            raise errors.InvalidArgument(
                f"knownPaths.{_printable(path)}: at most 1000 printable keys", {"field": "knownPaths"}
            )
    return sorted(set(found))
