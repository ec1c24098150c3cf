"""Secret keys rendered from an HSM secret's keys with sandboxed Jinja2 templates. Pure.

Templates are written by whoever may create HSMSecrets and run inside the operator, next to every other
namespace's secrets. So the environment has no loader (no files), no globals (no range or lipsum), a short
list of filters, StrictUndefined (a typo is an error, not an empty string), and bounds on what one
expression may allocate and on how long a render may run. An error names the key, the line and what went
wrong, and never a secret value: messages Jinja builds from values are replaced by our own.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import sys
import time
import types
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import sandbox

from hsm_common import constants

#: Longest one template may render; a template that loops over a long value for longer is refused.
RENDER_SECONDS = 1.0
#: Largest string, bytes or number (in bits) one operation may build: a Secret holds at most 1 MiB.
MAX_SIZE = constants.MAX_SECRET_BYTES

#: str and bytes methods that pad or repeat their argument: each could build gigabytes in one call.
_AMPLIFYING = frozenset(
    (
        "center",
        "ljust",
        "rjust",
        "zfill",
        "expandtabs",
        "format",
        "format_map",
        "replace",
        "join",
        "translate",
    )
)


class TemplateFailed(Exception):
    """A template could not be rendered; the message names the key and the reason, never a value."""


class _Refusal(Exception):
    """Raised inside a render with a message that holds no value (a filter's, a bound's)."""


class _UndefinedName(Exception):
    """A template used something undefined (unsafe: the sandbox refused it); Jinja's message is dropped."""

    def __init__(self, name: str | None, unsafe: bool, message: str = "") -> None:
        super().__init__(name)
        self.name = name
        self.unsafe = unsafe


class _Undefined(jinja2.StrictUndefined):
    """StrictUndefined that raises with its name apart from Jinja's message, which may quote a value."""

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = jinja2.utils.missing,
        name: str | None = None,
        exc: type[jinja2.TemplateRuntimeError] = jinja2.UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        # Jinja raises self._undefined_exception(message) on any use; this raises _UndefinedName instead.
        self._undefined_exception = functools.partial(  # type: ignore[assignment]
            _UndefinedName, name, exc is jinja2.exceptions.SecurityError
        )


class _Keys:
    """The selected keys as a template sees them: ``values.user`` or ``values['tls.crt']``.

    No public methods, so a key named ``items`` or ``get`` is a key, not a method.
    """

    def __init__(self, data: Mapping[str, bytes], text: bool) -> None:
        self._data = data
        self._text = text

    def __getitem__(self, key: str) -> str | bytes:
        value = self._data[key]
        if not self._text:
            return value
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise _Refusal(f"values.{key} is not UTF-8 text; use bytes.{key} (with b64encode)") from None

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._data))

    def __len__(self) -> int:
        return len(self._data)


def _octets(value: object, filter_name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise _Refusal(f"{filter_name} takes text or bytes, not {type(value).__name__}")


def b64encode(value: str | bytes) -> str:
    """Base64 of the value (text is encoded as UTF-8 first)."""
    return base64.b64encode(_octets(value, "b64encode")).decode()


def b64decode(value: str | bytes) -> str:
    """The text a base64 string encodes."""
    try:
        decoded = base64.b64decode(_octets(value, "b64decode"), validate=True)
    except binascii.Error:
        raise _Refusal("b64decode: the value is not valid base64") from None
    try:
        return decoded.decode()
    except UnicodeDecodeError:
        raise _Refusal("b64decode: the decoded value is not UTF-8 text") from None


def tojson(value: object) -> str:
    """The value as JSON (without the HTML escaping of Jinja's own tojson)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        raise _Refusal(f"tojson cannot write a {type(value).__name__}; b64encode bytes first") from None


def dockerconfigjson(registry: str, username: str, password: str, email: str | None = None) -> str:
    """The ``.dockerconfigjson`` of one registry.

    Used as ``values.registry | dockerconfigjson(values.user, values.password)``.
    """
    for name, given in (("registry", registry), ("username", username), ("password", password)):
        if not isinstance(given, str) or not given:
            raise _Refusal(f"dockerconfigjson: {name} must be non-empty text")
    entry = {
        "username": username,
        "password": password,
        "auth": base64.b64encode(f"{username}:{password}".encode()).decode(),
    }
    if email:
        entry["email"] = email
    return json.dumps({"auths": {registry: entry}})


def _join(value: Iterable[object], separator: str = "") -> str:
    items = [str(item) for item in value]
    _bound(sum(map(len, items)) + len(separator) * max(len(items) - 1, 0))
    return separator.join(items)


def _replace(value: str, old: str, new: str) -> str:
    text, old, new = str(value), str(old), str(new)
    _bound(len(text) + (text.count(old) if old else len(text) + 1) * len(new))
    return text.replace(old, new)


def _urlencode(value: str | bytes) -> str:
    """Percent-encoding of every character a URL component must not hold raw (a password in a URL)."""
    return urllib.parse.quote(_octets(value, "urlencode"), safe="")


def _bound(size: int) -> None:
    if size > MAX_SIZE:
        raise _Refusal(f"the result would be larger than {MAX_SIZE} bytes")


_FILTERS = {
    "b64encode": b64encode,
    "b64decode": b64decode,
    "tojson": tojson,
    "dockerconfigjson": dockerconfigjson,
    "join": _join,
    "replace": _replace,
    "urlencode": _urlencode,
}
#: Jinja's own filters kept: none of them builds more than its input.
_JINJA_FILTERS = ("default", "d", "lower", "upper", "trim", "length", "first", "last", "string", "int")


class _Sandbox(sandbox.SandboxedEnvironment):
    """Jinja's sandbox, with the operators and methods that could build huge values bounded or refused."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, (str, bytes)):
            raise _Refusal("the % operator does not format text here; join text with ~")
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, (str, bytes, list, tuple)) and isinstance(count, int):
                    _bound(len(sized) * count)
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            _bound(left.bit_length() * right // 8)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja hands str.format out before it asks is_safe_attribute; a width spec can pad to gigabytes.
        if super().wrap_str_format(value) is None:
            return None
        return _refuse_format

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, (str, bytes)) and attr in _AMPLIFYING:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))


