# -*- test-case-name: tests.test_tls -*-
"""
Building Twisted TLS options for STARTTLS and implicit TLS from PEM files.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    KeyPair,
    PrivateCertificate,
    TLSVersion,
)


def _readPEM(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read the TLS {what} {str(path)!r}: {e}") from e


def tlsOptionsFromFiles(
    certificate: str | Path,
    privateKey: str | Path | None = None,
    chain: str | Path | None = None,
    *,
    minimumVersion: TLSVersion = TLSVersion.TLSv1_2,
) -> CertificateOptions:
    """
    Make the C{tls_context} of a server from PEM files.

    @param certificate: The server certificate (PEM). It may also hold the
        private key and the chain, in which case the other files are not
        needed.
    @param privateKey: The private key (PEM), unless it is in
        C{certificate}.
    @param chain: Intermediate certificates (PEM) to send after the server
        certificate, if any are not in C{certificate}.
    @param minimumVersion: The oldest TLS version accepted; TLS 1.2 by
        default (RFC 8996 deprecates older ones).
    @return: Options for L{SMTP}'s C{tls_context} (or any Twisted TLS API).
    @raise ValueError: If a file cannot be read or holds no usable
        certificate or key.
    """
    certPEM = _readPEM(certificate, "certificate")
    keyPEM = certPEM if privateKey is None else _readPEM(privateKey, "private key")
    chainPEM = _readPEM(chain, "chain") if chain is not None else b""
    try:
        server = PrivateCertificate.load(
            certPEM, KeyPair.load(keyPEM, format=1), format=1
        )
    except Exception as e:
        raise ValueError(f"no usable certificate and private key: {e}") from e
    if chain is not None and not _pemBlocks(chainPEM, b"CERTIFICATE"):
        raise ValueError(f"no certificate in the TLS chain file {str(chain)!r}")
    extra = []
    for blob in (certPEM, chainPEM):
        for piece in _pemBlocks(blob, b"CERTIFICATE"):
            try:
                cert = Certificate.loadPEM(piece)
            except Exception as e:
                raise ValueError(f"a malformed certificate in the TLS files: {e}")
            if cert.dump() != server.dump():
                extra.append(cert.original)
    return CertificateOptions(
        privateKey=server.privateKey.original,
        certificate=server.original,
        extraCertChain=extra or None,
        raiseMinimumTo=minimumVersion,
    )


def _pemBlocks(blob: bytes, kind: bytes) -> list[bytes]:
    """
    Split out every PEM block of one kind.
    """
    begin = b"-----BEGIN " + kind + b"-----"
    end = b"-----END " + kind + b"-----"
    blocks = []
    start = blob.find(begin)
    while start >= 0:
        stop = blob.find(end, start)
        if stop < 0:
            break
        stop += len(end)
        blocks.append(blob[start:stop] + b"\n")
        start = blob.find(begin, stop)
    return blocks
