"""Linux auth/secure log messages (sshd, sudo, su, PAM, shadow-utils, logind) as ``system.auth`` ECS.

The syslog header is read by :mod:`soc_common.parsers.syslog`; this module only understands the
message text of the programs that matter for authentication, so the journald source can reuse it on
``MESSAGE`` fields. Each program's messages are matched by a few anchored regexes tried in order of
how common they are (failed SSH passwords dominate a brute force).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from soc_common.ecs import Event, add_related
from soc_common.parsers.common import DEFAULT_OPTIONS, ParseOptions
from soc_common.parsers.syslog import parse_syslog

DATASET = "system.auth"

# --- sshd ---------------------------------------------------------------------------------------
_SSH_RESULT = re.compile(
    r"(?P<result>Accepted|Failed) (?P<method>[\w/-]+) for (?P<invalid>invalid user )?(?P<user>.*?) "
    r"from (?P<ip>\S+) port (?P<port>\d+)(?: (?P<proto>ssh2))?(?:: (?P<sig>.*))?$",
    re.DOTALL,
)
_SSH_INVALID = re.compile(r"[Ii]nvalid user (?P<user>.*?) from (?P<ip>\S+)(?: port (?P<port>\d+))?")
_SSH_CLOSED = re.compile(
    r"(?P<what>Connection closed by|Disconnected from|Received disconnect from|Connection reset by)"
    r"(?: (?:invalid|authenticating) user (?P<user>\S+))?(?: user (?P<user2>\S+))? "
    r"(?P<ip>[0-9A-Fa-f:.]+) port (?P<port>\d+)"
)
_SSH_MAX_ATTEMPTS = re.compile(
    r"(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) "
    r"from (?P<ip>\S+) port (?P<port>\d+)"
)
_SSH_TOO_MANY = re.compile(
    r"Disconnecting (?:invalid|authenticating) user (?P<user>\S+) (?P<ip>\S+) port (?P<port>\d+): "
    r"Too many authentication failures"
)

# --- PAM ----------------------------------------------------------------------------------------
_PAM = re.compile(r"(?P<module>pam_[\w-]+)\((?P<service>[^:)]+):(?P<kind>\w+)\): (?P<text>.*)$", re.DOTALL)
_PAM_KV = re.compile(r"(\w+)=(\S*)")
_PAM_SESSION = re.compile(
    r"session (?P<state>opened|closed) for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<by>[^\s(]*))?"
)
_PAM_PASSWORD = re.compile(r"password changed for (?P<user>\S+)")

# --- sudo / su ----------------------------------------------------------------------------------
_SUDO = re.compile(r"\s*(?P<user>\S+) : (?P<rest>.*)$", re.DOTALL)
_SU_TO = re.compile(r"(?P<failed>FAILED SU )?\(to (?P<target>[^)]+)\) (?P<user>\S+) on (?P<tty>\S+)")
_SU_SHADOW = re.compile(r"(?P<result>Successful|FAILED) su for (?P<target>\S+) by (?P<user>\S+)")
_SU_SHORT = re.compile(r"(?P<sign>[+-]) (?P<tty>\S+) (?P<user>[^:\s]+):(?P<target>\S+)$")

# --- shadow-utils -------------------------------------------------------------------------------
_NEW_USER = re.compile(r"new user: name=(?P<user>[^,]+), UID=(?P<uid>\d+), GID=(?P<gid>\d+)(?P<rest>.*)")
_NEW_GROUP = re.compile(r"(?:new group|group added to \S+): name=(?P<group>[^,]+), GID=(?P<gid>\d+)")
_ADD_TO_GROUP = re.compile(r"add '(?P<user>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'")
_CHANGE_USER = re.compile(r"(?:change|lock|unlock) user '(?P<user>[^']+)'")
_DELETE_USER = re.compile(r"delete user '(?P<user>[^']+)'")
_DELETE_GROUP = re.compile(r"(?:removed group '(?P<g1>[^']+)'|group '(?P<g2>[^']+)' removed)")
_CHAGE = re.compile(r"changed password expiry for (?P<user>\S+)")
_PASSWD = re.compile(r"password (?:for '(?P<u1>[^']+)' )?changed(?: by '(?P<by>[^']+)')?(?: for (?P<u2>\S+))?")

# --- systemd-logind -----------------------------------------------------------------------------
_LOGIND_NEW = re.compile(r"New session (?P<id>\S+) of user (?P<user>[^\s.]+)\.?")
_LOGIND_GONE = re.compile(r"Removed session (?P<id>[^\s.]+)\.?")

AUTH_PROGRAMS = frozenset(
    {"sshd", "sshd-session", "sudo", "su", "useradd", "usermod", "userdel", "groupadd", "groupdel",
     "groupmod", "passwd", "chpasswd", "chage", "systemd-logind", "login", "gpasswd", "chsh", "chfn",
     "polkitd", "cron", "CRON"}
)  # fmt: skip


def parse_authlog(line: str, opts: ParseOptions = DEFAULT_OPTIONS) -> Event:
    """An auth/secure log line: the syslog header, then the program's message as ``system.auth``."""
    event = parse_syslog(line, opts, dataset=DATASET)
    enrich_auth(event)
    return event


