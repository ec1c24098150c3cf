"""Names and numbers every component must agree on."""

from typing import Final

GROUP: Final = "hsm.j5t.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

KIND_SECRET: Final = "HSMSecret"
KIND_DEVICE: Final = "HSMDevice"
KIND_POOL: Final = "HSMPool"
PLURAL_SECRET: Final = "hsmsecrets"
PLURAL_DEVICE: Final = "hsmdevices"
PLURAL_POOL: Final = "hsmpools"

DEFAULT_NAMESPACE: Final = "hsm-secrets-operator-system"

# Labels
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "hsm-secrets-operator"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_DEVICE: Final = f"{GROUP}/device"
LABEL_SERIAL: Final = f"{GROUP}/serial"
LABEL_SECRET: Final = f"{GROUP}/hsmsecret"

# Annotations
ANNOTATION_DEVICE_REPORT: Final = f"{GROUP}/device-report"
ANNOTATION_HSM_VERSION: Final = f"{GROUP}/hsm-version"
ANNOTATION_DATA_MAC: Final = f"{GROUP}/data-mac"
# On a Secret shaped by spec.data or spec.target: a keyed MAC of the HSM copy, the spec's shape and the data.
ANNOTATION_SHAPE_MAC: Final = f"{GROUP}/shape-mac"
# On a Secret an HSMSecret merges into (creationPolicy Merge): the keys it wrote, comma-separated.
ANNOTATION_OWNED_KEYS: Final = f"{GROUP}/owned-keys"
# On an HSMSecret of creationPolicy Merge: held until its keys are taken out of the Secret again.
FINALIZER_MERGED_KEYS: Final = f"{GROUP}/merged-keys"

# The kubelet device plugin: each HSMDevice is the extended resource hsm.j5t.io/<HSMDevice name>.
DEVICE_PLUGIN_DIR: Final = "/var/lib/kubelet/device-plugins"
DEVICE_PLUGIN_API_VERSION: Final = "v1beta1"


def resource_name(device: str) -> str:
    """The extended resource an HSMDevice's agents request (one per USB device of it)."""
    return f"{GROUP}/{device}"


# Ports
PORT_AGENT_GRPC: Final = 9090
PORT_AGENT_HEALTH: Final = 8093
PORT_DISCOVERY_HEALTH: Final = 8094
PORT_API: Final = 8090
PORT_OPERATOR_HEALTH: Final = 8081
# Every component's metrics (HTTPS, for callers allowed to get /metrics); probes have ports of their own.
PORT_METRICS: Final = 8080
# The metrics' serving certificate: the operator issues it into this kubernetes.io/tls Secret of its
# namespace, and every component's pod mounts it (optionally: until it exists, a self-signed one is served)
# at this directory, given as --metrics-cert-dir.
METRICS_TLS_SECRET: Final = "hsm-metrics-tls"
METRICS_CERT_DIR: Final = "/etc/hsm/metrics-tls"

# Limits
MAX_PATH_BYTES: Final = 254
MAX_KEY_BYTES: Final = 253
MAX_SECRET_BYTES: Final = 1024 * 1024
