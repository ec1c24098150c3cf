"""Reaching the API: a URL (--server, or a kubectl port-forward to the API Service), a bearer token, and
the CA the API's HTTPS certificate is verified with (--certificate-authority, else the one the operator
publishes in ConfigMap hsm-api-ca of the API's namespace)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import selectors
import subprocess
from collections.abc import Iterator

import kubernetes
import urllib3


class ConnectError(RuntimeError):
    """The API or the credentials cannot be reached; the message says what to try."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where and as whom to call the API."""

    url: str
    token: str = dataclasses.field(repr=False)
    ca_bundle: str | None = None
    """CA file the server's certificate must chain to; None: the system's trust store."""
    insecure: bool = False
    server_name: str | None = None
    """The name the server's certificate must carry when it differs from the URL's host (port-forward)."""


#: Where the operator publishes the CA of the API's certificate (in the API's namespace), and its key.
CA_CONFIGMAP = "hsm-api-ca"
CA_KEY = "ca.crt"
#: Seconds reading that ConfigMap may take (an unreachable cluster must not hang the command).
CA_TIMEOUT = 15.0


def service_name(service: str, namespace: str) -> str:
    """The DNS name of a Service the API's certificate carries, verified through a port-forward."""
    return f"{service}.{namespace}.svc"


def cluster_ca(kubeconfig: str | None, context: str | None, namespace: str) -> str:
    """The PEM CA the operator publishes for API clients (ConfigMap hsm-api-ca in the API's namespace)."""
    where = f"ConfigMap {CA_CONFIGMAP} in namespace {namespace}"
    advice = "pass --certificate-authority FILE with the CA that signed the API's certificate"
    try:
        client = kubernetes.config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        found = kubernetes.client.CoreV1Api(client).read_namespaced_config_map(
            CA_CONFIGMAP, namespace, _request_timeout=CA_TIMEOUT
        )
    except kubernetes.client.ApiException as err:
        if err.status == 403:
            raise ConnectError(
                f"you may not read the API's CA ({where}): ask for the hsm-api-client Role, or {advice}"
            ) from None
        if err.status == 404:
            raise ConnectError(
                f"the API's CA is not published ({where} is missing: is the operator running, or does "
                f"the API use a certificate of your own?); {advice}"
            ) from None
        raise ConnectError(f"cannot read {where}: HTTP {err.status}; {advice}") from None
    except (kubernetes.config.ConfigException, OSError, urllib3.exceptions.HTTPError) as err:
        raise ConnectError(f"cannot reach the cluster to read the API's CA: {err}; {advice}") from None
    pem = str((found.data or {}).get(CA_KEY) or "")
    if "BEGIN CERTIFICATE" not in pem:
        raise ConnectError(f"{where} holds no CA certificate under {CA_KEY}; {advice}")
    return pem


def kubeconfig_token(kubeconfig: str | None, context: str | None) -> str:
    """The bearer token of the kubeconfig's current (or given) context: a token, token file or exec plugin."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (kubernetes.config.ConfigException, OSError) as err:
        raise ConnectError(f"cannot load kubeconfig: {err}") from None
    if configuration.refresh_api_key_hook is not None:
        configuration.refresh_api_key_hook(configuration)
    header = configuration.api_key.get("BearerToken") or configuration.api_key.get("authorization") or ""
    token = header.removeprefix("Bearer ").strip()
    if not token:
        raise ConnectError(
            "the kubeconfig context has no bearer token (client certificates cannot reach the API); "
            "use --token, HSM_TOKEN, or --service-account NAMESPACE/NAME to mint one with TokenRequest"
        )
    return token


def service_account_token(kubeconfig: str | None, context: str | None, account: str) -> str:
    """A short-lived token for ServiceAccount ``namespace/name`` from the TokenRequest API."""
    namespace, sep, name = account.partition("/")
    if not sep or not name:
        raise ConnectError("--service-account must be NAMESPACE/NAME")
    try:
        client = kubernetes.config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        core = kubernetes.client.CoreV1Api(client)
        request = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        )
        answer = core.create_namespaced_service_account_token(name, namespace, request)
    except kubernetes.client.ApiException as err:
        raise ConnectError(f"TokenRequest for {account} failed with HTTP {err.status}") from None
    except (kubernetes.config.ConfigException, OSError) as err:
        raise ConnectError(f"cannot reach the cluster: {err}") from None
    if answer.status is None:
        raise ConnectError(f"TokenRequest for {account} returned no token")
    return str(answer.status.token)


_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


@contextlib.contextmanager
def port_forward(
    kubeconfig: str | None,
    context: str | None,
    namespace: str,
    service: str,
    port: int,
    timeout: float = 15.0,
) -> Iterator[str]:
    """``kubectl port-forward svc/<service>`` on a free local port; yields the local URL."""
    command = ["kubectl"]
    if kubeconfig:
        command.append(f"--kubeconfig={kubeconfig}")
    if context:
        command.append(f"--context={context}")
    command += ["-n", namespace, "port-forward", f"svc/{service}", f":{port}", "--address=127.0.0.1"]
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise ConnectError("kubectl not found: install it or pass --server URL") from None
    try:
        assert process.stdout is not None
        # kubectl prints the chosen port as its first line once the tunnel listens.
        line = _first_line(process, timeout)
        found = _FORWARDING.search(line)
        if not found:
            reason = _failure(process, line)
            raise ConnectError(f"port-forward to svc/{service} in {namespace} failed: {reason}")
        yield f"https://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _failure(process: subprocess.Popen[str], line: str) -> str:
    """Why kubectl did not forward: its stderr once it exited (an empty first line means it is exiting)."""
    try:
        _, error = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        return line.strip() or "kubectl printed no forwarding address"
    return (error or line).strip() or f"kubectl exited with status {process.returncode}"


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        raise ConnectError(f"port-forward did not start within {timeout:.0f}s")
    return process.stdout.readline()
