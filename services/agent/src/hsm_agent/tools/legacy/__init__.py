"""``hsm-agent import-legacy``: secrets of the Go hsm-secrets-operator's layout into ours, on one token.

golayout knows the Go layout, inputs reads the user's mapping and known-paths files, plan decides (pure)
what each legacy path becomes, run carries a plan out against the store, cli is the command line.
"""
