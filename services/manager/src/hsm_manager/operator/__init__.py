"""The kopf operator: handlers (thin), the sync worker queue, pool and agent reconciliation, metrics."""
