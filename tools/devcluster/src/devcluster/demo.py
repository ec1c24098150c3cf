"""``python -m devcluster demo`` / ``demo-down``: the whole system on a local devcluster, left running.

Sets up what is missing (Kubernetes binaries, images; tells which apt packages to add), installs the system
(``system.install``), stores a sample secret through the REST API, creates an HSMSecret, shows the synced
Secret and the HSMSecret's status columns, and prints how to reach the API and use ``kubectl hsm``.
"""

import pathlib
import secrets
import shlex
import shutil
import sys
import time

from . import build, cluster, kubeapi, kubectl, nodes, system, usbhsm, versions, wait

NAMESPACE = "demo"
SAMPLE = "database"
_TOOLS = {
    "softhsm2-util": "softhsm2 (make apt)",
    "umockdev-wrapper": "umockdev (make apt)",
    "containerd": "containerd (make apt)",
    "buildah": "buildah (make apt)",
}


class DemoError(RuntimeError):
    """Something the demo needs is missing or did not come up."""


def run_dir() -> pathlib.Path:
    """Where the demo cluster lives (kept apart from the CLI's default cluster)."""
    return versions.cache_root() / "run" / "demo"


def _check_tools() -> None:
    missing = [hint for tool, hint in _TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise DemoError("missing: " + "; ".join(missing))


def _say(text: str) -> None:
    print(text, flush=True)


def up(directory: pathlib.Path | None = None) -> int:
    """Start the demo unless it already runs, then print how to use it."""
    directory = directory or run_dir()
    states = cluster.status(directory)
    if states and all(states.values()):
        _say(f"the demo is already running in {directory}")
        print_usage(directory)
        return 0
    if states:
        # A half-dead demo (e.g. after a reboot): start over.
        cluster.down(directory)
    _check_tools()
    _say("== Kubernetes binaries (a cold build from Go modules takes a while)")
    _say(str(build.build()))
    start = time.monotonic()
    options = system.Options(run_dir=directory, repo_root=system.repo_root(), user_namespaces=(NAMESPACE,))
    installed = system.install(options, lambda step: _say(f"{system.elapsed_since(start)}  {step}"))
    store_sample(installed)
    print_usage(directory)
    return 0


def store_sample(installed: system.System) -> None:
    """Store the sample secret through the API, sync an HSMSecret of it, and show both."""
    path = f"{NAMESPACE}/{SAMPLE}"
    password = secrets.token_urlsafe(12).encode()
    written = installed.api.put_secret(
        path, {"username": b"app", "password": password}, description="sample secret of make demo"
    )
    devices = len(written["devices"])
    _say(f"== stored {path} through the REST API (version {written['version']} on {devices} devices)")
    hsmsecret = {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMSecret",
        "metadata": {"name": SAMPLE, "namespace": NAMESPACE},
        "spec": {},
    }
    try:
        installed.client.request("POST", f"{system.GROUP_PATH}/namespaces/{NAMESPACE}/hsmsecrets", hsmsecret)
    except kubeapi.ApiError as err:
        if err.status != 409:
            raise

    def synced() -> bool:
        found = installed.client.get(f"{system.GROUP_PATH}/namespaces/{NAMESPACE}/hsmsecrets/{SAMPLE}")
        return (found.get("status") or {}).get("syncStatus") == "InSync"

    wait.until(synced, 60, f"HSMSecret {path} InSync")
    config = installed.cluster.kubeconfig
    _say(f"== kubectl get hsmsec -n {NAMESPACE}")
    _say(kubectl.run(config, "get", "hsmsec", "-n", NAMESPACE).rstrip())
    _say(f"== kubectl get secret {SAMPLE} -n {NAMESPACE} -o yaml (the synced replica; values are base64)")
    _say(kubectl.run(config, "get", "secret", SAMPLE, "-n", NAMESPACE, "-o", "yaml").rstrip())
    _say(f"== kubectl get nodes,pods -n {system.NAMESPACE} -o wide (our images on the real nodes)")
    _say(kubectl.run(config, "get", "nodes,pods", "-n", system.NAMESPACE, "-o", "wide").rstrip())


def print_usage(directory: pathlib.Path) -> None:
    """Print how to reach the running demo's API and use kubectl hsm against it."""
    found = cluster.load(directory)
    if found is None:
        raise DemoError(f"no cluster in {directory}")
    address = cluster.forwarded(directory, system.API_FORWARD)
    q = shlex.quote
    url = f"https://{address}" if address else "(the API's forwarder is not running)"
    console = f"{url}/" if address else url
    ca_file = q(str(directory / system.API_CA_FILE))
    name = system.API_SERVER_NAME
    # The forwarder listens on 127.0.0.1 while the certificate names the Service: curl maps that name there.
    port = address.rsplit(":", 1)[1] if address else "PORT"
    curl = f"curl --cacert {ca_file} --resolve {name}:{port}:127.0.0.1 https://{name}:{port}"
    user_config = directory / "user.kubeconfig"
    venv_bin = pathlib.Path(sys.executable).parent
    cli = f"uv run python -m devcluster --run-dir {q(str(directory))} device"
    node = nodes.name(2)
    description = q(str(directory / "devices" / f"{node}.umockdev"))
    _say(
        f"""
== the demo runs (control plane on 127.0.0.1; two real nodes run the operator, API, discovery and agents)
admin:    export PATH={q(str(versions.bin_dir()))}:$PATH KUBECONFIG={q(str(found.kubeconfig))}
          kubectl get hsmdev,hsmpool -n {system.NAMESPACE}; kubectl get pods -n {system.NAMESPACE} -o wide
          kubectl get hsmsec -A
REST API: {url}  (HTTPS only; the {system.API_SERVICE} Service, forwarded from this machine's loopback)
          its CA: {ca_file}  (ConfigMap {system.API_CA_CONFIGMAP}); its certificate names {name}
          TOKEN=$(kubectl create token {system.USER} -n default)
          {curl}/api/v1/hsm/secrets/{NAMESPACE}/{SAMPLE} -H "Authorization: Bearer $TOKEN"
console:  {console}  in a browser: sign in with the token (echo $TOKEN), open the namespace {NAMESPACE}
          the certificate names {name}: accept it once, or trust its CA,
          map {name} to 127.0.0.1 in /etc/hosts and open https://{name}:{port}/
kubectl hsm, as the user {system.USER} (may use namespace {NAMESPACE}; reaches the API by port-forward):
          export PATH={q(str(venv_bin))}:{q(str(versions.bin_dir()))}:$PATH KUBECONFIG={q(str(user_config))}
          kubectl hsm -n {NAMESPACE} get {SAMPLE}
          kubectl hsm -n {NAMESPACE} update {SAMPLE} --from-literal password=changed
          kubectl hsm -n {NAMESPACE} versions {SAMPLE}
USB hotplug (each node has a mocked Pico HSM):
          {cli} remove {node} {usbhsm.PICO_HSM.sys_path}
          {cli} add {node} {description}
stop:     make demo-down   (uv run python -m devcluster demo-down)"""
    )


def down(directory: pathlib.Path | None = None) -> int:
    """Stop the demo cluster and every pod process."""
    directory = directory or run_dir()
    alive = {name for name, running in cluster.status(directory).items() if running}
    if not alive:
        _say("no demo running")
        return 0
    for proc in reversed(cluster.down(directory)):
        if proc.name in alive:
            _say(f"stopped {proc.name} (pid {proc.pid})")
    return 0
