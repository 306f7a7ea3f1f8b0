"""HTTP/1.x request parser: method, target, Host and User-Agent as ECS fields.

Looks only at the head of the first segment of a request; anything that is not a well-formed
request line gives ``None``.
"""

from __future__ import annotations

from typing import Any

METHODS = frozenset(
    {b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE", b"PROPFIND"}
)
#: first bytes of the methods above: the meter's cheap pre-check before calling the parser
FIRST_BYTES = frozenset(m[0] for m in METHODS)
#: the first four bytes of a request with each method (``GET `` ... ``PROP``): the second check
PREFIXES = frozenset((m + b" ")[:4] for m in METHODS)
MAX_HEAD = 8192


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def parse_request(data: bytes) -> dict[str, Any] | None:
    """Parse the start of an HTTP/1.x request into ECS fields, or ``None``."""
    head = data[:MAX_HEAD]
    line_end = head.find(b"\r\n")
    if line_end < 0:
        line_end = head.find(b"\n")
        if line_end < 0:
            return None
    parts = head[:line_end].split(b" ")
    if len(parts) != 3 or parts[0] not in METHODS or not parts[2].startswith(b"HTTP/1."):
        return None
    method, target, version = parts
    if not target or any(c < 0x21 or c > 0x7E for c in target):
        return None
    host: str | None = None
    agent: str | None = None
    for line in head[line_end:].split(b"\n")[1:]:
        if not line.strip():
            break
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        if key == b"host":
            host = _text(value)
        elif key == b"user-agent":
            agent = _text(value)
    original = target.decode("ascii")
    url: dict[str, Any] = {"original": original}
    if original.startswith(("http://", "https://")):
        scheme, _, rest = original.partition("://")
        authority, slash, path = rest.partition("/")
        url["scheme"] = scheme
        host = host or authority
        original_path = slash + path
    else:
        original_path = original
    path, question, query = original_path.partition("?")
    if path:
        url["path"] = path
    if question:
        url["query"] = query
    if host:
        domain, port = _split_host(host)
        if domain:
            url["domain"] = domain
        if port is not None:
            url["port"] = port
    event: dict[str, Any] = {
        "http": {"request": {"method": method.decode("ascii")}, "version": version[5:].decode("ascii", "replace")},
        "url": url,
    }
    if agent:
        event["user_agent"] = {"original": agent}
    return event


def _split_host(host: str) -> tuple[str, int | None]:
    """``example.org:8080`` -> (``example.org``, 8080); IPv6 literals keep their brackets off."""
    if host.startswith("["):
        addr, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        return addr, int(port_text) if port_text.isdecimal() and int(port_text) < 65536 else None
    name, sep, port_text = host.rpartition(":")
    if sep and port_text.isdecimal() and int(port_text) < 65536 and ":" not in name:
        return name.lower(), int(port_text)
    return host.lower(), None
