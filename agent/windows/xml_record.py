"""Windows event XML <-> the record dict the normaliser reads.

The live Event Log API renders events as XML; :func:`xml_to_record` turns that XML into the same
dict shape the ``evtx`` package's JSON output has, so the live path and the ``.evtx`` path share one
normaliser. :func:`record_to_xml` goes the other way to fill ``event.original`` for records that came
as JSON: the XML spelling keeps backslashes single, so Sigma keyword searches (``\\mimilib.dll``) hit.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from agent.windows.record import to_text


class XmlRecordError(ValueError):
    """The text is not a Windows event XML document."""


# Characters XML 1.0 forbids but event fields do contain (binary junk in PrivilegeList, ...).
# They are swapped for private-use code points so expat parses, then swapped back.
_ILLEGAL_CHARS = "".join(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)))
_STANDIN_BASE = 0xF780
_TO_STANDIN = str.maketrans({c: chr(_STANDIN_BASE + ord(c)) for c in _ILLEGAL_CHARS})
_FROM_STANDIN = str.maketrans({chr(_STANDIN_BASE + ord(c)): c for c in _ILLEGAL_CHARS})
_ILLEGAL_REF = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")


def _standin_ref(match: re.Match[str]) -> str:
    ref = match.group(1)
    code = int(ref[1:], 16) if ref[0] in "xX" else int(ref)
    if code < 0x20 and code not in (0x09, 0x0A, 0x0D):
        return chr(_STANDIN_BASE + code)
    return match.group(0)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


class _Converter:
    """Element tree -> evtx-JSON-shaped dict (``#attributes`` / ``#text`` conventions)."""

    def __init__(self, restore: bool) -> None:
        self.restore = restore

    def text(self, value: str | None) -> str | None:
        if value is not None and self.restore:
            return value.translate(_FROM_STANDIN)
        return value

    def data_text(self, value: str | None) -> str:
        """A ``<Data>`` value; indentation-only content is a pretty-printer's empty element."""
        if value is None or (not value.strip() and "\n" in value):
            return ""
        return self.text(value) or ""

    def attrs(self, el: ET.Element) -> dict[str, str]:
        return {_local(k): self.text(v) or "" for k, v in el.attrib.items()}

    def element(self, el: ET.Element) -> Any:
        children = list(el)
        text = self.text(el.text)
        if not children:
            if not el.attrib:
                # pretty-printed empty elements hold only indentation: that is no value
                return text if text is not None and text.strip() else None
            node: dict[str, Any] = {"#attributes": self.attrs(el)}
            if text is not None and text.strip():
                node["#text"] = text
            return node
        out: dict[str, Any] = {"#attributes": self.attrs(el)} if el.attrib else {}
        for child in children:
            self._add(out, _local(child.tag), self.element(child))
        return out

    def event_data(self, el: ET.Element) -> dict[str, Any]:
        """``<Data Name="X">v</Data>`` becomes ``{"X": "v"}`` as in the evtx JSON; unnamed data is kept."""
        out: dict[str, Any] = {}
        unnamed: list[str] = []
        for child in el:
            tag = _local(child.tag)
            name = child.get("Name")
            if tag == "Data" and name is not None:
                self._add(out, name, self.data_text(child.text))
            elif tag == "Data":
                unnamed.append(self.data_text(child.text))
            else:
                self._add(out, tag, self.element(child))
        if unnamed:
            out["Data"] = {"#text": unnamed if len(unnamed) > 1 else unnamed[0]}
        return out

    @staticmethod
    def _add(out: dict[str, Any], key: str, value: Any) -> None:
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]


def _parse(xml: str) -> tuple[ET.Element, bool]:
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise XmlRecordError("DTDs are not allowed in event XML")
    # XML parsers turn a literal CR LF into LF; values (PrivilegeList, Properties) keep CR LF in
    # the record, so carry CR through as a character reference.
    xml = xml.replace("\r", "&#13;")
    data = xml.encode("utf-8", "surrogatepass")
    try:
        return ET.fromstring(data), False
    except ET.ParseError:
        pass
    cleaned = _ILLEGAL_REF.sub(_standin_ref, xml.translate(_TO_STANDIN))
    try:
        return ET.fromstring(cleaned.encode("utf-8", "surrogatepass")), True
    except ET.ParseError as exc:
        raise XmlRecordError(f"not well-formed XML: {exc}") from None


def xml_to_record(xml: str) -> dict[str, Any]:
    """Convert one rendered ``<Event>`` XML document to ``{"Event": {"System": ..., "EventData": ...}}``.

    Raises :class:`XmlRecordError` when the text is not XML or not an ``Event`` element.
    """
    if xml.startswith("<?xml"):
        xml = xml[xml.find("?>") + 2 :]
    root, restored = _parse(xml.strip())
    if _local(root.tag) != "Event":
        raise XmlRecordError(f"root element is <{_local(root.tag)}>, not <Event>")
    conv = _Converter(restored)
    event: dict[str, Any] = {}
    for child in root:
        tag = _local(child.tag)
        value = conv.event_data(child) if tag == "EventData" else conv.element(child)
        conv._add(event, tag, value)
    return {"Event": event}


def _escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _attr(name: str, value: Any) -> str:
    text = _escape(value if type(value) is str else to_text(value))
    return f' {name}="{text.replace(chr(34), "&quot;")}"'


def _render(name: str, node: Any, out: list[str]) -> None:
    """Append ``node`` as element ``name``; hot path of the file reader, hence the plain loops."""
    if type(node) is list:
        for item in node:
            _render(name, item, out)
        return
    if not isinstance(node, dict):
        text = node if type(node) is str else to_text(node)
        out.append(f"<{name}>{_escape(text)}</{name}>" if text else f"<{name}/>")
        return
    head = name
    body: list[str] = []
    for key, value in node.items():
        first = key[:1]
        if first == "#":
            if key == "#attributes" and isinstance(value, dict):
                head += "".join(_attr(k, v) for k, v in value.items() if k[:5] != "xmlns")
            elif key == "#text" and value is not None:
                text = to_text(value)
                body.append(_escape(" ".join(text) if type(text) is list else text))
        elif first == "@":
            head += _attr(key[1:], value)
        elif name == "EventData" and key != "Data" and key != "Binary":
            text = value if type(value) is str else to_text(value)
            for item in text if type(text) is list else (text,):
                body.append(f'<Data Name="{_escape(key).replace(chr(34), "&quot;")}">{_escape(item)}</Data>')
        else:
            _render(key, value, body)
    out.append(f"<{head}>{''.join(body)}</{name}>" if body else f"<{head}/>")


def record_to_xml(record: Mapping[str, Any]) -> str:
    """Compact XML for a record dict: the spelling an analyst and a keyword rule expect."""
    event = record.get("Event", record)
    out: list[str] = []
    _render("Event", event, out)
    return out[0]
