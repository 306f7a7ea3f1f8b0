"""Listening sockets shared by the collector's ingest workers.

With ``workers`` > 1 every worker binds the same ports with ``SO_REUSEPORT``: the kernel spreads TCP
connections over the workers' sockets and hashes UDP datagrams by their addresses and ports. For
NetFlow that hash is only where a packet lands: the worker that owns its exporter decodes it
(:mod:`collector.netflow.owners`), so an exporter's templates and sequence numbers stay in one place
and a few exporters still spread evenly.
"""

from __future__ import annotations

import socket


def share_port(sock: socket.socket) -> None:
    """Let other workers bind the same address (call before ``bind``)."""
    option = getattr(socket, "SO_REUSEPORT", None)
    if option is None:
        raise OSError("this system has no SO_REUSEPORT: run the collector with workers = 1")
    sock.setsockopt(socket.SOL_SOCKET, option, 1)


def reserve_port(host: str, kind: int) -> socket.socket:
    """A shared socket bound to a free port of ``kind`` (SOCK_STREAM or SOCK_DGRAM), not listening.

    The supervisor holds it while the workers bind the same port, so a configured port of 0 means
    one port for all of them. Close it once they are bound: a UDP socket in the group would take
    its share of the datagrams.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    try:
        share_port(sock)
        sock.bind((host, 0))
    except OSError:
        sock.close()
        raise
    return sock
