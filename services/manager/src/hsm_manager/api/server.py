"""Serving the API under gunicorn: worker settings, multiprocess metrics on their own port, worker cleanup.

``python -m hsm_manager.api.server --app module:factory`` serves any app factory (tests hand in their
own wiring this way); ``hsm-manager api`` serves ``bootstrap:production_app``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app import base  # type: ignore[import-untyped]

PRODUCTION_APP = "hsm_manager.api.bootstrap:production_app"


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """How gunicorn serves the API."""

    app: str = PRODUCTION_APP
    """module:callable returning the WSGI app, called once in each worker."""
    listen: str = "0.0.0.0:8090"
    workers: int = 2
    threads: int = 4
    """Threads per worker: an agent call that waits must not stall the worker's other requests."""
    metrics_listen: str = ""
    """host:port of the Prometheus endpoint (all workers aggregated); empty disables it."""
    pythonpath: str = ""
    """Extra import path for app (tests)."""
    timeout: int = 30


class _Application(base.BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: ServerSettings) -> None:
        self._settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self._settings
        config: dict[str, Any] = {
            "bind": [s.listen],
            "workers": s.workers,
            "threads": s.threads,
            "worker_class": "gthread",
            "timeout": s.timeout,
            "graceful_timeout": 10,
            "accesslog": None,
            "loglevel": "warning",
            "when_ready": _when_ready(s.metrics_listen),
            "child_exit": _child_exit,
            "post_worker_init": _post_worker_init,
        }
        for key, value in config.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        module_name, _, attribute = self._settings.app.partition(":")
        factory: Callable[[], Any] = getattr(importlib.import_module(module_name), attribute)
        return factory()


def _when_ready(metrics_listen: str) -> Callable[[Any], None]:
    def hook(server: Any) -> None:
        if not metrics_listen:
            return
        import prometheus_client

        from . import metrics

        host, _, port = metrics_listen.rpartition(":")
        prometheus_client.start_http_server(int(port), host or "0.0.0.0", registry=metrics.registry())  # noqa: S104

    return hook


def _child_exit(server: Any, worker: Any) -> None:
    from . import metrics

    metrics.mark_dead(worker.pid)


def _post_worker_init(worker: Any) -> None:
    from hsm_common import logs

    logs.setup(os.environ.get("HSM_MANAGER_LOG_LEVEL", "info"))


def run(settings: ServerSettings) -> int:
    """Serve until SIGTERM; returns the exit code."""
    # prometheus_client chooses its multiprocess storage at first import: set the directory first.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hsm-api-metrics-")
    # A pod names a directory on an emptyDir that may not exist yet.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    os.environ.setdefault(
        "HSM_MANAGER_MIRROR_LOCK", os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "mirror.lock")
    )
    # Import the app's modules once in the master so forked workers start warm (the kubernetes client
    # alone takes seconds to import, more where no bytecode cache is written).
    if settings.pythonpath:
        sys.path.insert(0, settings.pythonpath)
    importlib.import_module(settings.app.partition(":")[0])
    _Application(settings).run()
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Serve the production app with the ``hsm-manager api`` flags (exported for the workers' bootstrap)."""
    exported = {
        "HSM_MANAGER_DEVICE_NAMESPACE": args.device_namespace,
        "HSM_MANAGER_KUBECONFIG": args.kubeconfig,
        "HSM_MANAGER_MIRROR_INTERVAL": str(args.mirror_interval),
        "HSM_MANAGER_STATIC_AGENTS": args.static_agents,
        "HSM_MANAGER_LOG_LEVEL": args.log_level,
    }
    os.environ.update({name: value for name, value in exported.items() if value})
    return run(
        ServerSettings(
            listen=args.listen, workers=args.workers, threads=args.threads, metrics_listen=args.metrics_listen
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Command line for serving an app factory (tests, benchmarks)."""
    parser = argparse.ArgumentParser(prog="hsm_manager.api.server")
    parser.add_argument("--app", default=PRODUCTION_APP)
    parser.add_argument("--listen", default="127.0.0.1:8090")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--metrics-listen", default="")
    parser.add_argument("--pythonpath", default="")
    args = parser.parse_args(argv)
    return run(
        ServerSettings(
            app=args.app,
            listen=args.listen,
            workers=args.workers,
            threads=args.threads,
            metrics_listen=args.metrics_listen,
            pythonpath=args.pythonpath,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
