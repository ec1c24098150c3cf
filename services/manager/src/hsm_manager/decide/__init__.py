"""Pure deciding functions of the operator: no I/O, no Kubernetes client, no gRPC."""