def enrich_auth(event: Event) -> bool:
    """Add ``system.auth`` fields from ``process.name`` and ``message``; True if understood.

    The event's other fields are left alone; on success ``event.dataset`` becomes ``system.auth``.
    """
    process = event.get("process")
    message = event.get("message")
    if not isinstance(process, dict) or not isinstance(message, str):
        return False
    program = process.get("name")
    if not isinstance(program, str):
        return False
    handler = _HANDLERS.get(program)
    understood = handler(event, message) if handler is not None else False
    if not understood:
        understood = _pam(event, message)
    if understood:
        event["event"]["dataset"] = DATASET
        _relate(event)
    return understood


def is_auth_program(program: str | None) -> bool:
    return program in AUTH_PROGRAMS


# --- helpers ------------------------------------------------------------------------------------


def _set(event: Event, action: str, category: str, types: list[str], outcome: str | None = None) -> None:
    ev = event["event"]
    ev["action"] = action
    ev["category"] = [category]
    ev["type"] = types
    if outcome:
        ev["outcome"] = outcome


def _auth_fields(event: Event) -> dict[str, Any]:
    system = event.setdefault("system", {})
    auth: dict[str, Any] = system.setdefault("auth", {})
    return auth


def _user(event: Event, name: str | None) -> None:
    if name:
        event.setdefault("user", {})["name"] = name


# dotted quad, each part 0-255 in ASCII digits without a leading zero: already canonical
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}").fullmatch


def normalize_ip(text: str) -> str | None:
    """Canonical text of an IP address, or None.

    Most addresses in auth logs are already canonical dotted IPv4, recognised here by one regex
    match; anything else goes through :mod:`ipaddress` (cached: attackers repeat).
    """
    if _CANONICAL_IPV4(text) is not None:
        return text
    return _normalize_ip_slow(text)


