"""Reaching the API: a URL (--server, or a kubectl port-forward to the API Service) and a bearer token."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import selectors
import subprocess
from collections.abc import Iterator

import kubernetes


class ConnectError(RuntimeError):
    """The API or the credentials cannot be reached; the message says what to try."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where and as whom to call the API."""

    url: str
    token: str
    ca_bundle: str | None = None
    insecure: bool = False


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
        yield f"http://127.0.0.1:{found.group(1)}"
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
