"""hsm-agent service."""
