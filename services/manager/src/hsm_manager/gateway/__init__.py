"""The manager's only way to its agents: endpoints, mutual TLS, one typed client and its error tree.

Nothing else in the manager imports grpc or the generated contract (an import contract enforces it).
"""
