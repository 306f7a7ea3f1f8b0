"""The collector's admin API: ``/v1/admin/...`` on the ingest HTTPS server (docs/collector-admin.md).

The SOC API may run on another machine, so it manages agents, enrolment tokens and policy layers
through this API instead of opening the registry file. Callers authenticate with a dedicated admin
credential, never an agent certificate: either a client certificate issued by the collector CA and
registered here as an admin certificate (``soc collector admin-cert``), or a random API key stored
only as a SHA-256 hash (``soc collector admin-key``). A request presenting any other client
certificate is refused even with a valid key, so a compromised agent host cannot reach these paths.
Every call is logged with the credential's id and name (never a secret).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.ingest.ca import CertificateAuthority, IssuedCert
from collector.ingest.registry import AgentRecord, TokenRecord

if TYPE_CHECKING:
    from collector.ingest.server import IngestServer

log = logging.getLogger(__name__)

PREFIX = "/v1/admin/"
MAX_BODY_BYTES = 256 * 1024
CREDENTIALS_FILE = "admin-credentials.json"
KEY_PREFIX = "socadm"
ADMIN_CN_PREFIX = "soc-admin:"
MAX_TOKEN_USES = 10_000
MAX_TOKEN_TTL_SECONDS = 365 * 86400
_LAYER = re.compile(r"^(default|site-[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}|agent-[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63})$")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- credentials ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdminIdentity:
    """Who made an admin call: the credential id and the name it was issued to."""

    id: str
    name: str
    kind: str  # "key" or "cert"


class AdminCredentials:
    """Admin keys (hashed) and admin certificate fingerprints, in one small JSON file (mode 0600).

    Re-read when the file changes, so ``soc collector admin-key`` takes effect without a restart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._entries: list[dict[str, Any]] = []

    def _load(self) -> list[dict[str, Any]]:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return []
        with self._lock:
            if mtime != self._mtime:
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    entries = data.get("credentials", []) if isinstance(data, dict) else []
                    self._entries = [e for e in entries if isinstance(e, dict)]
                except (OSError, ValueError):
                    log.error("admin credential file %s unreadable: no admin access until fixed", self.path)
                    self._entries = []
                self._mtime = mtime
            return list(self._entries)

    def _save(self, entries: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"credentials": entries}, fh, indent=2)
        os.replace(tmp, self.path)
        with self._lock:
            self._mtime = None

    def _add(self, entry: dict[str, Any]) -> None:
        entries = self._load()
        entries.append(entry)
        self._save(entries)

    def create_key(self, name: str) -> str:
        """A new admin key ``socadm_<id>.<secret>``; returned once, stored only hashed."""
        if not _NAME.match(name):
            raise ValueError("name: 1-64 letters, digits, '_', '.', '@' or '-'")
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        self._add({"id": key_id, "kind": "key", "name": name, "hash": _sha256(secret), "created_at": _iso(_now())})
        return f"{KEY_PREFIX}_{key_id}.{secret}"

    def register_cert(self, name: str, cert: IssuedCert) -> str:
        cred_id = cert.serial[:16]
        self._add(
            {
                "id": cred_id,
                "kind": "cert",
                "name": name,
                "fingerprint": cert.fingerprint,
                "not_after": _iso(cert.not_after),
                "created_at": _iso(_now()),
            }
        )
        return cred_id

    def revoke(self, cred_id: str) -> bool:
        entries = self._load()
        hit = False
        for entry in entries:
            if entry.get("id") == cred_id and not entry.get("revoked_at"):
                entry["revoked_at"] = _iso(_now())
                hit = True
        if hit:
            self._save(entries)
        return hit

    def entries(self) -> list[dict[str, Any]]:
        """Credentials without their hashes."""
        return [{k: v for k, v in e.items() if k != "hash"} for e in self._load()]

    def _active(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self._load() if e.get("kind") == kind and not e.get("revoked_at")]

    def check_key(self, presented: str) -> AdminIdentity | None:
        body = presented.strip()
        if not body.startswith(KEY_PREFIX + "_"):
            return None
        key_id, _, secret = body[len(KEY_PREFIX) + 1 :].partition(".")
        digest = _sha256(secret)
        for entry in self._active("key"):
            if entry.get("id") == key_id and hmac.compare_digest(str(entry.get("hash", "")), digest):
                return AdminIdentity(key_id, str(entry.get("name", "")), "key")
        return None

    def check_cert(self, fingerprint: str) -> AdminIdentity | None:
        for entry in self._active("cert"):
            if hmac.compare_digest(str(entry.get("fingerprint", "")), fingerprint):
                return AdminIdentity(str(entry["id"]), str(entry.get("name", "")), "cert")
        return None


