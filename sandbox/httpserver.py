"""The HTTPS plumbing every vendor emulator shares.

An emulator subclasses `HttpsEmulator` and implements `handle(method, raw_path,
headers, body) -> Response`; this module serves it on 127.0.0.1 with TLS from the
sandbox's local CA, one thread per connection, keep-alive, and a clean stop.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sandbox.faults import TRANSPORT, FaultPlan, request_key
from sandbox.tls import LocalCA

FAULTS_PATH = "/__sandbox/faults"


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    headers: dict | None = None


class HttpsEmulator:
    """Lifecycle of an emulator's HTTPS server: start() in a background thread, stop(), `with`."""

    def __init__(self, *, ca: LocalCA, host: str = "127.0.0.1", port: int = 0, name: str = "emulator"):
        self.ca, self.host, self.port, self.name = ca, host, port, name
        self.url = ""
        self.world = None          # the sandbox.world.World it shares a clock with, if any
        self.requests_served = 0   # for tests that act at a point of a sync (a kill, say)
        self.faults: FaultPlan | None = None   # seeded faults (sandbox/faults.py); None: none
        self._count_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, method: str, raw_path: str, headers, body: bytes) -> Response:
        raise NotImplementedError

    # ----------------------------------------------------------------- faults

    def vendor_fault_kinds(self, method: str, raw_path: str) -> tuple[str, ...]:
        """The vendor faults (sandbox.faults.VENDOR) this request can meet."""
        return ()

    def vendor_fault(self, kind: str, method: str, raw_path: str, headers, body: bytes) -> Response:
        """The answer to this request under vendor fault `kind`."""
        raise NotImplementedError(kind)

    def fault_response(self, status: int, headers: dict) -> Response:
        """A transport fault's 503 or 429, in the vendor's error shape."""
        return Response(status, json.dumps({"error": "sandbox fault"}).encode(), headers=headers)

    def take_fault(self, method: str, raw_path: str, headers, body: bytes) -> str | None:
        plan = self.faults
        if plan is None or raw_path.startswith("/__sandbox/"):
            return None
        key = request_key(method, raw_path, headers.get("Content-Type") or "", body)
        return plan.decide(self.name, key, self.vendor_fault_kinds(method, raw_path))

    def _faults_control(self, method: str, body: bytes) -> Response:
        """POST /__sandbox/faults {"seed": 1, "rate": 0.1, ...} sets a plan, {} removes it;
        GET answers the plan and what it injected."""
        if method == "POST":
            try:
                args = json.loads(body or b"{}")
                self.faults = FaultPlan.from_json(args) if args else None
            except (ValueError, TypeError) as exc:
                return Response(400, json.dumps({"error": str(exc)}).encode())
        plan = self.faults
        return Response(200, json.dumps(plan.describe() if plan else {}).encode())

    def start(self):
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.url = f"https://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-emulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, emulator: HttpsEmulator):
        self.emulator = emulator
        self.ssl_context = emulator.ca.server_context()
        self._connections: dict = {}           # open TLS socket -> the thread serving it
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn, open_: bool) -> None:
        with self._conn_lock:
            if open_:
                self._connections[conn] = threading.current_thread()
            else:
                self._connections.pop(conn, None)

    def close_connections(self, timeout: float = 2.0) -> None:
        """Unblock and wait for keep-alive handler threads so stop() leaves nothing running."""
        with self._conn_lock:
            conns = list(self._connections.items())
        for conn, _ in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in conns:
            thread.join(timeout)

    def handle_error(self, request, client_address) -> None:
        # Clients hanging up or failing the TLS handshake are routine, not worth a traceback.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"        # keep-alive: requests reuses connections
    timeout = 60                         # an idle keep-alive connection is dropped after this
    # Headers and body leave in one write (flushed after each request) and without Nagle:
    # separate small writes otherwise meet the client's delayed ACK, ~40 ms per request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        # The TLS handshake happens here, in the connection's own thread, so a slow or
        # broken client can't stall the accept loop.
        self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
        self.server.track(self.request, True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, False)
            self.request.close()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator = self.server.emulator
        with emulator._count_lock:
            emulator.requests_served += 1
        if self.path.partition("?")[0] == FAULTS_PATH:
            return self._send(emulator._faults_control(self.command, body))
        fault = emulator.take_fault(self.command, self.path, self.headers, body)
        if fault in TRANSPORT:
            return self._transport_fault(fault, emulator, body)
        if fault is not None:
            return self._send(emulator.vendor_fault(fault, self.command, self.path, self.headers, body))
        self._send(emulator.handle(self.command, self.path, self.headers, body))

    def _send(self, resp: Response, cut_body_at: int | None = None) -> None:
        self.send_response(resp.status)
        for name, value in (resp.headers or {}).items():
            self.send_header(name, value)
        if resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.status != 204:
            self.wfile.write(resp.body[:cut_body_at])

    def _transport_fault(self, kind: str, emulator: HttpsEmulator, body: bytes) -> None:
        # Every transport fault but a refusal leaves the connection unusable, as it would be.
        plan = emulator.faults
        if kind in ("server_error", "rate_limited"):
            status = 503 if kind == "server_error" else 429
            return self._send(emulator.fault_response(status, {"Retry-After": f"{plan.retry_after:g}"}))
        self.close_connection = True
        if kind == "timeout":
            # Wait for the client to give up and close (readable at EOF), rather than sleep blind.
            select.select([self.connection], [], [], plan.hold_seconds)
        elif kind == "truncated":
            resp = emulator.handle(self.command, self.path, self.headers, body)
            if resp.status != 204 and len(resp.body) > 1:
                self._send(resp, cut_body_at=len(resp.body) // 2)
                self.wfile.flush()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format, *args) -> None:
        pass                             # request_log is the record; stderr stays quiet
