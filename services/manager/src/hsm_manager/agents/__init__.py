"""Agents as the manager sees them: where they run (registry), how to trust them (pki), their change feed."""
