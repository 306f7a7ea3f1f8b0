"""Syslog streams' lines shared out among the ingest workers.

A TCP or TLS connection stays with the worker the kernel gave it: a relay forwarding a whole
network's logs is one connection, so its lines could use one core whatever ``workers`` says, and
eight senders hashed six to two left one worker three quarters of the work (bench_syslog: 34,000
lines/s against 66,000 for an even split). So each worker parses a ``1/workers`` share of every
read's framed lines itself and hands the other shares to the other workers' mailboxes
(:mod:`collector.workers.mailbox`), which parse and store them as if they had read them. Lines of
one connection may then be stored in a different order than they came (each keeps its own time and
id); a mailbox that cannot take a chunk leaves it to the worker that read it.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator

from collector.syslog.framing import Frame
from collector.workers.mailbox import MAX_MESSAGE_BYTES, Mailbox, WorkerPlace

_HEAD = struct.Struct("!BH")  # sender address length, sender port; the address text follows
_FRAME = struct.Struct("!IB")  # line length, truncated flag; the line follows
SPLIT_MIN_LINES = 64  # a read with fewer lines goes whole to one worker


class StreamShare:
    """``share_out`` hands other workers their part of a read; ``unpack`` reads a part handed here."""

    def __init__(self, place: WorkerPlace) -> None:
        self.me = place.me
        self.workers = place.workers
        self.mailbox = Mailbox(place, "syslog")
        self._turn = itertools.count()  # one step per chunk, shared by the connection threads

    def share_out(self, frames: list[Frame], ip: str, port: int) -> tuple[list[Frame], int, int]:
        """Hand the other workers their shares of one read's lines; returns the lines to parse here,
        how many were handed over and how many shares came back (their worker could not take them).
        A read of many lines is split evenly (a relay's reads are hundreds of lines); a few lines go
        whole to one worker in turn."""
        n, w = len(frames), self.workers
        if n < SPLIT_MIN_LINES:
            worker = (self.me + next(self._turn)) % w
            shares = [(worker, frames)] if worker != self.me else []
            kept = [] if shares else frames
        else:
            parts = [frames[worker * n // w : (worker + 1) * n // w] for worker in range(w)]
            shares = [(worker, part) for worker, part in enumerate(parts) if worker != self.me]
            kept = parts[self.me]
        handed = failed = 0
        for worker, part in shares:
            left = self._hand_over(worker, part, ip, port)
            if left:
                kept = kept + left
                failed += 1
            handed += len(part) - len(left)
        return kept, handed, failed

    def _hand_over(self, worker: int, frames: list[Frame], ip: str, port: int) -> list[Frame]:
        """Send ``frames`` to ``worker``; returns those it could not take (to be parsed here)."""
        sent = 0
        for parts, count in _messages(frames, ip, port):
            if not self.mailbox.send(worker, parts):
                return frames[sent:]
            sent += count
        return []

    @staticmethod
    def unpack(message: memoryview) -> tuple[list[Frame], str, int]:
        """(frames, sender address, sender port) from a received chunk; ``ValueError`` if malformed."""
        try:
            length, port = _HEAD.unpack_from(message)
            at = _HEAD.size + length
            ip = message[_HEAD.size : at].tobytes().decode("ascii")
            frames = []
            while at < len(message):
                size, truncated = _FRAME.unpack_from(message, at)
                at += _FRAME.size
                if at + size > len(message):
                    raise ValueError("chunk cut short")
                frames.append(Frame(message[at : at + size].tobytes(), bool(truncated)))
                at += size
        except (struct.error, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed chunk: {exc}") from exc
        return frames, ip, port

    def close(self) -> None:
        self.mailbox.close()


def _messages(frames: list[Frame], ip: str, port: int) -> Iterator[tuple[list[bytes], int]]:
    """``frames`` as messages of at most MAX_MESSAGE_BYTES (a longer line travels alone, and the
    mailbox refuses it: it is parsed where it was read), each one buffer (hundreds of parts would
    pass the kernel's limit of 1,024 per send), with the number of frames in each."""
    address = ip.encode("ascii", "replace")[:255]
    head = _HEAD.pack(len(address), port) + address
    message, count = bytearray(head), 0
    for frame in frames:
        if count and len(message) + _FRAME.size + len(frame.data) > MAX_MESSAGE_BYTES:
            yield [bytes(message)], count
            message, count = bytearray(head), 0
        message += _FRAME.pack(len(frame.data), frame.truncated)
        message += frame.data
        count += 1
    if count:
        yield [bytes(message)], count
