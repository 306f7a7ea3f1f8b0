"""Registered domain of a DNS name, offline: a small bundled suffix list plus "last two labels".

The full Public Suffix List changes weekly and cannot be fetched at run time here, and tunnelling
detection only needs a stable "parent" to count sub-domains under. So: if the name ends with one
of the common multi-label public suffixes below (the Vietnamese second-level domains the offices
see most, and the usual foreign ones), the registered domain is that suffix plus one label;
otherwise it is the last two labels. A suffix missing from the list only makes the parent one
label too short (``foo.example.xx.yy`` counted as ``xx.yy``), which merges more names under one
parent: more sensitive, never blind. Sites can add suffixes in ``[anomaly.dns] extra_suffixes``.
"""

from __future__ import annotations

from collections.abc import Iterable

MULTI_LABEL_SUFFIXES: frozenset[str] = frozenset(
    {
        # Viet Nam (VNNIC second-level domains)
        "com.vn",
        "net.vn",
        "org.vn",
        "edu.vn",
        "gov.vn",
        "ac.vn",
        "biz.vn",
        "info.vn",
        "int.vn",
        "pro.vn",
        "health.vn",
        "name.vn",
        "id.vn",
        "io.vn",
        # common elsewhere
        "co.uk",
        "org.uk",
        "ac.uk",
        "gov.uk",
        "ltd.uk",
        "plc.uk",
        "me.uk",
        "com.au",
        "net.au",
        "org.au",
        "edu.au",
        "gov.au",
        "co.jp",
        "ne.jp",
        "or.jp",
        "ac.jp",
        "go.jp",
        "co.kr",
        "or.kr",
        "go.kr",
        "ac.kr",
        "com.cn",
        "net.cn",
        "org.cn",
        "gov.cn",
        "edu.cn",
        "com.hk",
        "com.sg",
        "com.my",
        "com.tw",
        "co.th",
        "in.th",
        "go.th",
        "com.ph",
        "co.id",
        "go.id",
        "com.br",
        "com.mx",
        "com.ar",
        "com.tr",
        "co.in",
        "co.za",
        "co.nz",
        "com.ru",
        # hosting platforms where every customer owns a sub-domain
        "cloudfront.net",
        "amazonaws.com",
        "azurewebsites.net",
        "blogspot.com",
        "github.io",
        "herokuapp.com",
        "appspot.com",
        "duckdns.org",
        "no-ip.org",
        "ddns.net",
    }
)


class DomainSplitter:
    """Splits names into (sub-domain part, registered domain) with the heuristic above."""

    def __init__(self, extra_suffixes: Iterable[str] = ()) -> None:
        self.suffixes = MULTI_LABEL_SUFFIXES | {s.strip(".").lower() for s in extra_suffixes if s.strip(".")}
        self.max_suffix_labels = max(s.count(".") + 1 for s in self.suffixes)

    def split(self, name: str) -> tuple[str, str]:
        """``("a1b2.t.exfil", "example.net")`` for ``a1b2.t.exfil.example.net``; lower-cased, no final dot."""
        labels = [label for label in name.strip().rstrip(".").lower().split(".") if label]
        if len(labels) <= 2:
            return "", ".".join(labels)
        keep = 2
        for n in range(min(self.max_suffix_labels, len(labels) - 1), 1, -1):
            if ".".join(labels[-n:]) in self.suffixes:
                keep = n + 1
                break
        return ".".join(labels[:-keep]), ".".join(labels[-keep:])

    def registered_domain(self, name: str) -> str:
        return self.split(name)[1]
