"""One received syslog message (bytes) -> one ECS event, never an exception.

The RFC 3164/5424 header is read by the shared parser (``soc_common.parsers.syslog``); the message
body is then offered to the vendor parsers that are cheap to recognise (CEF, FortiGate key=value).
A device that sends a bare CEF or key=value line with no syslog header at all is still parsed.
Whatever fails is kept whole in ``event.original`` with ``soc.parse_error`` set.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.syslog.cef import CefError, apply_cef, is_cef
from collector.syslog.fortinet import apply_fortinet, is_fortinet
from soc_common.ecs import Event, add_tag
from soc_common.parsers.common import ParseOptions
from soc_common.parsers.syslog import FAILURE_TAG, parse_syslog

DATASET = "syslog"
TRUNCATED_TAG = "_truncated"
INVALID_UTF8_TAG = "_invalid_utf8"
VENDOR_FAILURE_TAG = "_vendorparsefailure"

_ADDRESS_CACHE_SIZE = 4096
_VendorParser = Callable[[Event, str, "tzinfo | None"], None]


def zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class MessageParser:
    def __init__(self, timezone: str) -> None:
        self.tz = zone(timezone)
        self.opts = ParseOptions(tz=self.tz)
        # Syslog has no natural identity, so ids are random: 80 random bits per parser (per process
        # start) plus a counter give the same uniqueness as a UUID per message at a tenth of the cost.
        self._id_prefix = os.urandom(10).hex()
        self._id_counter = itertools.count()
        self._addresses: dict[tuple[str, int], str] = {}

    def _address(self, ip: str, port: int) -> str:
        """``ip:port`` text, kept per sender (a str is immutable, so events may share it)."""
        if len(self._addresses) >= _ADDRESS_CACHE_SIZE:
            self._addresses.clear()
        text = self._addresses[(ip, port)] = f"{ip}:{port}"
        return text

    def parse(self, raw: bytes, sender_ip: str, sender_port: int, *, truncated: bool = False) -> Event:
        data = raw.rstrip(b"\r\n\x00")
        try:  # common.decode_bytes, inlined: this runs for every received message
            text, replaced = data.decode("utf-8"), False
        except UnicodeDecodeError:
            text, replaced = data.decode("utf-8", errors="replace"), True
        event = parse_syslog(text, self.opts, dataset=DATASET)
        event["event"]["id"] = f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFFFFFF:012x}"
        event["observer"] = {"ip": sender_ip}
        log_field = event.get("log")  # the parser's own fresh dict: filled in place, not copied
        address = self._addresses.get((sender_ip, sender_port))
        if address is None:
            address = self._address(sender_ip, sender_port)
        source = {"address": address}
        if type(log_field) is dict:
            log_field["source"] = source
        else:
            event["log"] = {"source": source}
        if truncated:
            add_tag(event, TRUNCATED_TAG)
        if replaced:
            add_tag(event, INVALID_UTF8_TAG)
        soc = event.get("soc")
        header_failed = soc is not None and "parse_error" in soc
        body = text if header_failed else event.get("message", "")
        if type(body) is not str:
            return event
        process = event.get("process")
        if process is not None and process.get("name") == "CEF":
            # "host CEF:0|..." reads like a "CEF:" program tag to the RFC 3164 parser; undo that.
            body = "CEF:" + body
            del event["process"]
            event["log"]["syslog"].pop("appname", None)
        if is_cef(body):
            self._vendor(event, body, header_failed, apply_cef)
        elif is_fortinet(body):
            self._vendor(event, body, header_failed, apply_fortinet)
        return event

    def _vendor(self, event: Event, body: str, header_failed: bool, apply: _VendorParser) -> None:
        try:
            apply(event, body, self.tz)
        except (CefError, ValueError) as exc:
            event.setdefault("soc", {})["parse_error"] = f"vendor format: {exc}"
            add_tag(event, VENDOR_FAILURE_TAG)
            return
        if header_failed:  # a bare vendor line with no syslog header: the vendor parse is the parse
            event["soc"].pop("parse_error", None)
            if not event["soc"]:
                del event["soc"]
            tags = [t for t in event.get("tags", []) if t != FAILURE_TAG]
            if tags:
                event["tags"] = tags
            else:
                event.pop("tags", None)
