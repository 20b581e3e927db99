"""Real TLS servers for the TLS, mTLS and HTTP/2 tests, each started and always stopped.

`Pki` makes a throwaway CA, a server certificate for 127.0.0.1 and a client certificate
with trustme (no openssl calls) and writes the PEM files a user would pass to
`--cacert/--cert/--key`. `HttpsServer` is the standard library's threading HTTP/1.1 server
behind TLS, optionally requiring a client certificate (ssl.CERT_REQUIRED) the way nginx's
`ssl_verify_client on` does: it completes or refuses the handshake itself and sends the
TLS alert. `H2Server` is hypercorn serving a tiny ASGI app over TLS with h2 and http/1.1
offered by ALPN; its app counts requests by the protocol version the server saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme


class Pki:
    """CA, server and client certificates as PEM files in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.client = self.ca.issue_cert("loadbench-client@example.test")
        folder.mkdir(parents=True, exist_ok=True)
        self.cacert = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.cacert))
        self.server_cert = folder / "server.pem"
        self.server.private_key_and_cert_chain_pem.write_to_path(str(self.server_cert))
        self.client_cert = folder / "client.pem"
        for index, blob in enumerate(self.client.cert_chain_pems):
            blob.write_to_path(str(self.client_cert), append=index > 0)
        self.client_key = folder / "client.key"
        self.client.private_key_pem.write_to_path(str(self.client_key))

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.configure_cert(context)
        if require_client_cert:
            self.ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a load test expects

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self.server.clients["certificate" if self.connection.getpeercert() else "none"] += 1
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.clients: Counter[str] = Counter()  # requests with a client certificate or none
        self.refused: list[str] = []  # why handshakes failed, as the server saw it

    def finish_request(self, request, client_address) -> None:
        """The handshake in the connection's own thread; a refused one sends its alert
        and the connection is drained before it closes, so the client reads the alert
        instead of a reset."""
        tls = self.context.wrap_socket(request, server_side=True,
                                       do_handshake_on_connect=False)
        try:
            tls.settimeout(5.0)
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.refused.append(getattr(exc, "reason", None) or str(exc))
            with contextlib.suppress(OSError), socket.socket(fileno=tls.detach()) as raw:
                raw.settimeout(1.0)
                while raw.recv(65536):  # lingering close: no reset over the alert
                    pass
            return
        tls.settimeout(None)
        super().finish_request(tls, client_address)


class HttpsServer:
    """`with HttpsServer(context) as server:` a real HTTPS server on a free port."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.httpd = _TlsHttpServer(context)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def clients(self) -> Counter[str]:
        return self.httpd.clients

    @property
    def refused(self) -> list[str]:
        return self.httpd.refused

    def url(self, path: str = "/ok") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HttpsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)
        if self._thread.is_alive():
            raise RuntimeError("HTTPS server thread did not stop")


class H2Server:
    """hypercorn over TLS offering h2 and http/1.1 by ALPN; `requests` counts requests by
    the HTTP version hypercorn saw ("2", "1.1")."""

    def __init__(self, pki: Pki, require_client_cert: bool = False) -> None:
        self.pki = pki
        self.require_client_cert = require_client_cert
        self.requests: Counter[str] = Counter()
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hypercorn", daemon=True)

    async def app(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.requests[scope["http_version"]] += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})

    def url(self, path: str = "/ok") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile = str(self.pki.server_cert)
        config.keyfile = str(self.pki.server_cert)
        config.alpn_protocols = ["h2", "http/1.1"]
        if self.require_client_cert:  # refused with no alert the client could read
            config.ca_certs = str(self.pki.cacert)
            config.verify_mode = ssl.CERT_REQUIRED
        config.accesslog = config.errorlog = None
        config.graceful_timeout = 0.5
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        try:
            self._loop.run_until_complete(serve(self.app, config,
                                                shutdown_trigger=self._stop.wait))
        except BaseException as exc:  # noqa: BLE001 - reported by __enter__
            self._failed = exc
            self._ready.set()
        finally:
            self._loop.close()

    def __enter__(self) -> H2Server:
        self._thread.start()
        for _ in range(200):
            if self._failed is not None:
                raise RuntimeError(f"hypercorn did not start: {self._failed!r}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.1):
                return self
            threading.Event().wait(0.025)
        self.__exit__()
        raise RuntimeError("hypercorn did not start listening in 5 s")

    def __exit__(self, *exc) -> None:
        if self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError("hypercorn thread did not stop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
