"""A picture of the host state real nodes could change, to compare before ``up`` and after ``down``.

Sysctls (kernel, vm, and the host namespace's net), mounts, iptables rules, top-level cgroups, network
namespaces and interfaces, the kubelet's and containerd's default directories, and the processes of the
node binaries. Values that move on their own (counters, random seeds, clock-driven state) are left out.
"""

import dataclasses
import os
import pathlib
import subprocess

from . import cgroups

_VOLATILE_SYSCTLS = (
    "kernel.random.",
    "kernel.ns_last_pid",
    "kernel.pty.nr",
    "kernel.sched_domain.",
    "kernel.tainted",
    "fs.",
    "net.netfilter.nf_conntrack_count",
    "vm.stat_",
    "kernel.perf_event_max_sample_rate",
    "kernel.apparmor_display_secid_mode",
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
    "vm.nr_pdflush_threads",
    "kernel.unprivileged_userns_apparmor_policy",
)
_NODE_PROGRAMS = (
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "kubelet",
    "kube-proxy",
    "kube-router",
    "pause",
)
_DEFAULT_PATHS = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/var/lib/cni",
)


@dataclasses.dataclass(frozen=True)
class HostState:
    """What is compared; equal pictures mean the host is as it was."""

    sysctls: dict[str, str]
    mounts: list[str]
    iptables: list[str]
    cgroups: list[str]
    netns: list[str]
    links: list[str]
    paths: dict[str, bool]
    node_processes: list[str]


def _sysctls() -> dict[str, str]:
    values = {}
    root = pathlib.Path("/proc/sys")
    for top in ("kernel", "vm", "net"):
        for path in (root / top).rglob("*"):
            name = ".".join(path.relative_to(root).parts)
            if path.is_dir() or name.startswith(_VOLATILE_SYSCTLS) or not os.access(path, os.R_OK):
                continue
            try:
                values[name] = path.read_text().strip()
            except OSError:
                continue  # write-only or refusing reads (e.g. net.ipv4.route.flush)
    return values


def _mounts() -> list[str]:
    # Mount point, filesystem type and source: the mount IDs change with every remount.
    lines = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        lines.append(f"{fields[4]} {fields[separator + 1]} {fields[separator + 2]}")
    return sorted(lines)


def _iptables() -> list[str]:
    rules: list[str] = []
    for tool in ("iptables-save", "ip6tables-save"):
        proc = subprocess.run([tool], capture_output=True, text=True, check=False, timeout=30)
        # Comments carry the save time; counters move with traffic.
        rules += [line for line in proc.stdout.splitlines() if not line.startswith(("#", ":"))]
        rules += [line.split(" [")[0] for line in proc.stdout.splitlines() if line.startswith(":")]
    return sorted(rules)


def _cgroups() -> list[str]:
    names = []
    for hierarchy in cgroups.hierarchies():
        names += [f"{hierarchy.name}/{p.name}" for p in hierarchy.iterdir() if p.is_dir()]
    return sorted(names)


def _netns() -> list[str]:
    base = pathlib.Path("/run/netns")
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def _links() -> list[str]:
    proc = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True, timeout=30
    )
    return sorted(line.split(":")[1].strip() for line in proc.stdout.splitlines())


def _node_processes() -> list[str]:
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        # A zombie has exited already; it lingers until init, which adopted it, reaps it.
        if name in _NODE_PROGRAMS and state != "Z":
            found.append(f"{entry.name} {name}")
    return sorted(found)


def capture() -> HostState:
    """The host's state now."""
    return HostState(
        sysctls=_sysctls(),
        mounts=_mounts(),
        iptables=_iptables(),
        cgroups=_cgroups(),
        netns=_netns(),
        links=_links(),
        paths={path: os.path.lexists(path) for path in _DEFAULT_PATHS},
        node_processes=_node_processes(),
    )


def differences(before: HostState, after: HostState) -> list[str]:
    """Human-readable differences between two pictures (empty when the host is as it was)."""
    found = []
    for field in dataclasses.fields(HostState):
        old, new = getattr(before, field.name), getattr(after, field.name)
        if old == new:
            continue
        if isinstance(old, dict):
            keys = sorted(set(old) | set(new))
            found += [
                f"{field.name} {k}: {old.get(k)!r} -> {new.get(k)!r}"
                for k in keys
                if old.get(k) != new.get(k)
            ]
        else:
            found += [f"{field.name} gone: {item}" for item in sorted(set(old) - set(new))]
            found += [f"{field.name} new: {item}" for item in sorted(set(new) - set(old))]
    return found
