"""A deterministic corpus of realistic, varied syslog lines for the parser differential test.

RFC 3164 (with and without PRI, padded days, years, fractions, tags), RFC 5424 (structured data with
escapes, nil fields, BOM), CEF, FortiGate key=value and malformed input, as raw bytes. The golden
fixture (``fixtures/syslog_golden.jsonl.gz``) holds these lines with the events the parser made of
them before the speed work; ``python -m tests.parsers.syslog_corpus`` regenerates it from the current
code (only when an output change is intended and reviewed).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

GOLDEN = Path(__file__).with_name("fixtures") / "syslog_golden.jsonl.gz"
#: the clock the year-inference configuration is pinned to
PINNED_NOW = datetime(2024, 6, 15, 12, 0, 0, tzinfo=UTC)
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NOW_MARK = "<now>"
ID_MARK = "<id>"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HOSTS = ("web01", "db-2", "fw.hn.local", "10.1.2.3", "ubuntu", "DC01", "sw-core")
_PROGS = ("sshd", "sudo", "CRON", "kernel", "systemd", "postfix/smtpd", "nginx", "su", "app-1.2")
_MSGS = (
    "Failed password for root from 10.0.{a}.{b} port 22 ssh2",
    "Accepted publickey for admin from 192.168.{a}.{b} port 50022 ssh2: RSA SHA256:abc",
    "pam_unix(sudo:session): session opened for user root by (uid=0)",
    "Đăng nhập thất bại cho người dùng quản_trị từ 10.{a}.0.{b}",
    "(root) CMD (run-parts /etc/cron.hourly)",
    "[UFW BLOCK] IN=eth0 OUT= SRC=10.0.{a}.{b} DST=10.0.0.1 PROTO=TCP SPT=4444 DPT=22",
    'message with: colons [brackets] and "quotes"',
    "",
    "x",
)


def _r3164(rng: random.Random) -> str:
    month = rng.choice(_MONTHS)
    day = rng.randint(1, 28)
    day_text = f"{day:2d}" if rng.random() < 0.8 else f"{day:02d}"
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    if rng.random() < 0.1:
        clock += "." + str(rng.randint(0, 999999)).zfill(rng.choice((3, 6)))
    stamp = f"{month} {day_text} {clock}"
    if rng.random() < 0.1:
        stamp = f"{month} {day_text} {rng.choice((2023, 2024))} {clock}"
    msg = rng.choice(_MSGS).format(a=rng.randint(0, 255), b=rng.randint(0, 255))
    prog = rng.choice(_PROGS)
    tag = rng.choice((f"{prog}[{rng.randint(1, 65535)}]: ", f"{prog}: ", f"{prog}[abc]: ", "", f"{prog}[1 "))
    host = rng.choice(_HOSTS) + " " if rng.random() < 0.85 else ""
    pri = f"<{rng.randint(0, 191)}>" if rng.random() < 0.8 else ""
    return f"{pri}{stamp} {host}{tag}{msg}"


def _sd(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return "-"
    elements = []
    for i in range(rng.randint(1, 3)):
        params = " ".join(
            f'{k}="{v}"'
            for k, v in rng.sample(
                [("iut", "3"), ("eventSource", "Application"), ("eventID", str(rng.randint(1, 9999))),
                 ("path", 'C:\\\\x \\"q\\" \\]'), ("ip", "10.0.0.5"), ("msg", "a b c")],
                rng.randint(0, 3),
            )
        )  # fmt: skip
        elements.append(f"[exampleSDID@{32473 + i}{' ' + params if params else ''}]")
    return "".join(elements)


def _r5424(rng: random.Random) -> str:
    pri = rng.randint(0, 191)
    stamp = rng.choice((
        "2024-05-01T10:00:00+07:00", "2024-05-01T03:00:00.123456Z", "2023-12-31T23:59:59.9Z", "-",
        "2024-02-29T12:00:00-05:30", f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:00:00Z",
    ))  # fmt: skip
    host = rng.choice((*_HOSTS, "-"))
    app = rng.choice((*_PROGS, "-"))
    procid = rng.choice((str(rng.randint(1, 99999)), "-", "worker-3"))
    msgid = rng.choice(("-", "ID47", "LOGIN"))
    msg = rng.choice(_MSGS).format(a=rng.randint(0, 255), b=rng.randint(0, 255))
    bom = "\ufeff" if rng.random() < 0.2 else ""
    return f"<{pri}>1 {stamp} {host} {app} {procid} {msgid} {_sd(rng)} {bom}{msg}".rstrip(" ")


def _r5424_full_header(rng: random.Random) -> str:
    """The everyday RFC 5424 line: every header field set, no structured data."""
    stamp = f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:0{rng.randint(0, 9)}"
    stamp += rng.choice(("Z", "+07:00", ".5Z", ".123456-04:00", "", "+0700"))
    procid = rng.choice((str(rng.randint(1, 99999)), "worker-3", "٣"))
    msg = rng.choice(_MSGS).format(a=rng.randint(0, 255), b=rng.randint(0, 255))
    bom = "\ufeff" if rng.random() < 0.2 else ""
    header = f"{rng.choice(_HOSTS)} {rng.choice(_PROGS)} {procid} {rng.choice(('-', 'ID47'))}"
    return f"<{rng.randint(0, 191)}>1 {stamp} {header} - {bom}{msg}"


def _cef(rng: random.Random) -> str:
    ext = [
        f"src=10.0.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        f"dst={rng.choice(('1.1.1.1', 'not-an-ip', '2001:db8::1'))}",
        f"spt={rng.choice(('51000', '70000', 'x'))}",
        f"dpt={rng.randint(1, 65535)}",
        "suser=" + rng.choice(("admin", "nguyen van a", "a\\=b")),
        f"act={rng.choice(('blocked', 'allowed'))}",
        f"rt={rng.choice(('1714550400000', 'May 01 2024 10:00:00', 'garbage'))}",
        "msg=line1\\nline2 with \\\\ backslash",
        f"proto={rng.choice(('TCP', 'UDP'))}",
        f"in={rng.randint(0, 10**6)}",
        "cs1Label=rule cs1=Block all",
    ]
    rng.shuffle(ext)
    header = f"CEF:0|Security|thre\\|atmanager|1.0|{rng.randint(100, 999)}|worm successfully stopped|"
    header += rng.choice(("10", "High", "Very-High", "5", "unknown"))
    body = f"{header}|{' '.join(ext[: rng.randint(0, len(ext))])}"
    prefix = rng.choice(("<134>", "<134>May  1 10:00:00 fw01 ", "", "<134>1 2024-05-01T10:00:00Z fw01 - - - - "))
    return prefix + body


def _forti(rng: random.Random) -> str:
    pairs = [
        f"date=2024-05-{rng.randint(1, 28):02d}",
        f"time={rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        'devname="FG-HN 01"',
        "devid=FG100F0000000001",
        f"logid=00000{rng.randint(10000, 99999)}",
        f"type={rng.choice(('traffic', 'utm', 'event'))}",
        "subtype=forward",
        f"level={rng.choice(('notice', 'warning'))}",
        f"srcip=10.0.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        f"srcport={rng.randint(1024, 65535)}",
        f"dstip={rng.choice(('8.8.8.8', '999.1.1.1'))}",
        f"dstport={rng.choice(('443', '99999'))}",
        f"action={rng.choice(('accept', 'deny', 'close', 'timeout'))}",
        f"proto={rng.choice(('6', '17', '1', '99'))}",
        f"sentbyte={rng.randint(0, 10**6)}",
        f"rcvdbyte={rng.randint(0, 10**6)}",
        'msg="quoted \\"value\\" here"',
        'service="HTTPS"',
        "policyid=7",
    ]
    if rng.random() < 0.3:
        pairs.append(f"eventtime={rng.choice(('1714550400', '1714550400123', '1714550400123456789'))}")
    if rng.random() < 0.3:
        pairs.append(f"tz={rng.choice(('+0700', '-05:00', 'bad'))}")
    head, tail = pairs[:6], pairs[6:]
    rng.shuffle(tail)
    body = " ".join(head + tail[: rng.randint(0, len(tail))])
    return rng.choice(("<189>", "<189>May  1 10:00:00 FG-HN ", "")) + body


_MALFORMED: tuple[bytes, ...] = (
    b"", b"<", b"<>", b"<999>x", b"<abc>hello", b"<13", b"<13>", b"<13>1", b"<13>1 ", b"<13>1 2024",
    b"<13>1 notatime host app - - - msg", b"<13>1 2024-05-01T10:00:00Z h a p m [bad", b'<13>1 - - - - - [a b="c]',
    b"<13>1 - - - - - [ x]", b'<13>1 - - - - - [a b=c]', b"Feb 29 10:00:00 host prog: leap", b"Feb 30 10:00:00 h p: x",
    b"Jan 5 10:00:00 host p: short day", b"Jan  5 25:61:00 host p: bad clock", b"Jan  5 10:00 host p: no seconds",
    b"2024-05-01T10:00:00 host prog: iso", b"2024-13-01T10:00:00 host prog: bad iso", b"<13>2024-05-01 10:00:00",
    b"just some text", b"\xff\xfe\x00garbage\x80", b"<13>Jan  1 00:00:00 host prog[12]: caf\xe9", b"CEF:0|short",
    b"CEF:", b"<134>CEF:0|a|b|c|d|e|f", b"devname=x type=y", b"devid= logid=", b"<13>Jan  1 00:00:00",
    b"<13>Jan  1 00:00:00 onlyhost", b"<13>Jan  1 00:00:00 host prog:", b"<13>Jan  1 00:00:00 host :nomsg",
    b"\x00\x00\x00", b"<13>   \r\n", b"<191>Dec 31 23:59:59 h p: new year", b"<0>Jan  1 00:00:01 h p: new year",
)  # fmt: skip


def corpus(n: int = 2000, seed: int = 20241121) -> list[bytes]:
    """``n`` generated lines plus every fixed malformed case, in a fixed order."""
    rng = random.Random(seed)
    makers = (_r3164, _r3164, _r3164, _r5424, _r5424, _r5424_full_header, _cef, _forti)
    lines = [rng.choice(makers)(rng).encode() for _ in range(n)]
    return lines + list(_MALFORMED)


def normalize(event: dict[str, Any], now_from: str, now_to: str) -> dict[str, Any]:
    """Replace the per-run parts (random id, read-time timestamp) with fixed marks."""
    out = json.loads(json.dumps(event))
    if "id" in out.get("event", {}):
        out["event"]["id"] = ID_MARK
    if now_from <= out["@timestamp"] <= now_to:
        out["@timestamp"] = NOW_MARK
    return out


def configurations() -> dict[str, Any]:
    """The parse options the golden events were made with: cached path (pinned year), inferred year."""
    from soc_common.parsers.common import ParseOptions

    return {
        "pinned_year": ParseOptions(tz=HCM, default_year=2024),
        "inferred_year": ParseOptions(tz=HCM, now=PINNED_NOW),
    }


def parse_all(lines: list[bytes]) -> list[dict[str, Any]]:
    """Every line through the receiver's parser and the shared file-line parser, per configuration."""
    from collector.syslog.message import MessageParser
    from soc_common.parsers.common import iso_utc
    from soc_common.parsers.syslog import parse_syslog

    rows = []
    for name, opts in configurations().items():
        parser = MessageParser("Asia/Ho_Chi_Minh")
        parser.opts = opts
        parser.tz = opts.tz
        for i, raw in enumerate(lines):
            start = iso_utc(datetime.now(UTC))
            event = parser.parse(raw, "10.0.0.9", 5140 + i % 3, truncated=i % 97 == 0)
            text = raw.decode("utf-8", "replace")
            line_event = parse_syslog(text, opts, dataset="system.syslog", require_pri=i % 2 == 0)
            end = iso_utc(datetime.now(UTC))
            rows.append({
                "config": name,
                "raw": base64.b64encode(raw).decode(),
                "receiver": normalize(event, start, end),
                "file_line": normalize(line_event, start, end),
            })  # fmt: skip
    return rows


def main() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    rows = parse_all(corpus())
    with gzip.open(GOLDEN, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {GOLDEN}")


if __name__ == "__main__":
    main()
