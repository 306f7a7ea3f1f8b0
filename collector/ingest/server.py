"""The HTTPS endpoint agents enrol with, ship events to and fetch policy from (docs/agent-protocol.md).

Built on the standard library's threading HTTP server wrapped in TLS, because the handler can then
read the *verified* client certificate of the connection and take the agent's identity from it;
nothing in a request body is trusted for identity. The TLS handshake runs on the connection's own
thread (not in the accept loop), so a slow or hostile client cannot stall everyone else.

Acknowledgement rule: ``200`` only after the store returned from its write, so a crash at any point
before that leaves the batch in the agent's spool to be sent again (and deduplicated by event.id).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig
from collector.ingest.batch import BadEncoding, BodyTooLarge, gunzip_limited, parse_ndjson, stamp_agent
from collector.ingest.ca import CertificateAuthority, CSRError
from collector.ingest.policy import PolicyStore
from collector.ingest.ratelimit import open_limiter
from collector.ingest.registry import AgentRecord, Registry, TokenRefused
from collector.metrics import CollectorMetrics
from collector.pipeline.runner import Pipeline
from collector.sockets import share_port
from collector.store.base import StoreError
from soc_common.ecs import parse_ts

SENT_AT_HEADER = "X-Soc-Sent-At"  # the agent's clock when it sent the batch (optional: older agents omit it)

log = logging.getLogger(__name__)

ENROLL_MAX_BYTES = 64 * 1024
PROTOCOL_VERSION = 1


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class IngestStats:
    requests: int = 0
    batches: int = 0
    enrolled: int = 0


class _TLSHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("ingest connection from %s ended with an error", client_address, exc_info=True)


class IngestServer:
    """``IngestServer(config, pipeline).start()`` -> bound port; ``.stop()``."""

    def __init__(
        self,
        config: CollectorConfig,
        pipeline: Pipeline,
        *,
        registry: Registry | None = None,
        ca: CertificateAuthority | None = None,
        metrics: CollectorMetrics | None = None,
        reuse_port: bool = False,
        limits_dir: Path | None = None,
    ) -> None:
        """``limits_dir``: in an ingest worker, where the workers share their rate-limit buckets."""
        self.config = config
        self.settings = config.ingest
        self.reuse_port = reuse_port  # an ingest worker: the port is shared (collector.sockets)
        self.pipeline = pipeline
        self.metrics = metrics or pipeline.metrics
        self.ca = ca or CertificateAuthority(config.ca_dir)
        self._own_registry = registry is None
        self.registry = registry or Registry(config.registry_path)
        self.policies = PolicyStore(config.policy_dir)
        # Per agent, and failed enrolment attempts per client IP (slows down token guessing); in an
        # ingest worker both are shared with the other workers, so the limits hold per collector.
        self.limiter = open_limiter("agents", self.settings.rate_limit_eps, self.settings.rate_limit_burst, limits_dir)
        self.enroll_limiter = open_limiter("enrolments", 0.5, 30, limits_dir)
        self.metrics.watch_clock_skew(self.registry.clock_skew_snapshot)
        self.stats = IngestStats()
        self._agents: dict[str, tuple[float, AgentRecord | None]] = {}
        self._server: _TLSHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()
        self.started_at = time.time()

    # -- TLS -----------------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        if self.settings.server_cert and self.settings.server_key:
            cert, key = self.settings.server_cert, self.settings.server_key
        else:
            cert, key = self.ca.ensure_server_cert(self.config.tls_dir, self.settings.server_names)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(cafile=str(self.ca.cert_path))
        ctx.verify_mode = ssl.CERT_OPTIONAL  # enrolment has no certificate yet; other endpoints demand one
        return ctx

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> int:
        handler = _make_handler(self)
        server = _TLSHTTPServer((self.settings.host, self.settings.port), handler, bind_and_activate=False)
        if ":" in self.settings.host:
            server.address_family = socket.AF_INET6
            server.socket = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        if self.reuse_port:
            share_port(server.socket)
        server.server_bind()
        server.server_activate()
        server.socket = self.ssl_context().wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="ingest", daemon=True)
        self._thread.start()
        self._flusher = threading.Thread(target=self._flush_loop, name="ingest-last-seen", daemon=True)
        self._flusher.start()
        log.info("agent ingest listening on https://%s:%d", self.settings.host, self.port)
        return self.port

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
        if self._flusher:
            self._flusher.join(timeout=10)
        if self._own_registry:
            self.registry.close()
        else:
            self.registry.flush_last_seen()

    def _flush_loop(self) -> None:
        while not self._stopping.wait(10.0):
            try:
                self.registry.flush_last_seen()
            except Exception:
                log.exception("could not record agents' last_seen")

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "protocol": PROTOCOL_VERSION,
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }

    # -- identity ------------------------------------------------------------------------------
    def agent_for(self, peer_cert: dict[str, Any] | None) -> AgentRecord:
        """The enrolled, unrevoked agent a verified client certificate belongs to, or an HTTP error."""
        if not peer_cert:
            raise _HttpError(401, "client certificate required")
        agent_id = _common_name(peer_cert)
        serial = str(peer_cert.get("serialNumber", ""))
        if not agent_id:
            raise _HttpError(401, "client certificate has no agent id")
        now = time.monotonic()
        cached = self._agents.get(agent_id)
        if cached is None or cached[0] < now:
            record = self.registry.get_agent(agent_id)
            self._agents[agent_id] = (now + self.settings.agent_cache_seconds, record)
        else:
            record = cached[1]
        if record is None:
            raise _HttpError(403, "unknown agent")
        if record.revoked_at is not None:
            raise _HttpError(403, "agent revoked")
        try:
            same = int(serial, 16) == int(record.cert_serial, 16)
        except ValueError:
            same = False
        if not same:
            raise _HttpError(403, "certificate superseded")
        return record

    def note_sent_at(self, agent_id: str, sent_at: str | None, received: float) -> None:
        """Clock skew of an agent from its batch's send time; agents without the header are skipped."""
        if not sent_at:
            return
        try:
            sent = parse_ts(sent_at[:64]).timestamp()
        except (ValueError, TypeError, OverflowError):
            self.metrics.bad_sent_at.inc()
            return
        self.registry.note_clock_skew(agent_id, round(sent - received, 3))

    def forget_agent(self, agent_id: str) -> None:
        """Drop a cached registry record (after a revocation through this process)."""
        self._agents.pop(agent_id, None)

    # -- endpoints -----------------------------------------------------------------------------
    def enroll(self, body: bytes, client_ip: str) -> dict[str, Any]:
        try:
            request = json.loads(body)
        except ValueError:
            raise _HttpError(400, "body is not JSON") from None
        if not isinstance(request, dict):
            raise _HttpError(400, "body must be a JSON object")
        fields = {k: request.get(k) for k in ("token", "hostname", "csr", "os", "agent_version")}
        for key in ("token", "hostname", "csr"):
            if not isinstance(fields[key], str) or not fields[key]:
                raise _HttpError(400, f"missing '{key}'")
        hostname = str(fields["hostname"])[:255]
        if (wait := self.enroll_limiter.admit(client_ip, 0)) > 0:
            raise _HttpError(429, "too many failed enrolments", {"Retry-After": str(wait)})
        csr = str(fields["csr"])
        try:
            agent, cert = self.registry.enroll(
                str(fields["token"]),
                hostname=hostname,
                os_name=str(fields["os"])[:64] if fields["os"] else None,
                version=str(fields["agent_version"])[:64] if fields["agent_version"] else None,
                issue=lambda agent_id: self.ca.issue_client(csr, agent_id, self.settings.client_cert_days),
            )
        except TokenRefused:
            self.enroll_limiter.admit(client_ip, 1)
            raise _HttpError(401, "enrolment token unknown, expired or used up") from None
        except CSRError as exc:
            raise _HttpError(400, str(exc)) from None
        self.stats.enrolled += 1
        log.info("agent %s enrolled: host %s site %s from %s", agent.id, hostname, agent.site, client_ip)
        _version, policy = self.policies.policy_for(agent.id, agent.site)
        return {
            "agent_id": agent.id,
            "certificate": cert.pem,
            "ca": self.ca.pem,
            "site": agent.site,
            "policy": policy,
        }

    def ingest(self, agent: AgentRecord, body: bytes, encoding: str) -> dict[str, Any]:
        limit = self.settings.max_decompressed_bytes
        if encoding == "gzip":
            try:
                body = gunzip_limited(body, limit)
            except BodyTooLarge as exc:
                raise _HttpError(413, str(exc)) from None
            except BadEncoding as exc:
                raise _HttpError(400, str(exc)) from None
        elif encoding not in ("", "identity"):
            raise _HttpError(415, f"unsupported Content-Encoding '{encoding}'")
        elif len(body) > limit:
            raise _HttpError(413, f"body exceeds {limit} bytes")
        wait = self.limiter.admit(agent.id, body.count(b"\n") + 1)
        if wait:
            raise _HttpError(429, "rate limit exceeded", {"Retry-After": str(wait)})
        batch = parse_ndjson(body)
        m = self.metrics
        m.received.labels(source="agent").inc(len(batch.events) + len(batch.rejected))
        if batch.rejected:
            m.failed.labels(source="agent").inc(len(batch.rejected))
        stamp_agent(batch.events, agent.id, agent.site)
        rejected: list[tuple[int, str]] = list(batch.rejected)
        stored = duplicates = 0
        if batch.events:
            try:
                result = self.pipeline.handle(batch.events, source="agent")
            except StoreError as exc:
                log.warning(
                    "store unavailable, batch of %d from agent %s refused: %s",
                    len(batch.events),
                    agent.id,
                    exc,
                )
                raise _HttpError(503, "event store unavailable, retry later", {"Retry-After": "5"}) from None
            stored, duplicates = result.stored, result.duplicates
            for pos, reason in result.errors:
                index = batch.indexes[pos] if 0 <= pos < len(batch.indexes) else -1
                rejected.append((index, reason))
            rejected.sort()
        self.registry.touch(agent.id)
        self.stats.batches += 1
        return {
            "accepted": stored,
            "duplicates": duplicates,
            "rejected": [{"index": i, "error": e} for i, e in rejected],
        }


