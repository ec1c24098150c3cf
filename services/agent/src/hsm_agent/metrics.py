"""The agent's Prometheus metrics, in a registry of their own (one per agent, so tests can run several)."""

from __future__ import annotations

import prometheus_client as prom

from hsm_agent.store import budget


class Metrics:
    """Every metric the agent exports; names start with ``hsm_agent_``."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.pkcs11_calls = prom.Counter(
            "hsm_agent_pkcs11_calls",
            "PKCS#11 calls by operation and result",
            ["operation", "result"],
            registry=r,
        )
        self.pkcs11_seconds = prom.Histogram(
            "hsm_agent_pkcs11_call_seconds",
            "PKCS#11 call latency by operation",
            ["operation"],
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.grpc_requests = prom.Counter(
            "hsm_agent_grpc_requests",
            "gRPC requests by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.grpc_seconds = prom.Histogram(
            "hsm_agent_grpc_request_seconds", "gRPC request latency by method", ["method"], registry=r
        )
        self.index_size = prom.Gauge(
            "hsm_agent_index_entries", "Heads in the index (tombstones included)", registry=r
        )
        self.connected = prom.Gauge("hsm_agent_connected", "1 when logged in to the token", registry=r)
        self.login_attempts = prom.Counter("hsm_agent_login_attempts", "Login attempts", registry=r)
        self.login_failures = prom.Counter(
            "hsm_agent_login_failures", "Logins the token refused", ["reason"], registry=r
        )
        self.leftovers = prom.Counter(
            "hsm_agent_leftovers_collected", "Leftover objects destroyed", registry=r
        )
        self.garbage_pending = prom.Gauge(
            "hsm_agent_garbage_pending",
            "Superseded objects still on the token, waiting for the background collector",
            registry=r,
        )
        self.garbage_collected = prom.Counter(
            "hsm_agent_garbage_collected",
            "Superseded objects the collector destroyed (result failed: left for the next scan)",
            ["result"],
            registry=r,
        )
        self.rescans = prom.Counter(
            "hsm_agent_rescans",
            "Periodic and requested looks at the token (result unchanged: no full rescan was needed)",
            ["result"],
            registry=r,
        )
        self.recoveries = prom.Counter(
            "hsm_agent_recoveries", "Reconnections after the token was lost", registry=r
        )
        self.tls_reloads = prom.Counter(
            "hsm_agent_tls_reloads",
            "Changed TLS files read at a handshake (result refused: unusable, the previous ones kept)",
            ["result"],
            registry=r,
        )
        self.certificate_expiry = prom.Gauge(
            "hsm_agent_certificate_expiry_timestamp_seconds",
            "notAfter of each certificate served (role serving) or trusted for clients (role client-ca)",
            ["role", "subject", "serial"],
            registry=r,
        )

        self.objects_max = prom.Gauge("hsm_agent_objects_max", "Object budget of the token", registry=r)
        self.objects_used = prom.Gauge(
            "hsm_agent_objects_used", "Objects on the token (all of them, not only ours)", registry=r
        )
        self.objects_free = prom.Gauge(
            "hsm_agent_objects_free", "Objects a new secret may still take", registry=r
        )
        self.objects_own = prom.Gauge(
            "hsm_agent_objects_own", "Objects of this project (records, chunks, ledger)", registry=r
        )
        self.bytes_own = prom.Gauge("hsm_agent_bytes_own", "Bytes of this project's objects", registry=r)
        self.memory_total = prom.Gauge(
            "hsm_agent_token_memory_total_bytes",
            "Private memory of the token, where it reports it",
            registry=r,
        )
        self.memory_free = prom.Gauge(
            "hsm_agent_token_memory_free_bytes", "Free private memory, where the token reports it", registry=r
        )

        self.readers = prom.Gauge(
            "hsm_agent_readers", "Readers following this agent for their copies (API workers)", registry=r
        )
        self.readers_cut_off = prom.Counter(
            "hsm_agent_readers_cut_off",
            "Readers cut off for not acknowledging a change in time (each made a write wait out its lease)",
            registry=r,
        )

    def publish_capacity(self, capacity: budget.Capacity) -> None:
        self.objects_max.set(capacity.max_objects)
        self.objects_used.set(capacity.used_objects)
        self.objects_free.set(capacity.free_objects)
        self.objects_own.set(capacity.own_objects)
        self.bytes_own.set(capacity.own_bytes)
        if capacity.total_memory is not None:
            self.memory_total.set(capacity.total_memory)
        if capacity.free_memory is not None:
            self.memory_free.set(capacity.free_memory)

    def observe_pkcs11(self, operation: str, result: str, seconds: float) -> None:
        self.pkcs11_calls.labels(operation, result).inc()
        self.pkcs11_seconds.labels(operation).observe(seconds)

    def pkcs11_total(self) -> float:
        """Sum of PKCS#11 calls so far (tests and the benchmark count calls with it)."""
        return sum(
            sample.value
            for metric in self.pkcs11_calls.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
