"""Splitting a syslog TCP/TLS byte stream into messages (RFC 6587 and RFC 5425).

Two framings exist in the wild: octet counting (``<len> <msg>``, what RFC 5425 mandates for TLS
and rsyslog's ``TCP_Framing="octet-counted"``) and non-transparent framing (a message per line,
LF-terminated, some senders NUL). The framing is picked from the connection's first byte (a digit
means octet counting: a syslog message itself starts with ``<``) and then kept. A frame that breaks
octet counting switches the connection to line framing rather than closing it, so one broken
sender does not lose everything it sends afterwards.

Messages longer than ``max_bytes`` are cut to ``max_bytes`` and flagged; the rest of such a
message is skipped without being buffered, so memory per connection stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAX_LEN_DIGITS = 10


@dataclass(slots=True)
class Frame:
    data: bytes
    truncated: bool = False


class StreamFramer:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.octet_counting: bool | None = None  # None until the first byte is seen
        self.framing_errors = 0
        self._buf = bytearray()
        self._skip = 0  # bytes of an over-long octet-counted message still to discard
        self._discarding_line = False  # inside an over-long line: drop until its delimiter

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data``."""
        frames: list[Frame] = []
        if self._skip:
            take = min(self._skip, len(data))
            self._skip -= take
            data = data[take:]
        self._buf += data
        while self._buf:
            if self.octet_counting is None:
                self.octet_counting = self._buf[:1].isdigit()
            if self.octet_counting:
                if not self._next_counted(frames):
                    break
            elif not self._discarding_line and b"\x00" not in self._buf:
                self._all_lines(frames)
                break
            elif not self._next_line(frames):
                break
        return frames

    def flush(self) -> list[Frame]:
        """At end of stream: a last line without its delimiter still counts as a message."""
        if self._buf and not self._discarding_line:
            data = bytes(self._buf).rstrip(b"\r\n\x00")
            self._buf.clear()
            if data:
                truncated = len(data) > self.max_bytes
                return [Frame(data[: self.max_bytes], truncated)]
        self._buf.clear()
        return []

    def _next_counted(self, frames: list[Frame]) -> bool:
        buf = self._buf
        if buf[:1] in (b"\n", b"\r", b"\x00", b" "):  # stray trailer some senders add after a frame
            del buf[:1]
            return True
        space = buf.find(b" ", 0, _MAX_LEN_DIGITS + 1)
        if space < 0:
            if len(buf) <= _MAX_LEN_DIGITS and buf.isdigit():
                return False  # the length is still arriving
            return self._fall_back_to_lines()
        digits = bytes(buf[:space])
        if not digits.isdigit() or int(digits) == 0:
            return self._fall_back_to_lines()
        length = int(digits)
        start = space + 1
        if length > self.max_bytes:
            if len(buf) - start < self.max_bytes:
                return False
            frames.append(Frame(bytes(buf[start : start + self.max_bytes]), True))
            rest = length - self.max_bytes
            available = len(buf) - start - self.max_bytes
            consumed = min(rest, available)
            del buf[: start + self.max_bytes + consumed]
            self._skip = rest - consumed
            return True
        if len(buf) - start < length:
            return False
        frames.append(Frame(bytes(buf[start : start + length])))
        del buf[: start + length]
        return True

    def _fall_back_to_lines(self) -> bool:
        self.framing_errors += 1
        self.octet_counting = False
        return True

    def _all_lines(self, frames: list[Frame]) -> None:
        """Every complete LF-terminated line in one split (the buffer holds no NUL delimiter)."""
        buf = self._buf
        last = buf.rfind(b"\n")
        if last >= 0:
            chunk = bytes(buf[:last])
            del buf[: last + 1]
            limit = self.max_bytes
            append = frames.append
            for line in chunk.split(b"\n"):
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line:
                    append(Frame(line[:limit], True) if len(line) > limit else Frame(line))
        self._next_line(frames)  # the unfinished rest: only its length is checked

    def _next_line(self, frames: list[Frame]) -> bool:
        buf = self._buf
        end = _delimiter(buf)
        if end < 0:
            if len(buf) > self.max_bytes:
                if not self._discarding_line:
                    frames.append(Frame(bytes(buf[: self.max_bytes]), True))
                self._discarding_line = True
                buf.clear()
            return False
        line = bytes(buf[:end])
        del buf[: end + 1]
        if self._discarding_line:
            self._discarding_line = False
            return True
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            if len(line) > self.max_bytes:
                frames.append(Frame(line[: self.max_bytes], True))
            else:
                frames.append(Frame(line))
        return True


def _delimiter(buf: bytearray) -> int:
    """Position of the first LF or NUL, or -1."""
    lf = buf.find(b"\n")
    nul = buf.find(b"\x00", 0, lf if lf >= 0 else len(buf))
    return nul if nul >= 0 else lf