def _common_name(cert: dict[str, Any]) -> str | None:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _make_handler(server: IngestServer) -> type[BaseHTTPRequestHandler]:
    settings = server.settings
    metrics = server.metrics

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY: a reply goes out as headers then body, and with Nagle the body waited for the
        # agent's delayed ACK of the headers (tens of ms per batch on a keep-alive connection).
        disable_nagle_algorithm = True
        server_version = "soc-collector"
        sys_version = ""
        timeout = settings.request_timeout
        _tls_ok = False
        _body_read = False

        def setup(self) -> None:
            super().setup()
            try:
                self.connection.do_handshake()
                self._tls_ok = True
            except (ssl.SSLError, OSError) as exc:
                metrics.rejected_requests.labels(reason="tls_handshake").inc()
                log.info("TLS handshake with %s failed: %s", self.client_address[0], exc)

        def handle(self) -> None:
            if self._tls_ok:
                super().handle()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("ingest %s " + format, self.client_address[0], *args)

        # -- plumbing --------------------------------------------------------------------------
        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _fail(self, err: _HttpError) -> None:
            metrics.rejected_requests.labels(reason=str(err.status)).inc()
            self._reply(err.status, {"error": err.message}, err.headers)

        def _read_body(self, limit: int) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True
                raise _HttpError(411, "Content-Length required")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                raise _HttpError(411, "Content-Length required") from None
            if length < 0:
                self.close_connection = True
                raise _HttpError(400, "bad Content-Length")
            if length > limit:
                # Do not read it: answer and drop the connection.
                self.close_connection = True
                raise _HttpError(413, f"body exceeds {limit} bytes")
            body = self.rfile.read(length)
            self._body_read = True
            if len(body) != length:
                self.close_connection = True
                raise _HttpError(400, "body shorter than Content-Length")
            return body

        def _agent(self) -> AgentRecord:
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            return server.agent_for(peer)

        def _dispatch(self, method: str) -> None:
            server.stats.requests += 1
            self._body_read = False
            path = self.path.split("?", 1)[0]
            try:
                if method == "POST" and path == "/v1/events":
                    received = time.time()
                    agent = self._agent()
                    body = self._read_body(settings.max_request_bytes)
                    encoding = self.headers.get("Content-Encoding", "").strip().lower()
                    self._reply(200, server.ingest(agent, body, encoding))
                    server.note_sent_at(agent.id, self.headers.get(SENT_AT_HEADER), received)
                elif method == "POST" and path == "/v1/enroll":
                    body = self._read_body(ENROLL_MAX_BYTES)
                    self._reply(200, server.enroll(body, self.client_address[0]))
                elif method == "GET" and path == "/v1/policy":
                    agent = self._agent()
                    version, policy = server.policies.policy_for(agent.id, agent.site)
                    etag = f'"{version}"'
                    if etag in self.headers.get("If-None-Match", ""):
                        self._reply(304, None, {"ETag": etag})
                    else:
                        self._reply(200, {"version": version, "policy": policy}, {"ETag": etag})
                    server.registry.touch(agent.id)
                elif method == "GET" and path == "/v1/ca":
                    # Public by nature: the agent checks it against the operator's fingerprint
                    # before it sends its enrolment token.
                    self._reply(200, {"ca": server.ca.pem})
                elif method == "GET" and path == "/health":
                    self._reply(200, server.health())
                elif path.startswith("/v1/admin/"):
                    from collector.ingest.admin import handle_admin  # lazy: admin.py imports this module's types

                    self._reply(*handle_admin(server, self, method, path))
                else:
                    raise _HttpError(404 if path not in _KNOWN else 405, "not found")
            except _HttpError as err:
                if method == "POST" and not self._body_read:
                    self.close_connection = True  # body left unread: the stream is out of sync
                self._fail(err)
            except (ConnectionError, TimeoutError, ssl.SSLError):
                self.close_connection = True
            except Exception:
                log.exception("ingest request %s %s failed", method, path)
                self.close_connection = True
                self._fail(_HttpError(500, "internal error"))

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_GET(self) -> None:
            self._dispatch("GET")

    return Handler


_KNOWN = frozenset({"/v1/events", "/v1/enroll", "/v1/policy", "/v1/ca", "/health"})
