"""Keys, certificates and bundles for the signing tests: made with `cryptography` and signed by the
real `model_signing` library (no network: no Sigstore OIDC, no Rekor)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import model_signing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class KeyPair:
    private: Path  # PEM, PKCS#8
    public: Path  # PEM, SubjectPublicKeyInfo

    @property
    def public_pem(self) -> str:
        return self.public.read_text()


def make_key(folder: Path, name: str, curve: ec.EllipticCurve | None = None) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(curve or ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private, public)


def sign(model: Path, key: KeyPair, bundle: Path) -> Path:
    """Sign a folder (or a file) with the library, as a training job would."""
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key.private).sign(model, bundle)
    return bundle


@dataclass
class CertificateSigner:
    ca: Path  # the CA certificate the registry trusts
    key: Path  # the signing certificate's private key
    certificate: Path  # the signing certificate, issued by the CA


def make_ca_signer(folder: Path) -> CertificateSigner:
    """A CA and a code-signing certificate it issued (both valid from an hour ago, for a day)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Release CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "training-job")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=30)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    signer = CertificateSigner(folder / "ca.crt", folder / "leaf.pem", folder / "leaf.crt")
    signer.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    signer.certificate.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    signer.key.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return signer


def sign_with_certificate(model: Path, signer: CertificateSigner, bundle: Path) -> Path:
    model_signing.signing.Config().use_certificate_signer(
        private_key=signer.key, signing_certificate=signer.certificate, certificate_chain=[signer.ca]).sign(model, bundle)
    return bundle
