"""Shared by every service: CRD models, name rules, checksums, constants, logging and settings."""
