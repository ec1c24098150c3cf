"""Mirroring: the operations on the secrets of an HSMDevice's devices, as one service over the gateway.

The REST API's routes and the operator's repair loop call these; they speak neither HTTP nor gRPC.
"""
