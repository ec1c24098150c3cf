"""hsm-manager service."""
