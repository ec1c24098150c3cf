"""``kubectl hsm``: secrets on HSMs through the hsm-secrets-operator REST API."""
