"""Writing and deleting one path never touches a neighbour whose name shares a prefix."""

from __future__ import annotations

from hsmproto.v1 import hsm_pb2

NEIGHBOURS = ("ns/db-prod", "ns/dbx", "ns/db/x")


def test_write_and_delete_of_a_path_leave_its_neighbours_untouched(stub, softhsm, running) -> None:
    for path in NEIGHBOURS:
        stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data={"k": path.encode()}))
        )
    before = {p: stub.GetChecksum(hsm_pb2.GetChecksumRequest(path=p)).checksum for p in NEIGHBOURS}
    for value in (b"1", b"2"):
        stub.WriteSecret(
            hsm_pb2.WriteSecretRequest(path="ns/db", secret_data=hsm_pb2.SecretData(data={"k": value}))
        )
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/db"))
    for path in NEIGHBOURS:
        read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=path))
        assert (dict(read.secret_data.data), read.version, read.checksum) == (
            {"k": path.encode()},
            1,
            before[path],
        )
    running.store.collect()  # what the background collector does once writes pause, without waiting for it
    objects = softhsm.tool("list")
    records = [o["label"].split("@")[0] for o in objects if o["app"].endswith("/record")]
    assert sorted(records) == sorted(NEIGHBOURS)
    assert [o["app"] for o in objects if not o["app"].endswith("/record")] == ["hsm-secrets-operator/ledger"]
