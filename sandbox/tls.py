"""A throw-away local certificate authority for the HTTPS emulators.

The real vendor clients hard-code ``https://`` (simple-salesforce rebuilds every URL
with it), so the emulators must speak TLS. ``LocalCA`` writes a CA certificate the
clients can trust (``ca_path``) and a server certificate for 127.0.0.1/localhost.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")


class LocalCA:
    """CA + server certificate kept in ``directory``.

    Existing files are reused so a restarted sandbox keeps the CA that clients
    (and other processes) were already told to trust.
    """

    CA_FILE = "ca.pem"
    SERVER_FILE = "server.pem"  # server private key followed by its certificate chain

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = self.directory / self.CA_FILE
        self.server_pem_path = self.directory / self.SERVER_FILE
        if not (self.ca_path.is_file() and self.server_pem_path.is_file()):
            self._create()

    def _create(self) -> None:
        ca = trustme.CA(organization_name="dealsync sandbox")
        leaf = ca.issue_cert(*SERVER_NAMES)
        # Write the key first with private permissions; the CA file last, because
        # its presence is what marks the directory as complete.
        _write_private(self.server_pem_path, leaf.private_key_and_cert_chain_pem.bytes())
        self.ca_path.write_bytes(ca.cert_pem.bytes())

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.server_pem_path))
        return ctx

    def __repr__(self) -> str:
        return f"LocalCA({str(self.directory)!r})"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
