"""The ImportLegacy RPC against a real agent on a SoftHSM2 token in the Go operator's layout
(legacy_token.py): the plan, the import, reruns, removal, a call the caller cancels, and the checks of
its input."""

from __future__ import annotations

import base64

import grpc
import pytest

from hsm_agent.tools.legacy import run
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

from . import legacy_token

PIN = "1234"
PATHS = 30


@pytest.fixture
def legacy(softhsm) -> legacy_token.LegacyFixture:
    # Written before the agent starts: populate() reinitialises the process's PKCS#11 library.
    return legacy_token.populate(softhsm.label, PIN, PATHS)


@pytest.fixture
def agent_stub(softhsm, legacy, start_agent):  # type: ignore[no-untyped-def]
    service = start_agent(softhsm)
    with grpc.insecure_channel(f"127.0.0.1:{service.port}", options=channel.channel_options()) as chan:
        yield channel.agent_stub(chan)


def request(legacy: legacy_token.LegacyFixture, **fields) -> hsm_pb2.ImportLegacyRequest:  # type: ignore[no-untyped-def]
    known = [hsm_pb2.KnownLegacyPath(path=path, keys=keys) for path, keys in legacy.known.items()]
    fields.setdefault("namespace", "prod")
    return hsm_pb2.ImportLegacyRequest(known_paths=known, **fields)


def by_path(response: hsm_pb2.ImportLegacyResponse) -> dict[str, hsm_pb2.LegacyPathResult]:
    return {result.legacy_path: result for result in response.paths}


def having(response: hsm_pb2.ImportLegacyResponse, field: str, value: str) -> set[str]:
    return {result.legacy_path for result in response.paths if getattr(result, field) == value}


def read(stub, path: str) -> hsm_pb2.ReadSecretResponse:  # type: ignore[no-untyped-def]
    return stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=path), timeout=10)


def live_paths(stub) -> list[str]:  # type: ignore[no-untyped-def]
    return list(stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix=""), timeout=10).paths)


def test_the_plan_names_every_legacy_path_and_writes_nothing(agent_stub, legacy) -> None:
    response = agent_stub.ImportLegacy(request(legacy), timeout=60)
    assert (response.applied, response.legacy_objects) == (False, legacy.objects)
    assert having(response, "status", "ready") == having(response, "outcome", "would-import") == legacy.ready
    assert having(response, "status", "incomplete") == set(legacy.incomplete)
    assert having(response, "status", "ambiguous") == legacy.ambiguous_paths
    assert having(response, "status", "invalid") == legacy.invalid
    assert {item.label for item in response.undecided} == legacy.ambiguous_labels
    entry = by_path(response)["team-0/app-003"]
    assert (entry.target, dict(entry.sizes)) == ("prod/team-0/app-003", {"ca.crt": 46, "data": 40})
    assert list(by_path(response)["half-0/svc"].missing_keys) == ["password"]
    assert live_paths(agent_stub) == []


def test_the_response_never_holds_a_value(agent_stub, legacy) -> None:
    raw = agent_stub.ImportLegacy(request(legacy), timeout=60).SerializeToString()
    values = [value for data in legacy.secrets.values() for value in data.values() if len(value) >= 8]
    assert not [value for value in values if value in raw or base64.b64encode(value) in raw]
    assert b"user-10" not in raw


def test_apply_imports_every_ready_path_byte_for_byte_with_its_metadata(agent_stub, legacy) -> None:
    response = agent_stub.ImportLegacy(request(legacy, apply=True), timeout=60)
    assert having(response, "outcome", "imported") == legacy.ready
    for path in legacy.ready:
        secret = read(agent_stub, f"prod/{path}")
        assert dict(secret.secret_data.data) == legacy.secrets[path]
        meta = legacy.metadata.get(path)
        if meta is not None:
            assert (secret.metadata.description, dict(secret.metadata.labels)) == (
                meta["description"],
                meta["labels"],
            )
    entry = agent_stub.GetChecksum(hsm_pb2.GetChecksumRequest(path="prod/plain"), timeout=10)
    assert entry.writer == run.WRITER
    assert sorted(live_paths(agent_stub)) == sorted(f"prod/{path}" for path in legacy.ready)


