"""Command-line tools that work on a token directly, without Kubernetes: selftest and import-legacy."""
