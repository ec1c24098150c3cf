"""``python -m devcluster.podrunner``: run the pod runner until SIGTERM."""

import argparse
import logging
import pathlib
import shlex
import shutil
import signal
import sys
import types

from devcluster import cluster, kubeapi, pki

from . import runner


def entrypoint(image: str) -> tuple[str, ...]:
    """The console script an image's entrypoint stands for: next to this Python first, then on PATH."""
    local = pathlib.Path(sys.executable).parent / image
    if local.exists():
        return (str(local),)
    found = shutil.which(image)
    return (found or image,)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="devcluster.podrunner")
    parser.add_argument("--kubeconfig", type=pathlib.Path, required=True)
    parser.add_argument("--run-dir", type=pathlib.Path, required=True, help="the cluster's run directory")
    parser.add_argument("--image", action="append", default=[], help="image name whose console script to run")
    parser.add_argument("--command", action="append", default=[], help="IMAGE=COMMAND for a stand-in image")
    parser.add_argument("--node-device", action="append", default=[], help="NODE=FILE umockdev description")
    parser.add_argument("--node-testbed", action="append", default=[], help="NODE=DIR umockdev testbed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    entrypoints = {image: entrypoint(image) for image in (args.image or cluster.DEFAULT_RUNNER_IMAGES)}
    for mapping in args.command:
        image, _, command = mapping.partition("=")
        entrypoints[image] = tuple(shlex.split(command))
    devices = {}
    for mapping in args.node_device:
        node, _, path = mapping.partition("=")
        devices[node] = pathlib.Path(path)
    testbeds = {}
    for mapping in args.node_testbed:
        node, _, path = mapping.partition("=")
        testbeds[node] = pathlib.Path(path)
    config = runner.Config(
        client=kubeapi.Client.from_kubeconfig(args.kubeconfig),
        server=runner.server_of(args.kubeconfig),
        ca_cert=pki.Paths.under(args.run_dir / "pki").ca_cert,
        work_dir=args.run_dir / "podrunner" / "pods",
        entrypoints=entrypoints,
        node_devices=devices,
        node_testbeds=testbeds,
    )
    pod_runner = runner.PodRunner(config)

    def on_signal(_signum: int, _frame: types.FrameType | None) -> None:
        pod_runner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pod_runner.run(ready_file=args.run_dir / "podrunner" / "ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
