"""hsm-discovery service."""
