"""Local Kubernetes for tests and the demo: a control plane built from Go modules and real nodes."""