@functools.lru_cache(maxsize=8192)
def _normalize_ip_slow(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _source(event: Event, ip: str | None, port: str | None = None) -> None:
    if not ip:
        return
    source: dict[str, Any] = event.setdefault("source", {})
    normal = normalize_ip(ip)
    if normal is not None:
        source["ip"] = normal
    else:
        source["address"] = ip  # a host name (UseDNS yes) is not an IP
        source.setdefault("domain", ip)
    if port and port.isdecimal():
        source["port"] = int(port)


def _relate(event: Event) -> None:
    """``related.user`` (the user, effective and target names) and ``related.ip``, each once."""
    users: list[str] = []
    user = event.get("user")
    if isinstance(user, dict):
        name = user.get("name")
        if name:
            users.append(name)
        for other in (user.get("effective"), user.get("target")):
            if isinstance(other, dict):
                name = other.get("name")
                if name and name not in users:
                    users.append(name)
    source = event.get("source")
    ip = source.get("ip") if isinstance(source, dict) else None
    if "related" in event:  # merge into what is there
        for name in users:
            add_related(event, "user", name)
        add_related(event, "ip", ip)
        return
    related: dict[str, list[str]] = {}  # the usual case: built at once, cheaper per line
    if users:
        related["user"] = users
    if ip:
        related["ip"] = [ip]
    if related:
        event["related"] = related


# --- programs -----------------------------------------------------------------------------------


def _sshd(event: Event, message: str) -> bool:
    ssh: dict[str, Any]
    m = _SSH_RESULT.match(message)
    if m:
        success = m["result"] == "Accepted"
        _set(
            event,
            "ssh_login",
            "authentication",
            ["start" if success else "info"],
            "success" if success else "failure",
        )
        _user(event, m["user"])
        _source(event, m["ip"], m["port"])
        ssh = _auth_fields(event).setdefault("ssh", {})
        ssh["event"] = m["result"]
        ssh["method"] = m["method"]
        if m["invalid"]:
            ssh["invalid_user"] = True
        if m["sig"]:
            ssh["signature"] = m["sig"]
        return True
    m = _SSH_INVALID.match(message)
    if m:
        _set(event, "invalid_user", "authentication", ["info"], "failure")
        _user(event, m["user"])
        _source(event, m["ip"], m["port"])
        _auth_fields(event).setdefault("ssh", {})["event"] = "Invalid"
        return True
    m = _SSH_MAX_ATTEMPTS.match(message) or _SSH_TOO_MANY.match(message)
    if m:
        _set(event, "ssh_max_auth_attempts", "authentication", ["info"], "failure")
        _user(event, m["user"])
        _source(event, m["ip"], m["port"])
        _auth_fields(event).setdefault("ssh", {})["event"] = "MaxAuthTries"
        return True
    m = _SSH_CLOSED.match(message)
    if m:
        _set(event, "ssh_disconnect", "network", ["connection", "end"])
        _user(event, m["user"] or m["user2"])
        _source(event, m["ip"], m["port"])
        ssh = _auth_fields(event).setdefault("ssh", {})
        ssh["event"] = m["what"]
        if message.endswith("[preauth]"):
            ssh["preauth"] = True
        return True
    return False


def _pam(event: Event, message: str) -> bool:
    m = _PAM.match(message)
    if not m:
        return False
    text = m["text"]
    pam: dict[str, Any] = {"module": m["module"], "service": m["service"], "kind": m["kind"]}
    _auth_fields(event)["pam"] = pam
    session = _PAM_SESSION.match(text)
    if session:
        opened = session["state"] == "opened"
        _set(event, "pam", "session", ["start" if opened else "end"])
        pam["session"] = session["state"]
        _user(event, session["user"])
        if session["by"]:
            pam["by"] = session["by"]
        return True
    password = _PAM_PASSWORD.match(text)
    if password:
        _set(event, "password_changed", "iam", ["user", "change"], "success")
        _user(event, password["user"])
        return True
    if text.startswith("authentication failure"):
        _set(event, "pam", "authentication", ["info"], "failure")
        fields = dict(_PAM_KV.findall(text))
        _user(event, fields.get("user") or fields.get("ruser") or None)
        rhost = fields.get("rhost")
        if rhost:
            _source(event, rhost)
        if fields.get("tty"):
            pam["tty"] = fields["tty"]
        return True
    _set(event, "pam", "authentication", ["info"])
    return True


def _sudo(event: Event, message: str) -> bool:
    m = _SUDO.match(message)
    if not m:
        return False
    parts = [p.strip() for p in m["rest"].split(" ; ")]
    sudo: dict[str, Any] = {}
    error: str | None = None
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key.isupper() and key.isalpha():
            sudo[key.lower()] = value
        elif error is None:
            error = part
        else:
            sudo.setdefault("extra", []).append(part)
    if "command" not in sudo and error is None:
        return False
    _set(event, "sudo", "process", ["start"] if error is None else ["info"], "failure" if error else "success")
    if error is not None:
        sudo["error"] = error
    _user(event, m["user"])
    target = sudo.get("user", "root")
    event.setdefault("user", {})["effective"] = {"name": target}
    if "command" in sudo:
        event["process"]["command_line"] = sudo["command"]
    _auth_fields(event)["sudo"] = sudo
    return True


def _su(event: Event, message: str) -> bool:
    m = _SU_TO.match(message)
    if m:
        ok = not m["failed"]
        tty = m["tty"]
    else:
        m = _SU_SHADOW.match(message)
        if m:
            ok = m["result"] == "Successful"
            tty = None
        else:
            m = _SU_SHORT.match(message)
            if not m:
                return False
            ok = m["sign"] == "+"
            tty = m["tty"]
    _set(event, "su", "authentication", ["start" if ok else "info"], "success" if ok else "failure")
    _user(event, m["user"])
    event["user"]["effective"] = {"name": m["target"]}
    if tty:
        _auth_fields(event)["su"] = {"tty": tty}
    return True


def _useradd(event: Event, message: str) -> bool:
    m = _NEW_USER.match(message)
    if m:
        _set(event, "user_created", "iam", ["user", "creation"], "success")
        event["user"] = {"name": m["user"], "id": m["uid"]}
        event["group"] = {"id": m["gid"]}
        extra = dict(kv.split("=", 1) for kv in m["rest"].split(", ") if "=" in kv)
        useradd: dict[str, Any] = {k: v for k, v in extra.items() if k in ("home", "shell", "from")}
        if useradd:
            _auth_fields(event)["useradd"] = useradd
        return True
    return _group_change(event, message) or _usermod(event, message)


def _group_change(event: Event, message: str) -> bool:
    m = _NEW_GROUP.match(message)
    if m:
        _set(event, "group_created", "iam", ["group", "creation"], "success")
        event["group"] = {"name": m["group"], "id": m["gid"]}
        return True
    m = _DELETE_GROUP.match(message)
    if m:
        _set(event, "group_deleted", "iam", ["group", "deletion"], "success")
        event["group"] = {"name": m["g1"] or m["g2"]}
        return True
    return False


def _usermod(event: Event, message: str) -> bool:
    m = _ADD_TO_GROUP.match(message)
    if m:
        _set(event, "user_modified", "iam", ["user", "change", "group"], "success")
        _user(event, m["user"])
        event["group"] = {"name": m["group"]}
        return True
    m = _CHANGE_USER.match(message) or _CHAGE.match(message)
    if m:
        _set(event, "user_modified", "iam", ["user", "change"], "success")
        _user(event, m["user"])
        _auth_fields(event)["change"] = message
        return True
    return False


def _userdel(event: Event, message: str) -> bool:
    m = _DELETE_USER.match(message)
    if m:
        _set(event, "user_deleted", "iam", ["user", "deletion"], "success")
        _user(event, m["user"])
        return True
    return _group_change(event, message)


def _passwd(event: Event, message: str) -> bool:
    m = _PASSWD.match(message)
    if not m:
        return False
    user = m["u1"] or m["u2"]
    if not user:
        return False
    _set(event, "password_changed", "iam", ["user", "change"], "success")
    _user(event, user)
    return True


def _logind(event: Event, message: str) -> bool:
    m = _LOGIND_NEW.match(message)
    if m:
        _set(event, "new_session", "session", ["start"])
        _user(event, m["user"])
        _auth_fields(event)["session"] = {"id": m["id"]}
        return True
    m = _LOGIND_GONE.match(message)
    if m:
        _set(event, "session_removed", "session", ["end"])
        _auth_fields(event)["session"] = {"id": m["id"]}
        return True
    return False


_HANDLERS: dict[str, Callable[[Event, str], bool]] = {
    "sshd": _sshd,
    "sshd-session": _sshd,
    "sudo": _sudo,
    "su": _su,
    "useradd": _useradd,
    "usermod": _usermod,
    "gpasswd": _usermod,
    "chage": _usermod,
    "userdel": _userdel,
    "groupadd": _group_change,
    "groupdel": _group_change,
    "groupmod": _group_change,
    "passwd": _passwd,
    "chpasswd": _passwd,
    "systemd-logind": _logind,
}
