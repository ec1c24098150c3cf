"""The device plugins of one node for the operator e2e tests, run inside the node's namespaces.

The operator tests stand in for discovery (an inert DaemonSet image, reports written by the test); this
runs discovery's real plugin code (``hsm_discovery.plugin``) on the node for them, offering what the test's
latest report (a JSON file it rewrites) lists. The kubelet registers it, lists the resources and allocates
devices exactly as with discovery's pods.

Usage: python node_plugin.py STATE PLUGIN_DIR NODE_ROOT MOUNTS ENV; runs until SIGTERM.
"""

from __future__ import annotations

import pathlib
import signal
import sys
import threading

from hsm_common import report
from hsm_discovery.plugin import config, supervisor


def main(state: str, plugin_dir: str, node_root: str, mounts: str, env: str) -> int:
    settings = config.Config(
        plugin_dir=pathlib.Path(plugin_dir),
        node_root=node_root,
        mounts=config.parse_mounts(mounts),
        env=config.parse_env(env),
    )
    plugins = supervisor.Supervisor(settings, on_change=lambda: None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    plugins.start()
    path, seen = pathlib.Path(state), ""
    while not stop.wait(0.2):
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        if text != seen:
            seen = text
            plugins.offer(report.DeviceReport.model_validate_json(text))
    plugins.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
