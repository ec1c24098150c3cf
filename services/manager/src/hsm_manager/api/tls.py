"""The API's TLS server context for gunicorn, loaded again when its certificate or key files change.

gunicorn asks its ``ssl_context`` hook for a context on every accepted connection; the hook answers from
``hsm_common.tlsfiles``, which loads the files again after the kubelet swapped them.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from hsm_common import tlsfiles


def gunicorn_hook(files: tlsfiles.Files) -> Callable[[Any, Any], ssl.SSLContext]:
    """gunicorn's ``ssl_context`` setting: a function (config, default factory) → context.

    The files are loaded here, in the master: every worker starts from a good pair it inherits, and then
    checks the files itself. Loaded lazily instead, a worker whose first connection came after a swap to a
    bad pair had no last good one to serve.
    """
    reloading = tlsfiles.ReloadingContext(files)

    def ssl_context(_config: Any, _default_factory: Any) -> ssl.SSLContext:
        return reloading.current()

    return ssl_context
