"""The API's only Kubernetes access: TokenReview, SubjectAccessReview, HSMDevices and their PIN Secrets."""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

import kubernetes
import urllib3

from hsm_common import constants, models

from . import auth, errors

log = logging.getLogger(__name__)

#: The client imports its API classes lazily; resolving them here lets gunicorn's master import them once.
_APIS = (
    kubernetes.client.AuthenticationV1Api,
    kubernetes.client.AuthorizationV1Api,
    kubernetes.client.CoreV1Api,
    kubernetes.client.CustomObjectsApi,
)

#: Seconds one review or read may take before the API reports its backend unavailable.
REQUEST_TIMEOUT = 5.0


def load_client(kubeconfig: str | None = None) -> kubernetes.client.ApiClient:
    """An API client from kubeconfig, else the in-cluster ServiceAccount, else $KUBECONFIG (outside a pod)."""
    configuration = kubernetes.client.Configuration()
    if not kubeconfig and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubeconfig = os.environ.get("KUBECONFIG") or None
    if kubeconfig:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    else:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient(configuration)


class Kube:
    """TokenReviewer, AccessReviewer and PinStore backed by the Kubernetes API."""

    def __init__(self, client: kubernetes.client.ApiClient, audiences: list[str] | None = None) -> None:
        self._authn = kubernetes.client.AuthenticationV1Api(client)
        self._authz = kubernetes.client.AuthorizationV1Api(client)
        self._core = kubernetes.client.CoreV1Api(client)
        self._custom = kubernetes.client.CustomObjectsApi(client)
        self._audiences = audiences

    def review_token(self, token: str) -> auth.User | None:
        spec = kubernetes.client.V1TokenReviewSpec(token=token, audiences=self._audiences)
        review = self._call(
            "TokenReview",
            lambda: self._authn.create_token_review(
                kubernetes.client.V1TokenReview(spec=spec), _request_timeout=REQUEST_TIMEOUT
            ),
        )
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        extra = tuple(sorted((key, tuple(values)) for key, values in (user.extra or {}).items()))
        return auth.User(user.username or "", user.uid or "", tuple(user.groups or ()), extra)

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        attributes = kubernetes.client.V1ResourceAttributes(
            group=access.group,
            resource=access.resource,
            verb=access.verb,
            namespace=access.namespace,
            name=access.name or None,
        )
        spec = kubernetes.client.V1SubjectAccessReviewSpec(
            user=user.username,
            uid=user.uid or None,
            groups=list(user.groups),
            extra={key: list(values) for key, values in user.extra} or None,
            resource_attributes=attributes,
        )
        review = self._call(
            "SubjectAccessReview",
            lambda: self._authz.create_subject_access_review(
                kubernetes.client.V1SubjectAccessReview(spec=spec), _request_timeout=REQUEST_TIMEOUT
            ),
        )
        return bool(review.status and review.status.allowed)

    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        """Write new_pin into the PIN Secret the HSMDevice names, so agents keep logging in."""
        obj = self._call(
            "get HSMDevice",
            lambda: self._custom.get_namespaced_custom_object(
                constants.GROUP,
                constants.VERSION,
                namespace,
                constants.PLURAL_DEVICE,
                device,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )
        spec = models.HSMDeviceSpec.model_validate(obj.get("spec", {}))
        ref = spec.pkcs11.pin_secret
        body: dict[str, Any] = {"data": {ref.key: base64.b64encode(new_pin.encode()).decode()}}
        self._call(
            "patch PIN Secret",
            lambda: self._core.patch_namespaced_secret(
                ref.name, namespace, body, _request_timeout=REQUEST_TIMEOUT
            ),
        )

    @staticmethod
    def _call(what: str, request: Any) -> Any:
        try:
            return request()
        except kubernetes.client.ApiException as error:
            # Bodies of API errors can echo the request (a token, a PIN): log the status only.
            log.warning("kubernetes_request_failed", extra={"request": what, "status": error.status})
            if error.status == 404:
                raise errors.DeviceNotFound(f"{what}: not found") from None
            raise errors.AuthBackendUnavailable(f"{what} failed with HTTP {error.status}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            log.warning("kubernetes_unreachable", extra={"request": what, "error_type": type(error).__name__})
            raise errors.AuthBackendUnavailable(f"{what}: Kubernetes API unreachable") from None