def test_a_rerun_finds_every_path_imported_and_removes_the_legacy_objects_when_asked(
    agent_stub, legacy
) -> None:
    agent_stub.ImportLegacy(request(legacy, apply=True), timeout=60)
    again = agent_stub.ImportLegacy(request(legacy, apply=True, remove_legacy=True), timeout=60)
    assert having(again, "outcome", "already-imported") == legacy.ready
    removed = sum(by_path(again)[path].legacy_removed for path in legacy.ready)
    assert removed == sum(by_path(again)[path].legacy_objects for path in legacy.ready) > 0
    last = agent_stub.ImportLegacy(request(legacy, apply=True, remove_legacy=True), timeout=60)
    assert not set(by_path(last)) & legacy.ready
    assert last.legacy_objects == legacy.objects - removed
    assert all(
        dict(read(agent_stub, f"prod/{p}").secret_data.data) == legacy.secrets[p] for p in legacy.ready
    )


def test_a_mapping_sends_each_prefix_to_its_namespace_and_the_rest_to_the_fallback(
    agent_stub, legacy
) -> None:
    mapping = {"team-0": "zero", "team-0/app-003": "special"}
    response = agent_stub.ImportLegacy(request(legacy, namespace="", mapping=mapping), timeout=60)
    paths = by_path(response)
    assert paths["team-0/app-000"].target == "zero/team-0/app-000"
    assert paths["team-0/app-003"].target == "special/team-0/app-003"
    assert (paths["team-1/app-001"].target, paths["team-1/app-001"].status) == ("", "unmapped")


def test_half_written_paths_are_imported_only_when_asked(agent_stub, legacy) -> None:
    plain = agent_stub.ImportLegacy(request(legacy, apply=True), timeout=60)
    assert {by_path(plain)[path].outcome for path in legacy.incomplete} == {"skipped"}
    asked = agent_stub.ImportLegacy(request(legacy, apply=True, import_incomplete=True), timeout=60)
    assert {by_path(asked)[path].outcome for path in legacy.incomplete} == {"imported"}
    assert dict(read(agent_stub, "prod/half-0/svc").secret_data.data) == {"username": b"half-0"}


def test_a_call_its_caller_cancels_is_finished_by_the_next_one(agent_stub, legacy) -> None:
    call = agent_stub.ImportLegacy.future(request(legacy, apply=True, remove_legacy=True), timeout=60)
    call.cancel()
    # Wherever the cancel caught it (before the call, after some paths or after the last), a rerun converges.
    rerun = agent_stub.ImportLegacy(request(legacy, apply=True, remove_legacy=True), timeout=60)
    assert {by_path(rerun)[path].outcome for path in set(by_path(rerun)) & legacy.ready} <= {
        "imported",
        "already-imported",
    }
    final = agent_stub.ImportLegacy(request(legacy, apply=True, remove_legacy=True), timeout=60)
    assert not set(by_path(final)) & legacy.ready
    assert sorted(live_paths(agent_stub)) == sorted(f"prod/{path}" for path in legacy.ready)
    assert all(
        dict(read(agent_stub, f"prod/{p}").secret_data.data) == legacy.secrets[p] for p in legacy.ready
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"remove_legacy": True}, "remove_legacy needs apply: legacy objects are removed only once imported"),
        ({"namespace": "Prod"}, "namespace: "),
        ({"namespace": "a/b"}, "namespace: a namespace is one path segment, got 'a/b'"),
        ({"mapping": {"team-0": "Bad_NS"}}, "mapping for 'team-0': "),
        ({"mapping": {"/": "prod"}}, "a mapping prefix must name a legacy path (it is empty)"),
        ({"namespace": "x\n"}, "namespace must be printable and at most 1024 bytes"),
    ],
)
def test_unusable_input_is_an_invalid_argument_saying_what_is_wrong(
    agent_stub, legacy, fields, message
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        agent_stub.ImportLegacy(request(legacy, **fields), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(message)
    assert live_paths(agent_stub) == []


def test_a_known_path_without_a_name_is_an_invalid_argument(agent_stub, legacy) -> None:
    bad = hsm_pb2.ImportLegacyRequest(namespace="prod", known_paths=[hsm_pb2.KnownLegacyPath(path="/")])
    with pytest.raises(grpc.RpcError) as caught:
        agent_stub.ImportLegacy(bad, timeout=30)
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "known path 1: no path",
    )
