"""Certificates made for a run."""

import pathlib

from cryptography import x509
from cryptography.x509.oid import NameOID

from devcluster import pki


def test_server_cert_covers_loopback_and_admin_is_in_system_masters(tmp_path: pathlib.Path) -> None:
    paths = pki.Paths.under(tmp_path)
    pki.create(paths)
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    admin = x509.load_pem_x509_certificate(paths.admin_cert.read_bytes())
    orgs = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    admin.verify_directly_issued_by(ca)
    server.verify_directly_issued_by(ca)
    assert paths.ca_key.stat().st_mode & 0o077 == 0