def credentials_path(state_dir: Path) -> Path:
    return state_dir / CREDENTIALS_FILE


def issue_admin_cert(
    ca: CertificateAuthority, credentials: AdminCredentials, name: str, out_dir: Path, days: int = 365
) -> tuple[str, Path, Path]:
    """Create a key, have the CA sign it as an admin certificate, register it; return (id, cert, key).

    The CN carries an ``soc-admin:`` prefix that no agent id can have, so an admin certificate can
    never pass as an agent on the ingest paths either.
    """
    if not _NAME.match(name):
        raise ValueError("name: 1-64 letters, digits, '_', '.', '@' or '-'")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_CN_PREFIX + name)]))
        .sign(key, hashes.SHA256())
    )
    issued = ca.issue_client(csr.public_bytes(serialization.Encoding.PEM).decode(), ADMIN_CN_PREFIX + name, days)
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / "admin.crt", out_dir / "admin.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    cert_path.write_text(issued.pem, encoding="utf-8")
    (out_dir / "ca.crt").write_text(ca.pem, encoding="utf-8")
    return credentials.register_cert(name, issued), cert_path, key_path


# -- request handling ----------------------------------------------------------------------------
class AdminRequest(Protocol):
    """What the admin API needs from the ingest server's request handler."""

    headers: Message
    connection: Any
    client_address: Any
    close_connection: bool

    def _read_body(self, limit: int) -> bytes: ...


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Reply = tuple[int, Any, dict[str, str]]


def agent_json(agent: AgentRecord) -> dict[str, Any]:
    return {
        "id": agent.id,
        "hostname": agent.hostname,
        "site": agent.site,
        "os": agent.os,
        "version": agent.version,
        "cert_serial": agent.cert_serial,
        "cert_fingerprint": agent.cert_fingerprint,
        "enrolled_at": _iso(agent.enrolled_at),
        "last_seen": _iso(agent.last_seen),
        "revoked_at": _iso(agent.revoked_at),
    }


def token_json(token: TokenRecord, now: dt.datetime) -> dict[str, Any]:
    if token.revoked_at:
        state = "revoked"
    elif token.expires_at <= now:
        state = "expired"
    elif token.uses_left < 1:
        state = "used"
    else:
        state = "valid"
    return {
        "id": token.id,
        "site": token.site,
        "uses_left": token.uses_left,
        "created_at": _iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "revoked_at": _iso(token.revoked_at),
        "note": token.note,
        "state": state,
    }


def validate_policy(layer: str, policy: Any) -> dict[str, Any]:
    """A policy layer must be an object an agent would accept over its defaults (agent.policy)."""
    from agent.config import AgentConfig
    from agent.policy import CENTRAL_SECTIONS, effective_config
    from soc_common.config import ConfigError

    if not isinstance(policy, dict):
        raise AdminError(422, "'policy' must be an object")
    unknown = sorted(set(policy) - CENTRAL_SECTIONS)
    if unknown:
        raise AdminError(422, f"keys a policy may not set: {', '.join(unknown)}; allowed: {sorted(CENTRAL_SECTIONS)}")
    try:
        effective_config(AgentConfig.model_validate({}), policy, version=layer)
    except ConfigError as exc:
        raise AdminError(422, str(exc)) from None
    return policy


