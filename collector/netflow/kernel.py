"""Datagrams the kernel dropped for a UDP socket (receive buffer full), from /proc/net/udp[6].

Loss that happens before we ever read a packet is invisible to sequence tracking when whole
exporters go silent, so it is read from the kernel's own per-socket counter.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_PROC = {socket.AF_INET: Path("/proc/net/udp"), socket.AF_INET6: Path("/proc/net/udp6")}


def udp_drops(sock: socket.socket) -> int | None:
    """The kernel's drop counter for ``sock``, or None where /proc does not expose it."""
    path = _PROC.get(sock.family)
    if path is None:
        return None
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        with path.open() as fh:
            next(fh, None)
            for line in fh:
                cols = line.split()
                if len(cols) >= 13 and cols[9] == inode:
                    return int(cols[-1])
    except (OSError, ValueError):
        return None
    return None


def set_receive_buffer(sock: socket.socket, size: int) -> int:
    """Ask for ``size`` bytes (SO_RCVBUFFORCE when privileged, above net.core.rmem_max); returns what we got."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except (PermissionError, OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
