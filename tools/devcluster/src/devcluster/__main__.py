"""Command line: ``python -m devcluster build|up|down|status|env``."""

import argparse
import pathlib
import shlex
import sys

from . import build, cluster, demo, images, kubectl, podman, realnodes, softhsm, testbed, wait


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devcluster", description="Local Kubernetes control plane for tests"
    )
    parser.add_argument(
        "--run-dir", type=pathlib.Path, default=None, help="cluster directory (default: under the cache)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the control-plane binaries into the cache")
    up = sub.add_parser("up", help="build if needed, start the cluster and return when it is ready")
    up.add_argument("--nodes", type=int, default=2, help="number of nodes")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds each component gets to be ready")
    up.add_argument(
        "--testbed", dest="testbeds", action="append", default=[], help="NODE: give NODE a hotplug testbed"
    )
    device = sub.add_parser("device", help="plug USB devices in and out of a node's testbed")
    device_commands = device.add_subparsers(dest="device_command", required=True)
    add = device_commands.add_parser("add", help="plug in the devices of a umockdev description")
    add.add_argument("node")
    add.add_argument("file", type=pathlib.Path)
    remove = device_commands.add_parser("remove", help="unplug the device at a sysfs path")
    remove.add_argument("node")
    remove.add_argument("sys_path", help="/sys/devices/...")
    sub.add_parser("demo", help="the whole system with a sample secret, left running (own run dir)")
    sub.add_parser("demo-down", help="stop the demo")
    sub.add_parser("down", help="stop the cluster")
    sub.add_parser("status", help="show which processes run")
    sub.add_parser("env", help="print KUBECONFIG=… for eval")
    image_args = sub.add_parser("images", help="build the service images and the sandbox image with buildah")
    image_args.add_argument("--tag", default="dev", help="tag of docker.io/library/hsm-<service>:<tag>")
    image_args.add_argument(
        "--agent-target", choices=["testtokens"], help="Dockerfile stage of the agent image"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one devcluster command and return the process exit code."""
    args = _parser().parse_args(argv)
    run_dir: pathlib.Path = args.run_dir or cluster.default_run_dir()
    try:
        if args.command == "demo":
            return demo.up(args.run_dir)
        if args.command == "demo-down":
            return demo.down(args.run_dir)
        if args.command == "build":
            print(build.build())
        elif args.command == "images":
            for image in [*images.build(args.tag, args.agent_target), images.pause_image()]:
                print(f"{image.name} {image.id}")
        elif args.command == "up":
            build.build()
            archives, sandbox = realnodes.image_archives()
            settings = cluster.Settings(
                run_dir=run_dir,
                node_count=args.nodes,
                timeout=args.timeout,
                testbed_nodes=tuple(args.testbeds),
                images=archives,
                sandbox_image=sandbox,
            )
            started = cluster.up(settings)
            print(f"export KUBECONFIG={shlex.quote(str(started.kubeconfig))}")
        elif args.command == "device":
            bed = testbed.Testbed(run_dir, args.node)
            if args.device_command == "add":
                for path in bed.add(args.file):
                    print(f"added {path} on {args.node}")
            else:
                bed.remove(args.sys_path)
                print(f"removed {args.sys_path} from {args.node}")
        elif args.command == "down":
            for proc in reversed(cluster.down(run_dir)):
                print(f"stopped {proc.name} (pid {proc.pid})")
        elif args.command == "status":
            states = cluster.status(run_dir)
            if not states:
                print("no cluster")
                return 1
            for name, alive in states.items():
                print(f"{name}: {'running' if alive else 'stopped'}")
            return 0 if all(states.values()) else 1
        elif args.command == "env":
            found = cluster.load(run_dir)
            if found is None:
                print("no cluster; run `python -m devcluster up`", file=sys.stderr)
                return 1
            for key, value in found.env().items():
                print(f"export {key}={shlex.quote(value)}")
    except (
        build.BuildError,
        cluster.StartError,
        testbed.TestbedError,
        demo.DemoError,
        wait.TimeoutExpiredError,
        kubectl.KubectlError,
        softhsm.SoftHsmError,
        images.ImageError,
        podman.PodmanError,
    ) as err:
        print(f"devcluster: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
