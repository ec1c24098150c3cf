"""Every service's /metrics: HTTPS only, for callers the API server says may ``get /metrics``."""
