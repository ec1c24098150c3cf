"""The gRPC contract of the HSM agents (package ``hsm.v1``) and a channel helper."""