class AdminApi:
    """Routes ``/v1/admin/...`` for one ingest server."""

    def __init__(self, server: IngestServer) -> None:
        self.server = server
        self.credentials = AdminCredentials(credentials_path(server.config.state_dir))

    # -- authentication ------------------------------------------------------------------------
    def authenticate(self, request: AdminRequest) -> AdminIdentity:
        conn = request.connection
        der = conn.getpeercert(binary_form=True) if hasattr(conn, "getpeercert") else None
        if der:
            fingerprint = x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex()
            identity = self.credentials.check_cert(fingerprint)
            if identity is None:
                raise AdminError(403, "this client certificate is not an admin credential")
            return identity
        header = request.headers.get("Authorization", "") or ""
        if not header.lower().startswith("bearer "):
            raise AdminError(401, "admin credential required")
        identity = self.credentials.check_key(header[7:])
        if identity is None:
            raise AdminError(401, "admin key unknown or revoked")
        return identity

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, request: AdminRequest, method: str, path: str) -> Reply:
        client = request.client_address[0] if request.client_address else "-"
        who = "-"
        consumed = [method != "POST"]
        try:
            identity = self.authenticate(request)
            who = f"{identity.kind}:{identity.id}({identity.name})"
            parts = [p for p in path[len(PREFIX) :].split("/") if p]

            def body() -> Any:
                raw = request._read_body(MAX_BODY_BYTES) if method == "POST" else b""
                consumed[0] = True
                try:
                    return json.loads(raw) if raw else {}
                except ValueError:
                    raise AdminError(400, "body is not JSON") from None

            status, payload = self.route(method, parts, body)
        except AdminError as err:
            log.warning("admin %s %s by %s from %s -> %d %s", method, path, who, client, err.status, err.message)
            if not consumed[0]:
                request.close_connection = True  # body left unread: the stream is out of sync
            return err.status, {"error": err.message}, {}
        log.info("admin %s %s by %s from %s -> %d", method, path, who, client, status)
        return status, payload, {}

    def route(self, method: str, parts: list[str], body: Callable[[], Any]) -> tuple[int, Any]:
        if not parts:
            raise AdminError(404, "not found")
        head, rest = parts[0], parts[1:]
        if any(not _ID.match(p) for p in rest):
            raise AdminError(404, "not found")
        if head == "agents":
            return self._agents(method, rest, body)
        if head == "tokens":
            return self._tokens(method, rest, body)
        if head == "policies":
            return self._policies(method, rest, body)
        if head == "whoami" and method == "GET" and not rest:
            return 200, {"ok": True}
        raise AdminError(404, "not found")

    # -- agents --------------------------------------------------------------------------------
    def _agent(self, agent_id: str) -> AgentRecord:
        record = self.server.registry.get_agent(agent_id)
        if record is None:
            raise AdminError(404, "no such agent")
        return record

    def _agents(self, method: str, rest: list[str], body: Callable[[], Any]) -> tuple[int, Any]:
        registry = self.server.registry
        if method == "GET" and not rest:
            return 200, {"agents": [self._with_policy(a) for a in registry.list_agents()]}
        if method == "GET" and len(rest) == 1:
            record = self._agent(rest[0])
            _version, policy = self.server.policies.policy_for(record.id, record.site)
            return 200, {**self._with_policy(record), "policy": policy}
        if method == "POST" and len(rest) == 2 and rest[1] == "revoke":
            body()
            self._agent(rest[0])
            done = registry.revoke_agent(rest[0])
            self.server.forget_agent(rest[0])
            if not done:
                raise AdminError(409, "agent already revoked")
            return 200, agent_json(self._agent(rest[0]))
        raise AdminError(405 if not rest or len(rest) <= 2 else 404, "method not allowed")

    def _with_policy(self, agent: AgentRecord) -> dict[str, Any]:
        version, _ = self.server.policies.policy_for(agent.id, agent.site)
        return {**agent_json(agent), "policy_version": version}

    # -- tokens --------------------------------------------------------------------------------
    def _tokens(self, method: str, rest: list[str], body: Callable[[], Any]) -> tuple[int, Any]:
        registry = self.server.registry
        now = _now()
        if method == "GET" and not rest:
            return 200, {"tokens": [token_json(t, now) for t in registry.list_tokens()]}
        if method == "POST" and not rest:
            request = body()
            if not isinstance(request, dict):
                raise AdminError(400, "body must be a JSON object")
            site, uses, ttl, note = (request.get(k) for k in ("site", "uses", "ttl_seconds", "note"))
            if site is not None and (not isinstance(site, str) or not _NAME.match(site)):
                raise AdminError(422, "'site' must be a site code")
            if not isinstance(uses, int) or isinstance(uses, bool) or not 1 <= uses <= MAX_TOKEN_USES:
                raise AdminError(422, f"'uses' must be an integer 1..{MAX_TOKEN_USES}")
            if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 60 <= ttl <= MAX_TOKEN_TTL_SECONDS:
                raise AdminError(422, f"'ttl_seconds' must be 60..{MAX_TOKEN_TTL_SECONDS}")
            if note is not None and (not isinstance(note, str) or len(note) > 200):
                raise AdminError(422, "'note' must be a string of at most 200 characters")
            token, record = registry.create_token(site=site, uses=uses, ttl_seconds=float(ttl), note=note)
            return 201, {**token_json(record, now), "token": token}
        if method == "POST" and len(rest) == 2 and rest[1] == "revoke":
            body()
            if not any(t.id == rest[0] for t in registry.list_tokens()):
                raise AdminError(404, "no such token")
            if not registry.revoke_token(rest[0]):
                raise AdminError(409, "token already revoked")
            record = next(t for t in registry.list_tokens() if t.id == rest[0])
            return 200, token_json(record, now)
        raise AdminError(405 if len(rest) <= 2 else 404, "method not allowed")

    # -- policy layers -------------------------------------------------------------------------
    def _layer_files(self, layer: str) -> tuple[Path, Path]:
        directory = self.server.policies.directory
        return directory / f"{layer}.toml", directory / f"{layer}.json"

    def _read_layer(self, layer: str) -> dict[str, Any]:
        toml_file, json_file = self._layer_files(layer)
        source = toml_file if toml_file.exists() else json_file if json_file.exists() else None
        policy = self.server.policies._load(layer) if source else {}
        return {"layer": layer, "exists": source is not None, "file": source.name if source else None, "policy": policy}

    def _policies(self, method: str, rest: list[str], body: Callable[[], Any]) -> tuple[int, Any]:
        directory = self.server.policies.directory
        if method == "GET" and not rest:
            names = sorted({p.stem for p in directory.glob("*.toml")} | {p.stem for p in directory.glob("*.json")})
            return 200, {"layers": [self._read_layer(n) for n in names if _LAYER.match(n)]}
        if len(rest) != 1 or not _LAYER.match(rest[0]):
            raise AdminError(404, "layer must be 'default', 'site-<code>' or 'agent-<id>'")
        layer = rest[0]
        if method == "GET":
            return 200, self._read_layer(layer)
        if method == "POST":
            request = body()
            if not isinstance(request, dict) or "policy" not in request:
                raise AdminError(400, 'body must be {"policy": {...}} or {"policy": null} to remove the layer')
            self._write_layer(layer, None if request["policy"] is None else validate_policy(layer, request["policy"]))
            return 200, self._read_layer(layer)
        raise AdminError(405, "method not allowed")

    def _write_layer(self, layer: str, policy: dict[str, Any] | None) -> None:
        """Write (or remove) a layer as JSON, atomically; a TOML file of that layer is kept as a backup.

        The store prefers ``.toml`` over ``.json``, so an edited layer must not leave a TOML file
        that would shadow it: it is renamed ``<layer>.toml.replaced-<UTC time>``.
        """
        toml_file, json_file = self._layer_files(layer)
        directory = json_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        if toml_file.exists():
            toml_file.rename(directory / f"{toml_file.name}.replaced-{_now().strftime('%Y%m%dT%H%M%SZ')}")
        if policy is None:
            json_file.unlink(missing_ok=True)
            return
        tmp = directory / f".{layer}.json.tmp"
        tmp.write_text(json.dumps(policy, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, json_file)


_APIS: weakref.WeakKeyDictionary[IngestServer, AdminApi] = weakref.WeakKeyDictionary()
_APIS_LOCK = threading.Lock()


def handle_admin(server: IngestServer, request: AdminRequest, method: str, path: str) -> Reply:
    """Entry point from the ingest server's dispatch: one :class:`AdminApi` per server, made on first use."""
    with _APIS_LOCK:
        api = _APIS.get(server)
        if api is None:
            api = _APIS[server] = AdminApi(server)
    return api.handle(request, method, path)
