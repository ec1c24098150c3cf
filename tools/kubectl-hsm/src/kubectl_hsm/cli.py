"""``kubectl hsm`` commands: argument parsing and one small handler per command."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import pathlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from . import client, connect, legacyimport, legacymanifests, output, secretdata

DEFAULT_API_NAMESPACE = "hsm-secrets-operator-system"
DEFAULT_SERVICE = "hsm-api"
API_PORT = 8090


def build_parser() -> argparse.ArgumentParser:
    """The plugin's command line."""
    parser = argparse.ArgumentParser(prog="kubectl hsm", description=__doc__)
    parser.add_argument("-n", "--namespace", help="namespace of the secrets (default: the context's)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="kubeconfig file")
    parser.add_argument(
        "--server", default=os.environ.get("HSM_API_URL"), help="API URL (skips port-forward)"
    )
    parser.add_argument(
        "--token", default=None, help="bearer token (default: HSM_TOKEN, then the kubeconfig's)"
    )
    parser.add_argument("--service-account", help="NAMESPACE/NAME: act as this ServiceAccount (TokenRequest)")
    parser.add_argument("--api-namespace", default=DEFAULT_API_NAMESPACE, help="namespace of the API Service")
    parser.add_argument("--api-service", default=DEFAULT_SERVICE, help="name of the API Service")
    parser.add_argument("--device", help="HSMDevice (when there are several)")
    parser.add_argument(
        "--certificate-authority",
        metavar="FILE",
        help="CA file to verify the API with (default: the CA the operator publishes in ConfigMap "
        "hsm-api-ca; with --server and no such ConfigMap readable, the system's trust store)",
    )
    parser.add_argument(
        "--tls-server-name",
        default=os.environ.get("HSM_API_TLS_SERVER_NAME"),
        help="name the API's certificate must carry "
        "(default: the --server host; hsm-api.<ns>.svc through a port-forward)",
    )
    parser.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="do not verify the API's certificate (testing only: a tunnel or proxy could read your token)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    for name, helptext in (("create", "create a secret"), ("update", "replace a secret's data")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("name", help="secret name (path below the namespace)")
        sub.add_argument("--from-literal", action="append", default=[], metavar="KEY=VALUE")
        sub.add_argument("--from-file", action="append", default=[], metavar="[KEY=]PATH")
        sub.add_argument("--from-env-file", action="append", default=[], metavar="PATH")
        sub.add_argument(
            "--generate",
            action="append",
            default=[],
            metavar="KEY=[FORMAT:]N",
            help="a value made by the device's random number generator: N characters of A-Z, a-z, 0-9 "
            "(password:N or N), or N random bytes as hex (hex:N) or base64 (base64:N); it is never shown",
        )
        sub.add_argument("--description", help="metadata description")
        if name == "update":
            sub.add_argument("--if-version", type=int, help="only if the secret is at this version")
            sub.add_argument("--merge", action="store_true", help="merge the keys into the secret (PATCH)")
    get = commands.add_parser("get", help="show a secret")
    get.add_argument("name")
    get.add_argument("-o", "--output", choices=["json", "yaml"], default="yaml")
    get.add_argument("--key", help="print only this key's raw value")
    listing = commands.add_parser("list", help="list secrets")
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    listing.add_argument("--prefix", default="")
    listing.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    delete = commands.add_parser("delete", help="delete a secret or one key")
    delete.add_argument("name")
    delete.add_argument("--key", help="delete only this key")
    rename = commands.add_parser(
        "rename-key",
        help="rename one key of a secret",
        description="One write on every device, made only if the secret is still at the version read "
        "first: a secret changed meanwhile is left as it is (run the command again).",
    )
    rename.add_argument("name")
    rename.add_argument("old", help="the key to rename")
    rename.add_argument("new", help="its new name (must not exist yet)")
    versions = commands.add_parser("versions", help="the secret's version on every device")
    versions.add_argument("name")
    versions.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    pin = commands.add_parser("rotate-pin", help="change the PIN of every device (prompts; never prints it)")
    pin.add_argument("--pin-stdin", action="store_true", help="read old and new PIN as two lines of stdin")
    commands.add_parser("health", help="API and device health")
    devices = commands.add_parser("devices", help="devices, their HSM information and how full they are")
    devices.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    mirror = commands.add_parser("mirror", help="mirroring between devices")
    mirror_commands = mirror.add_subparsers(dest="mirror_command", required=True)
    mirror_commands.add_parser("sync", help="repair divergence between the devices now")
    legacy = commands.add_parser(
        "import",
        help="import the Go hsm-secrets-operator's secrets from the devices' tokens (dry run by default)",
        description="Without --namespace or --mapping, each legacy path goes to the namespace of the "
        "HSMSecret that names it; the keys of its Kubernetes Secret are the keys it should hold. Exit 0 "
        "when every legacy path is (or would be) imported, 1 when some are not (see the report) or on "
        "errors. Details: docs/migrating.md.",
    )
    legacy.add_argument(
        "--namespace", dest="import_namespace", help="namespace of every legacy path no mapping sends"
    )
    legacy.add_argument("--mapping", metavar="FILE", help="JSON object: legacy path or prefix → namespace")
    legacy.add_argument("--apply", action="store_true", help="import: write, read back and verify")
    legacy.add_argument(
        "--remove-legacy", action="store_true", help="with --apply: remove the legacy objects once verified"
    )
    legacy.add_argument(
        "--import-incomplete", action="store_true", help="import half-written paths with the keys they kept"
    )
    legacy.add_argument("--json", action="store_true", help="print the report as JSON")
    legacy.add_argument(
        "--manifests",
        metavar="DIR",
        type=pathlib.Path,
        help="instead: convert the Go operator's HSMSecret/HSMDevice/HSMPool manifests under DIR (offline); "
        "the converted YAML goes to stdout and the report to stderr, or both to --output and stdout",
    )
    legacy.add_argument(
        "--output",
        metavar="OUT",
        type=pathlib.Path,
        help="with --manifests: write the converted files under OUT",
    )
    return parser


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[client.Client]:
    token = args.token or os.environ.get("HSM_TOKEN")
    if not token and args.service_account:
        token = connect.service_account_token(args.kubeconfig, args.context, args.service_account)
    if not token:
        token = connect.kubeconfig_token(args.kubeconfig, args.context)
    with tempfile.TemporaryDirectory(prefix="kubectl-hsm-") as scratch:
        ca_file = _ca_file(args, pathlib.Path(scratch))
        if args.server:
            yield client.Client(_target(args, args.server, token, ca_file, args.tls_server_name))
            return
        name = args.tls_server_name or connect.service_name(args.api_service, args.api_namespace)
        with connect.port_forward(
            args.kubeconfig, args.context, args.api_namespace, args.api_service, API_PORT
        ) as url:
            yield client.Client(_target(args, url, token, ca_file, name))


def _ca_file(args: argparse.Namespace, scratch: pathlib.Path) -> str | None:
    """The CA file to verify the API with: --certificate-authority, else the cluster's published CA (written
    to scratch); None means the system's trust store (--server only, when the cluster publishes none)."""
    if args.insecure_skip_tls_verify:
        return None
    if args.certificate_authority:
        return str(args.certificate_authority)
    try:
        pem = connect.cluster_ca(args.kubeconfig, args.context, args.api_namespace)
    except connect.ConnectError:
        if args.server:
            return None  # e.g. a certificate from a public CA: the trust store decides
        raise
    path = scratch / "ca.crt"
    path.write_text(pem)
    return str(path)


def _target(
    args: argparse.Namespace, url: str, token: str, ca_file: str | None, server_name: str | None
) -> connect.Target:
    return connect.Target(url, token, ca_file, args.insecure_skip_tls_verify, server_name)


def _namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return str(args.namespace)
    try:
        import kubernetes

        _, active = kubernetes.config.list_kube_config_contexts(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
        if args.context:
            contexts, _ = kubernetes.config.list_kube_config_contexts(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
            active = next((c for c in contexts if c["name"] == args.context), active)
        return str(active["context"].get("namespace") or "default")
    except Exception:  # no kubeconfig: the Kubernetes default
        return "default"


def _path(args: argparse.Namespace) -> str:
    return f"{_namespace(args)}/{args.name}"


def _device_params(args: argparse.Namespace) -> dict[str, str]:
    return {"device": args.device} if args.device else {}


def _report_partial(status: int, body: dict[str, Any]) -> None:
    if status == 207:
        failed = [
            f"{d['device']} ({d['error']['message']})" for d in body["data"]["devices"] if not d["success"]
        ]
        output.warn(
            f"written to some devices only; missing on {', '.join(failed)} "
            "until the mirror repairs them (a full device needs room first)"
        )


def cmd_write(args: argparse.Namespace, api: client.Client) -> int:
    data = secretdata.from_sources(args.from_literal, args.from_file, args.from_env_file)
    generate = secretdata.generate_specs(args.generate)
    if not data and not generate:
        raise secretdata.DataError(
            "give data with --from-literal, --from-file, --from-env-file or --generate"
        )
    body: dict[str, Any] = {"data": secretdata.encode(data)}
    if generate:
        body["generate"] = generate
    if args.description is not None:
        body["metadata"] = {"description": args.description, "source": "kubectl-hsm"}
    route = api.secret_route(_path(args))
    headers = {}
    if args.command == "update" and args.if_version is not None:
        headers["If-Match"] = str(args.if_version)
    method = "POST" if args.command == "create" else ("PATCH" if args.merge else "PUT")
    status, answer = api.request(method, route, json=body, headers=headers, params=_device_params(args))
    _report_partial(status, answer)
    verb = "created" if args.command == "create" else "updated"
    output.write(f"secret {_path(args)} {verb} (version {answer['data']['version']})\n")
    return 0


def cmd_get(args: argparse.Namespace, api: client.Client) -> int:
    _, body = api.request("GET", api.secret_route(_path(args)), params=_device_params(args))
    secret = body["data"]
    if args.key is not None:
        values = secretdata.decode(secret["data"])
        if args.key not in values:
            raise client.ApiError(404, "NOT_FOUND", f"secret {_path(args)} has no key {args.key!r}")
        output.write_bytes(values[args.key])
        return 0
    output.write(output.document(secret, args.output))
    return 0


def cmd_list(args: argparse.Namespace, api: client.Client) -> int:
    namespaces = _all_namespaces(args) if args.all_namespaces else [_namespace(args)]
    items: list[dict[str, Any]] = []
    for namespace in namespaces:
        token: str | None = None
        while True:
            params = {"namespace": namespace, "prefix": args.prefix, "limit": "500", **_device_params(args)}
            if token:
                params["continue"] = token
            try:
                _, body = api.request("GET", "/hsm/secrets", params=params)
            except client.ApiError as err:
                if args.all_namespaces and err.status == 403:
                    break
                raise
            items.extend(body["data"]["items"])
            token = body["data"]["continue"]
            if not token:
                break
    if args.output != "table":
        output.write(output.document(items, args.output))
        return 0
    rows = [
        (*item["path"].split("/", 1), item["version"], ",".join(item["keys"]), item["updatedAt"])
        for item in items
    ]
    output.write(output.table(["NAMESPACE", "NAME", "VERSION", "KEYS", "UPDATED"], rows))
    return 0


def _all_namespaces(args: argparse.Namespace) -> list[str]:
    import kubernetes

    try:
        api_client = kubernetes.config.new_client_from_config(
            config_file=args.kubeconfig, context=args.context
        )  # type: ignore[no-untyped-call]
        found = kubernetes.client.CoreV1Api(api_client).list_namespace()
    except Exception as err:
        raise connect.ConnectError(f"-A needs to list namespaces: {type(err).__name__}") from None
    return sorted(str(item.metadata.name) for item in found.items if item.metadata)


def cmd_delete(args: argparse.Namespace, api: client.Client) -> int:
    params = {**_device_params(args), **({"key": args.key} if args.key else {})}
    status, body = api.request("DELETE", api.secret_route(_path(args)), params=params)
    _report_partial(status, body)
    what = f"key {args.key} of secret" if args.key else "secret"
    output.write(f"{what} {_path(args)} deleted\n")
    return 0


def cmd_rename_key(args: argparse.Namespace, api: client.Client) -> int:
    if args.old == args.new:
        raise secretdata.DataError("the old and the new key name are the same")
    route = api.secret_route(_path(args))
    _, body = api.request("GET", route)
    secret = body["data"]
    values = secretdata.decode(secret["data"])
    if args.old not in values:
        raise client.ApiError(404, "NOT_FOUND", f"secret {_path(args)} has no key {args.old!r}")
    if args.new in values:
        raise client.ApiError(
            409, "ALREADY_EXISTS", f"secret {_path(args)} already has a key {args.new!r}; nothing renamed"
        )
    # A merge patch adds the new key and removes the old one in one write, kept to the version read.
    patch = {"data": {**secretdata.encode({args.new: values[args.old]}), args.old: None}}
    headers = {"If-Match": str(secret["version"])}
    try:
        status, answer = api.request("PATCH", route, json=patch, headers=headers)
    except client.ApiError as err:
        if err.status != 412:
            raise
        raise client.ApiError(
            412,
            err.code,
            f"secret {_path(args)} changed while renaming (it was at version {secret['version']}); "
            "nothing was renamed: run the command again",
        ) from None
    _report_partial(status, answer)
    version = answer["data"]["version"]
    output.write(f"key {args.old} of secret {_path(args)} renamed to {args.new} (version {version})\n")
    return 0


def cmd_versions(args: argparse.Namespace, api: client.Client) -> int:
    _, body = api.request("GET", api.secret_route(_path(args), "/versions"), params=_device_params(args))
    data = body["data"]
    if args.output != "table":
        output.write(output.document(data, args.output))
        return 0
    rows = [
        (
            d["device"],
            d.get("version", ""),
            "yes" if d.get("deleted") else "no",
            d.get("updatedAt", ""),
            d.get("writer", ""),
        )
        if d["available"]
        else (d["device"], "unavailable", "", "", "")
        for d in data["devices"]
    ]
    output.write(output.table(["DEVICE", "VERSION", "DELETED", "UPDATED", "WRITER"], rows))
    output.write(f"in sync: {'yes' if data['inSync'] else 'no'}\n")
    return 0


def cmd_rotate_pin(args: argparse.Namespace, api: client.Client) -> int:
    if args.pin_stdin:
        lines = sys.stdin.read().splitlines()
        if len(lines) < 2:
            raise secretdata.DataError("--pin-stdin expects the old PIN and the new PIN on two lines")
        old, new = lines[0], lines[1]
    else:
        old = getpass.getpass("Current PIN: ")
        new = getpass.getpass("New PIN: ")
        if getpass.getpass("Repeat new PIN: ") != new:
            raise secretdata.DataError("the new PINs differ")
    body: dict[str, Any] = {"oldPin": old, "newPin": new}
    if args.device:
        body["device"] = args.device
    _, answer = api.request("POST", "/hsm/change-pin", json=body)
    devices = ", ".join(answer["data"]["devices"])
    output.write(f"PIN changed on {devices}; PIN Secret updated\n")
    return 0


def cmd_health(args: argparse.Namespace, api: client.Client) -> int:
    api.request("GET", "/health")
    _, body = api.request("GET", "/hsm/status", params=_device_params(args))
    data = body["data"]
    output.write(
        f"API: ok\nHSMDevice {data['hsmDevice']}: {data['availableDevices']}/{data['totalDevices']} devices\n"
    )
    rows = [
        (d["device"], "yes" if d["connected"] else "no", d["status"], d["message"]) for d in data["devices"]
    ]
    output.write(output.table(["DEVICE", "CONNECTED", "STATUS", "MESSAGE"], rows))
    return 0 if data["availableDevices"] == data["totalDevices"] else 1


def cmd_devices(args: argparse.Namespace, api: client.Client) -> int:
    _, body = api.request("GET", "/hsm/info", params=_device_params(args))
    data = body["data"]
    if args.output != "table":
        output.write(output.document(data, args.output))
        return 0
    rows = [
        (
            d["device"],
            "yes" if d["available"] else "no",
            d.get("label", ""),
            d.get("serialNumber", ""),
            d.get("secretCount", ""),
            *_capacity_cells(d.get("capacity")),
        )
        for d in data["devices"]
    ]
    headers = ["DEVICE", "AVAILABLE", "LABEL", "SERIAL", "SECRETS", "OBJECTS", "FREE", "MEMORY"]
    output.write(output.table(headers, rows))
    return 0


def _capacity_cells(capacity: dict[str, Any] | None) -> tuple[str, str, str]:
    """OBJECTS (used/max), FREE and MEMORY (free/total) of a device; '-' for what it does not report."""
    if capacity is None:
        return "-", "-", "-"
    objects = f"{capacity['usedObjects']}/{capacity['maxObjects']}"
    total, free = capacity.get("totalMemory"), capacity.get("freeMemory")
    memory = "-" if total is None or free is None else f"{output.size(free)}/{output.size(total)}"
    return objects, str(capacity["freeObjects"]), memory


def cmd_mirror(args: argparse.Namespace, api: client.Client) -> int:
    body = {"device": args.device} if args.device else {}
    _, answer = api.request("POST", "/hsm/mirror/sync", json=body)
    report = answer["data"]
    output.write(
        f"checked {report['pathsChecked']} paths; repaired {len(report['repaired'])}, "
        f"failed {len(report['failed'])}; unavailable: {', '.join(report['unavailableDevices']) or 'none'}\n"
    )
    return 1 if report["failed"] else 0


def convert_manifests(args: argparse.Namespace) -> int:
    """``import --manifests``: convert without the cluster; exit 1 while some object needs a decision."""
    if args.apply or args.remove_legacy or args.import_incomplete or args.import_namespace or args.mapping:
        raise secretdata.DataError(
            "--manifests converts files only: --apply, --remove-legacy, --import-incomplete, --namespace and "
            "--mapping belong to the import of secrets"
        )
    conversion = legacymanifests.convert_dir(args.manifests)
    report = legacymanifests.render_report(conversion, "json" if args.json else "text")
    if args.output is not None:
        legacymanifests.write_dir(conversion, args.manifests, args.output)
        output.write(report)
    elif args.json:
        output.write(report)
    else:
        # The YAML alone on stdout, so that it can be piped to `kubectl apply -f -`.
        output.write(legacymanifests.render_yaml(conversion))
        sys.stderr.write(report)
    return 1 if conversion.needs_decision else 0


def cmd_import(args: argparse.Namespace, api: client.Client) -> int:
    if args.remove_legacy and not args.apply:
        raise secretdata.DataError("--remove-legacy needs --apply")
    inputs = legacyimport.cluster_inputs(legacyimport.read_cluster(args.kubeconfig, args.context))
    namespace = args.import_namespace or args.namespace
    mapping = legacyimport.read_mapping(args.mapping) if args.mapping else {}
    if not namespace and not args.mapping:
        mapping = inputs.mapping
        if not mapping:
            raise secretdata.DataError("no HSMSecret in the cluster: give --namespace or --mapping")
    body = legacyimport.body(
        namespace,
        mapping,
        inputs.known_paths,
        args.device,
        args.apply,
        args.remove_legacy,
        args.import_incomplete,
    )
    _, answer = api.request("POST", "/hsm/import-legacy", json=body)
    report = answer["data"]
    clashes = inputs.clashes if mapping is inputs.mapping else {}
    if args.json:
        output.write(output.document({**report, "clashes": clashes}, "json"))
    else:
        output.write(legacyimport.render(report, clashes))
    return 0 if legacyimport.settled(report) and not clashes else 1


HANDLERS: dict[str, Callable[[argparse.Namespace, client.Client], int]] = {
    "create": cmd_write,
    "update": cmd_write,
    "get": cmd_get,
    "list": cmd_list,
    "delete": cmd_delete,
    "rename-key": cmd_rename_key,
    "versions": cmd_versions,
    "rotate-pin": cmd_rotate_pin,
    "health": cmd_health,
    "devices": cmd_devices,
    "mirror": cmd_mirror,
    "import": cmd_import,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 on an API or input error, 2 on usage errors."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "import" and args.manifests is not None:
            return convert_manifests(args)
        if args.command == "import" and args.output is not None:
            raise secretdata.DataError("--output belongs to --manifests")
        with _client(args) as api:
            return HANDLERS[args.command](args, api)
    except client.ApiError as err:
        sys.stderr.write(
            f"error: {err.code}: {err}\n" if err.status == 0 else f"error ({err.status}) {err}\n"
        )
        field = err.details.get("field")
        if field:
            sys.stderr.write(f"  field: {field}\n")
        return 1
    except (
        connect.ConnectError,
        secretdata.DataError,
        legacyimport.InputError,
        legacymanifests.ManifestError,
    ) as err:
        sys.stderr.write(f"error: {err}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
