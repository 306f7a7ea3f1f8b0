"""One received syslog message (bytes) -> one ECS event, never an exception.

The RFC 3164/5424 header is read by the shared parser (``soc_common.parsers.syslog``); the message
body is then offered to the vendor parsers that are cheap to recognise (CEF, FortiGate key=value).
A device that sends a bare CEF or key=value line with no syslog header at all is still parsed.
Whatever fails is kept whole in ``event.original`` with ``soc.parse_error`` set.
"""

from __future__ import annotations

import itertools
import os
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.syslog.cef import CefError, apply_cef, is_cef
from collector.syslog.fortinet import apply_fortinet, is_fortinet
from soc_common.ecs import Event, add_tag
from soc_common.parsers.common import ParseOptions, decode_bytes
from soc_common.parsers.syslog import FAILURE_TAG, parse_syslog

DATASET = "syslog"
TRUNCATED_TAG = "_truncated"
INVALID_UTF8_TAG = "_invalid_utf8"
VENDOR_FAILURE_TAG = "_vendorparsefailure"


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

    def parse(self, raw: bytes, sender_ip: str, sender_port: int, *, truncated: bool = False) -> Event:
        text, replaced = decode_bytes(raw.rstrip(b"\r\n\x00"))
        event = parse_syslog(text, self.opts, dataset=DATASET)
        event["event"]["id"] = f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFFFFFF:012x}"
        event["observer"] = {"ip": sender_ip}
        log_field = event.get("log")  # the parser's own fresh dict: filled in place, not copied
        source = {"address": f"{sender_ip}:{sender_port}"}
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
        process = event.get("process")
        if process is not None and process.get("name") == "CEF" and isinstance(body, str):
            # "host CEF:0|..." reads like a "CEF:" program tag to the RFC 3164 parser; undo that.
            body = "CEF:" + body
            del event["process"]
            event["log"]["syslog"].pop("appname", None)
        if isinstance(body, str):
            self._vendor(event, body, header_failed)
        return event

    def _vendor(self, event: Event, body: str, header_failed: bool) -> None:
        try:
            if is_cef(body):
                apply_cef(event, body, self.tz)
            elif is_fortinet(body):
                apply_fortinet(event, body, self.tz)
            else:
                return
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