def _refuse_format(*args: object, **kwargs: object) -> str:
    raise _Refusal("str.format is not available here; join text with ~")


def _environment() -> _Sandbox:
    env = _Sandbox(undefined=_Undefined, autoescape=False, finalize=_finalize, keep_trailing_newline=True)
    env.globals.clear()
    kept = {name: env.filters[name] for name in _JINJA_FILTERS}
    env.filters.clear()
    env.filters.update(kept)
    env.filters.update(_FILTERS)
    return env


def _finalize(value: object) -> object:
    if isinstance(value, bytes):
        raise _Refusal("bytes cannot be written as text: use b64encode, or select the key with spec.data")
    return value


_ENV = _environment()


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


class _Deadline:
    """Refuses to go on once RENDER_SECONDS have passed, checked at every Python line the render runs.

    A sandbox stops escapes, not loops: a template may loop over every character of a long value twice
    over, and a render holds up one of the operator's few sync workers.
    """

    def __init__(self) -> None:
        self._until = time.monotonic() + RENDER_SECONDS

    def __call__(self, frame: types.FrameType, event: str, arg: object) -> _Deadline:
        if time.monotonic() > self._until:
            raise _Refusal(f"rendering took longer than {RENDER_SECONDS:g} s")
        return self

    def __enter__(self) -> None:
        self._previous = sys.gettrace()
        sys.settrace(self)

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._previous)


def _line(tb: types.TracebackType | None) -> int | None:
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def _reason(exc: BaseException, source: str) -> str:
    """What went wrong, in words that cannot hold a value of the secret."""
    if isinstance(exc, _Refusal):
        return str(exc)
    if isinstance(exc, _UndefinedName):
        # Jinja names what is undefined; shown only when the template itself spells it (a value used as
        # a name, values[values.password], would otherwise be quoted).
        named = f" {exc.name!r}" if exc.name and exc.name in source else ""
        if exc.unsafe:
            return f"the sandbox refused access to{named or ' an attribute'}"
        return f"undefined name{named}" if named else "an undefined name"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return "the sandbox refused a call"
    if isinstance(exc, RecursionError):
        return "a macro recursed too deep"
    return f"{type(exc).__name__} (its message is not shown: it could hold a value)"


def render(templates: Mapping[str, str], data: Mapping[str, bytes]) -> dict[str, bytes]:
    """Each template rendered over data, UTF-8 encoded, by Secret key.

    Raises TemplateFailed for the first template that does not compile or render.
    """
    context = {"values": _Keys(data, text=True), "bytes": _Keys(data, text=False)}
    rendered: dict[str, bytes] = {}
    for key in sorted(templates):
        source = templates[key]
        try:
            template = _compiled(source)
        except jinja2.TemplateSyntaxError as exc:
            # Compiling sees only the template's text, never a value.
            raise TemplateFailed(f"template {key}: line {exc.lineno}: {exc.message}") from None
        try:
            with _Deadline():
                text = template.render(context)
        except Exception as exc:  # any failure of the user's code is reported, never raised on
            line = _line(exc.__traceback__)
            where = f"template {key}" + (f": line {line}" if line else "")
            raise TemplateFailed(f"{where}: {_reason(exc, source)}") from None
        rendered[key] = text.encode()
        _check_total(rendered)
    return rendered


def _check_total(rendered: Mapping[str, bytes]) -> None:
    size = sum(len(k) + len(v) for k, v in rendered.items())
    if size > MAX_SIZE:
        raise TemplateFailed(f"the rendered keys are {size} bytes, over the Secret limit of {MAX_SIZE}")
