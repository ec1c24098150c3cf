"""Serving the API under gunicorn: worker settings, multiprocess metrics on their own port, worker cleanup.

The metrics endpoint (``hsm_metricsauth``: HTTPS, callers allowed to get /metrics) runs on a thread of the
gunicorn master, which reads every worker's values from PROMETHEUS_MULTIPROC_DIR.

``hsm-manager api`` serves the production app (``bootstrap.production_app``) with its ApiConfig;
``python -m hsm_manager.api.server --app module:factory`` serves any argument-less app factory, with the
same serving flags (tests hand in their own wiring this way).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app import base  # type: ignore[import-untyped]

from hsm_common import logs, tlsfiles

from . import config, tls

log = logging.getLogger(__name__)

AppFactory = Callable[[], Any]
"""Builds the WSGI app; called once in each worker, after the fork."""

#: Seconds a worker may spend on one request before gunicorn replaces it (above the agents' deadlines).
WORKER_TIMEOUT = 30


class _Application(base.BaseApplication):  # type: ignore[misc]
    def __init__(self, cfg: config.ApiConfig, factory: AppFactory) -> None:
        self._cfg = cfg
        self._factory = factory
        super().__init__()

    def load_config(self) -> None:
        cfg = self._cfg
        settings: dict[str, Any] = {
            "bind": [cfg.listen],
            "workers": cfg.workers,
            "threads": cfg.threads,
            "worker_class": "gthread",
            "timeout": WORKER_TIMEOUT,
            "graceful_timeout": 10,
            "accesslog": None,
            "loglevel": "warning",
            # No gunicornc control socket: nothing uses it, and it would be made in $HOME, which is
            # read-only in the pod (every start logged "Control server error").
            "control_socket_disable": True,
            "child_exit": _child_exit,
            "post_worker_init": functools.partial(_post_worker_init, cfg.log_level),
        }
        if not cfg.insecure_plain_http:
            # certfile and keyfile make gunicorn wrap connections (and check the files exist at start);
            # the hook hands out the context, loaded again when the files change.
            files = tlsfiles.Files(cfg.tls_cert_file, cfg.tls_key_file)
            settings.update(certfile=files.cert, keyfile=files.key, ssl_context=tls.gunicorn_hook(files))
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._factory()


def _child_exit(server: Any, worker: Any) -> None:
    from . import metrics

    metrics.mark_dead(worker.pid)


def _post_worker_init(log_level: str, worker: Any) -> None:
    logs.setup(log_level)


def _prepare_metrics() -> None:
    # prometheus_client chooses its multiprocess storage at first import: set the directory first.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hsm-api-metrics-")
    # A pod names a directory on an emptyDir that may not exist yet.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def run(cfg: config.ApiConfig, factory: AppFactory) -> int:
    """Serve factory's app as cfg says until SIGTERM; returns the exit code."""
    if cfg.metrics_listen:
        # Imported here: prometheus_client must not load before _prepare_metrics chose the directory.
        from hsm_metricsauth import server as metricsauth

        from . import metrics

        settings = metricsauth.Settings(cfg.metrics_listen, cfg.metrics_cert_dir, cfg.kubeconfig)
        try:
            metricsauth.build(settings, metrics.registry(), metrics.CERTIFICATE_EXPIRY).start()
        except metricsauth.SetupError as error:
            log.error("the API cannot serve its metrics", extra={"reason": str(error)})
            return 2
    _Application(cfg, factory).run()
    return 0


def missing_certificate(cfg: config.ApiConfig) -> str | None:
    """Why HTTPS cannot start (a file of the serving certificate is not there), or None."""
    if cfg.insecure_plain_http:
        return None
    for what, path in (("certificate", cfg.tls_cert_file), ("key", cfg.tls_key_file)):
        if not os.path.isfile(path):
            return (
                f"no serving {what} at {path}: mount the Secret hsm-api-tls (the operator issues it) at "
                f"{config.TLS_DIR}, or name your files with --tls-cert-file and --tls-key-file"
            )
    return None


def serve(cfg: config.ApiConfig) -> int:
    """Serve the production app with cfg (``hsm-manager api``)."""
    problem = missing_certificate(cfg)
    if problem:
        log.error("the API cannot serve HTTPS", extra={"reason": problem})
        return 2
    _prepare_metrics()
    # Imported after the metrics directory is set, and once in the master so forked workers start warm
    # (the kubernetes client alone takes seconds to import, more where no bytecode cache is written).
    from . import bootstrap

    return run(cfg, functools.partial(bootstrap.production_app, cfg))


def main(argv: list[str] | None = None) -> int:
    """Command line for serving an app factory (tests, benchmarks)."""
    parser = argparse.ArgumentParser(prog="hsm_manager.api.server")
    parser.add_argument("--app", required=True, help="module:factory returning the WSGI app")
    parser.add_argument("--pythonpath", default="", help="extra import path for --app")
    config.add_flags(parser)
    args = parser.parse_args(argv)
    cfg = config.from_args(args)
    logs.setup(cfg.log_level)
    _prepare_metrics()
    if args.pythonpath:
        sys.path.insert(0, args.pythonpath)
    module_name, _, attribute = args.app.partition(":")
    factory: AppFactory = getattr(importlib.import_module(module_name), attribute)
    return run(cfg, factory)


if __name__ == "__main__":
    sys.exit(main())
