"""The flow meter: packets in, bidirectional flow records (and protocol metadata) out.

A flow is keyed by (protocol, addresses, ports, VLAN); the first packet's sender is the source.
Both directions' keys point at their own counter list, which points at the shared flow record, so a
packet costs one decode, one tuple and one dict lookup whichever way it travels.

A flow ends when TCP closes (FIN both ways, or RST, then ``close_linger`` seconds of quiet), when
it has been idle for ``idle_timeout``, when it has lasted ``active_timeout`` (the record is emitted
and counting goes on in a fresh one), or at :meth:`FlowMeter.flush`. Time is the packets' own
time, so replaying a capture is deterministic; live capture also calls :meth:`expire` with the
wall clock so quiet flows still end.
"""

from __future__ import annotations

import builtins
import struct
from typing import Any

from agent.flows.decode import ETH_IPV4_L4, ETH_IPV6_L4, ETH_VLAN_IPV4_L4, RST, TCP, Malformed, decode
from agent.flows.dns import parse_dns
from agent.flows.events import flow_event, metadata_event
from agent.flows.http import FIRST_BYTES as HTTP_FIRST_BYTES
from agent.flows.http import PREFIXES as HTTP_PREFIXES
from agent.flows.http import parse_request
from agent.flows.pcap import MAX_RECORD as _MAX_RECORD
from agent.flows.tls import parse_client_hello
from soc_common.ecs import Event

# flow record layout (a list: cheaper than an object on the per-packet path)
# _DEADLINE is start + active timeout, so the per-packet check is one comparison
_START, _LAST, _TIMEOUT, _PROTO, _SRC, _DST, _SPORT, _DPORT, _VLAN, _FWD, _REV, _FINS, _DEADLINE = range(13)
# per-direction counters: [packets, bytes, tcp flags, flow record]
_PKTS, _BYTES, _FLAGS, _FLOW = range(4)

_fast = ETH_IPV4_L4.unpack_from
_fast_vlan = ETH_VLAN_IPV4_L4.unpack_from
_fast_v6 = ETH_IPV6_L4.unpack_from
_PCAP_LE_RECORD = struct.Struct("<IIII").unpack_from  # classic pcap record header, little-endian
_TLS_HANDSHAKE = 0x16
_TCP_CANDIDATE_FIRST = HTTP_FIRST_BYTES | {_TLS_HANDSHAKE}
_DNS_PORT = 53
_FRAGMENT_TTL = 60.0
_MAX_FRAGMENT_STATE = 65536


class FlowMeter:
    """Meter packets into flows. Not thread-safe: one meter per capture thread."""

    def __init__(
        self,
        *,
        host: dict[str, Any] | None = None,
        active_timeout: float = 300.0,
        idle_timeout: float = 60.0,
        close_linger: float = 2.0,
        metadata: bool = True,
        max_flows: int = 65_536,
    ) -> None:
        if active_timeout <= 0 or idle_timeout <= 0 or close_linger < 0:
            raise ValueError("timeouts must be positive")
        self.host = dict(host) if host else None
        self.active_timeout = float(active_timeout)
        self.idle_timeout = float(idle_timeout)
        self.close_linger = float(close_linger)
        self.metadata = metadata
        self.max_flows = max_flows
        #: packets seen, IP bytes metered, frames that could not be decoded, non-IP frames,
        #: flows emitted, metadata events emitted, IP fragments seen, flows cut short by max_flows
        self._ended_packets = 0
        self._ended_bytes = 0
        self.malformed = 0
        self.non_ip = 0
        self.flows = 0
        self.metadata_events = 0
        self.fragments = 0
        self.evicted = 0
        self._table: dict[tuple[Any, ...], list[Any]] = {}
        self._lookup = self._table.get
        #: every live flow record once, in the order opened (the table holds each twice)
        self._flows: dict[int, list[Any]] = {}
        self._active = 0
        self._ready: list[Event] = []
        self._fragments: dict[tuple[Any, ...], tuple[int, int, float]] = {}
        self._scan_every = max(0.5, min(self.idle_timeout, self.active_timeout) / 8)
        self._next_scan = 0.0

    @property
    def packets(self) -> int:
        """Frames fed so far (IP, non-IP and malformed)."""
        return self._ended_packets + self._live_totals()[0] + self.non_ip + self.malformed

    @property
    def bytes(self) -> int:
        """IP bytes (from the IP headers' lengths) metered so far."""
        return self._ended_bytes + self._live_totals()[1]

    def _live_totals(self) -> tuple[int, int]:
        packets = octets = 0
        for counters in list(self._table.values()):  # a snapshot: status() may run in another thread
            packets += counters[0]
            octets += counters[1]
        return packets, octets

    @property
    def pending(self) -> int:
        """Events ready to be collected with :meth:`drain`."""
        return len(self._ready)

    @property
    def active_flows(self) -> int:
        return self._active

    # ------------------------------------------------------------------ per packet
    def feed(self, ts: float, linktype: int, data: builtins.bytes) -> None:
        """Meter one captured frame; finished flows queue up for :meth:`expire` / :meth:`drain`."""
        self.feed_at(ts, linktype, data, 0, len(data))

    def feed_at(self, ts: float, linktype: int, buf: Any, off: int, end: int) -> None:
        """Meter the frame ``buf[off:end]`` without copying it (``buf`` may be a capture's mmap)."""
        if ts >= self._next_scan:
            self._scan(ts)
        if linktype == 1 and end - off >= 54:
            etype, vihl, size, frag, proto, src, dst, sport, dport, doff, flags = _fast(buf, off)
            if etype == 0x0800 and vihl == 0x45 and not frag & 0x3FFF and size >= 40:
                if proto == 6:
                    pend = off + 14 + size
                    self._account(ts, (proto, src, dst, sport, dport, 0), size, flags, buf,
                                  off + 34 + ((doff >> 4) << 2), end if pend > end else pend)  # fmt: skip
                    return
                if proto == 17:
                    pend = off + 14 + size
                    self._account(ts, (proto, src, dst, sport, dport, 0), size, 0, buf, off + 42,
                                  end if pend > end else pend)  # fmt: skip
                    return
        self._feed_decoded(ts, linktype, buf, off, end)

    def feed_pcap(self, buf: Any, off: int, size: int, unit: float, limit: int) -> tuple[int, int]:
        """Meter up to ``limit`` records of a little-endian classic pcap of Ethernet frames.

        ``buf[off:size]`` holds the records; ``unit`` is seconds per timestamp fraction tick.
        Returns (offset reached, records metered); stops early before a damaged record so the
        reader can report it. This is the replay hot path: the record walk, the common-case decode
        (option-less IPv4 TCP/UDP) and the per-flow update of :meth:`_account` are inlined into one
        loop over local names, because a Python call per packet costs as much as the work itself.
        Every other frame goes through :meth:`_feed_decoded`; the results are the same as
        :meth:`feed_at` per packet (tests/flows compares the two).
        """
        rec = _PCAP_LE_RECORD
        fast, fast_vlan, fast_v6 = _fast, _fast_vlan, _fast_v6
        max_record = _MAX_RECORD
        lookup = self._lookup
        slow = self._feed_decoded
        metadata = self.metadata
        candidates = _TCP_CANDIDATE_FIRST
        next_scan = self._next_scan
        last = size - 16  # the last offset a record header fits at
        done = 0
        for done in range(limit):  # noqa: B007 (the index is the count when the loop breaks)
            if off > last:
                break
            sec, frac, caplen, _wire = rec(buf, off)
            start = off + 16
            end = start + caplen
            if caplen > max_record or end > size:
                break
            off = end
            ts = sec + frac * unit
            if ts >= next_scan:
                self._scan(ts)
                next_scan = self._next_scan
            if caplen < 54:
                slow(ts, 1, buf, start, end)
                continue
            # the common shapes, decoded with one struct call each; anything else takes the slow path
            etype, vihl, ipsize, frag, proto, src, dst, sport, dport, doff, flags = fast(buf, start)
            if etype == 0x0800:
                if vihl != 0x45 or frag & 0x3FFF or ipsize < 40:
                    slow(ts, 1, buf, start, end)
                    continue
                vlan = 0
                l4 = start + 34
                pend = start + 14 + ipsize
            elif etype == 0x8100 and caplen >= 58:
                vlan, etype, vihl, ipsize, frag, proto, src, dst, sport, dport, doff, flags = fast_vlan(buf, start)
                if etype != 0x0800 or vihl != 0x45 or frag & 0x3FFF or ipsize < 40:
                    slow(ts, 1, buf, start, end)
                    continue
                vlan &= 0x0FFF
                l4 = start + 38
                pend = start + 18 + ipsize
            elif etype == 0x86DD and caplen >= 68:
                vtc, ipsize, proto, src, dst, sport, dport, doff, flags = fast_v6(buf, start)
                if vtc >> 4 != 6 or ipsize < 20 or (proto != 6 and proto != 17):
                    slow(ts, 1, buf, start, end)
                    continue
                ipsize += 40
                vlan = 0
                l4 = start + 54
                pend = start + 14 + ipsize
            else:
                slow(ts, 1, buf, start, end)
                continue
            if proto == 6:
                poff = l4 + ((doff >> 4) << 2)
            elif proto == 17:
                poff = l4 + 8
                flags = 0
            elif proto == 1 or proto == 58:  # ICMP: type/code pairing is decode()'s job
                slow(ts, 1, buf, start, end)
                continue
            else:  # GRE, ESP, SCTP...: addresses only, no payload to look into (IPv4 only, see above)
                sport = dport = flags = 0
                poff = end
            if pend > end:
                pend = end
            key = (proto, src, dst, sport, dport, vlan)
            # --- inlined _account(): keep in step with it
            counters = lookup(key)
            if counters is None:
                counters = self._open(ts, key)
            else:
                flow = counters[3]
                if ts - flow[1] > flow[2] or ts > flow[12] or (flags & 0x12 == 0x02 and flow[11]):
                    counters = self._restart(ts, key, counters)
                else:
                    flow[1] = ts
            counters[0] += 1
            counters[1] += ipsize
            if flags:
                counters[2] |= flags
                if flags & 0x05:
                    self._closing(counters, flags)
            if poff < pend and metadata:
                if proto == 6:
                    if buf[poff] in candidates or sport == 53 or dport == 53:
                        self._inspect(ts, proto, src, dst, sport, dport, vlan, buf, poff, pend)
                elif sport == 53 or dport == 53:
                    self._inspect(ts, proto, src, dst, sport, dport, vlan, buf, poff, pend)
        else:
            done = limit
        return off, done

    def _feed_decoded(self, ts: float, linktype: int, buf: Any, off: int, end: int) -> None:
        """The general path: full decode (any link type, VLAN, IPv6, options, fragments, ICMP)."""
        if ts >= self._next_scan:
            self._scan(ts)
        try:
            decoded = decode(linktype, buf, off, end)
        except (Malformed, struct.error, IndexError):
            self.malformed += 1
            return
        if decoded is None:
            self.non_ip += 1
            return
        proto, src, dst, sport, dport, size, flags, vlan, poff, pend, fragment = decoded
        if fragment is not None:
            sport, dport = self._fragment_ports(ts, proto, src, dst, sport, dport, fragment)
        self._account(ts, (proto, src, dst, sport, dport, vlan), size, flags, buf, poff, pend)

    def _account(self, ts: float, key: tuple[Any, ...], size: int, flags: int, buf: Any, poff: int, pend: int) -> None:
        """Count one decoded packet into its flow; list indices are literals (see the layout above)."""
        counters = self._lookup(key)
        if counters is None:
            counters = self._open(ts, key)
        else:
            flow = counters[3]
            if (
                ts - flow[1] > flow[2]
                or ts > flow[12]
                or (flags & 0x12 == 0x02 and flow[11])  # a fresh SYN on a closed connection
            ):
                counters = self._restart(ts, key, counters)
            else:
                flow[1] = ts
        counters[0] += 1
        counters[1] += size
        if flags:
            counters[2] |= flags
            if flags & 0x05:  # FIN or RST
                self._closing(counters, flags)
        if poff < pend and self.metadata:
            proto, src, dst, sport, dport, vlan = key
            if proto == 6:
                if buf[poff] in _TCP_CANDIDATE_FIRST or sport == 53 or dport == 53:
                    self._inspect(ts, proto, src, dst, sport, dport, vlan, buf, poff, pend)
            elif proto == 17 and (sport == 53 or dport == 53):
                self._inspect(ts, proto, src, dst, sport, dport, vlan, buf, poff, pend)

    # ------------------------------------------------------------------ output
    def drain(self) -> list[Event]:
        """Return (and forget) the events ready so far without expiring anything."""
        ready, self._ready = self._ready, []
        return ready

    def expire(self, now: float) -> list[Event]:
        """End flows idle, closed or too long at time ``now``; return every event ready."""
        self._scan(now)
        return self.drain()

    def flush(self) -> list[Event]:
        """End every flow (end of input or shutdown) and return every event ready."""
        for flow in self._flows.values():
            self._emit(flow, "end_of_input")
        self._table.clear()
        self._flows.clear()
        self._active = 0
        self._fragments.clear()
        return self.drain()

    def stats(self) -> dict[str, int]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "malformed": self.malformed,
            "non_ip": self.non_ip,
            "flows": self.flows,
            "active_flows": self._active,
            "metadata_events": self.metadata_events,
            "fragments": self.fragments,
            "evicted": self.evicted,
        }

    # ------------------------------------------------------------------ flow life cycle
    def _open(self, ts: float, key: tuple[Any, ...]) -> list[Any]:
        if self._active >= self.max_flows:
            self._evict_oldest()
        proto, src, dst, sport, dport, vlan = key
        flow: list[Any] = [ts, ts, self.idle_timeout, proto, src, dst, sport, dport, vlan, None, None, 0, 0.0]
        flow[_DEADLINE] = ts + self.active_timeout
        fwd: list[Any] = [0, 0, 0, flow]
        rev: list[Any] = [0, 0, 0, flow]
        flow[_FWD] = fwd
        flow[_REV] = rev
        self._table[key] = fwd
        self._flows[id(flow)] = flow
        reverse = (proto, dst, src, dport, sport, vlan)
        if reverse != key:  # a LAND-style packet (same address and port both ends) is one direction
            self._table[reverse] = rev
        self._active += 1
        return fwd

    def _forget(self, flow: list[Any]) -> None:
        proto, src, dst, sport, dport, vlan = flow[_PROTO : _VLAN + 1]
        self._table.pop((proto, src, dst, sport, dport, vlan), None)
        self._table.pop((proto, dst, src, dport, sport, vlan), None)
        del self._flows[id(flow)]
        self._active -= 1

    def _restart(self, ts: float, key: tuple[Any, ...], counters: list[Any]) -> list[Any]:
        """The packet does not belong to its matching flow any more: end that one, start anew."""
        flow = counters[_FLOW]
        if ts - flow[_LAST] > flow[_TIMEOUT] or flow[_FINS]:
            self._emit(flow, "closed" if flow[_FINS] else "idle_timeout")
            self._forget(flow)
            return self._open(ts, key)
        # active timeout: keep the original orientation so a long transfer stays readable
        self._emit(flow, "active_timeout")
        self._forget(flow)
        fwd = self._open(ts, tuple(flow[_PROTO : _VLAN + 1]))
        return fwd if counters is flow[_FWD] else fwd[_FLOW][_REV]

    def _closing(self, counters: list[Any], flags: int) -> None:
        flow = counters[_FLOW]
        if flags & RST:
            flow[_FINS] |= 4
        else:
            flow[_FINS] |= 1 if counters is flow[_FWD] else 2
        if flow[_FINS] & 4 or flow[_FINS] & 3 == 3:
            flow[_TIMEOUT] = self.close_linger

    def _scan(self, now: float) -> None:
        """Emit flows idle (or closed and quiet) at ``now``.

        The active timeout is enforced per packet (see :meth:`_restart`), which keeps a long
        flow's orientation across its records; a flow that stops sending ends by idle timeout.
        """
        self._next_scan = now + self._scan_every
        done = [f for f in self._flows.values() if now - f[1] > f[2]]
        for flow in done:
            self._emit(flow, "closed" if flow[_FINS] else "idle_timeout")
            self._forget(flow)
        if self._fragments:
            self._fragments = {k: v for k, v in self._fragments.items() if now - v[2] < _FRAGMENT_TTL}

    def _evict_oldest(self) -> None:
        """The table is full: end the least recently seen tenth of it rather than grow unbounded."""
        flows = sorted(self._flows.values(), key=lambda f: f[_LAST])
        for flow in flows[: max(1, len(flows) // 10)]:
            self._emit(flow, "evicted")
            self._forget(flow)
            self.evicted += 1

    def _emit(self, flow: list[Any], reason: str) -> None:
        fwd, rev = flow[_FWD], flow[_REV]
        self._ready.append(
            flow_event(
                host=self.host,
                proto=flow[_PROTO],
                src=flow[_SRC],
                dst=flow[_DST],
                sport=flow[_SPORT],
                dport=flow[_DPORT],
                vlan=flow[_VLAN],
                start=flow[_START],
                end=flow[_LAST],
                fwd=(fwd[_PKTS], fwd[_BYTES], fwd[_FLAGS]),
                rev=(rev[_PKTS], rev[_BYTES], rev[_FLAGS]),
                reason=reason,
            )
        )
        self.flows += 1
        self._ended_packets += fwd[_PKTS] + rev[_PKTS]
        self._ended_bytes += fwd[_BYTES] + rev[_BYTES]

    # ------------------------------------------------------------------ fragments
    def _fragment_ports(
        self,
        ts: float,
        proto: int,
        src: builtins.bytes,
        dst: builtins.bytes,
        sport: int,
        dport: int,
        fragment: tuple[int, bool],
    ) -> tuple[int, int]:
        """Later fragments carry no ports: use the first fragment's (0, 0 if it was not seen)."""
        self.fragments += 1
        key = (proto, src, dst, fragment[0])
        if fragment[1]:
            if len(self._fragments) < _MAX_FRAGMENT_STATE:
                self._fragments[key] = (sport, dport, ts)
            return sport, dport
        known = self._fragments.get(key)
        return (known[0], known[1]) if known else (0, 0)

    # ------------------------------------------------------------------ protocol metadata
    def _inspect(
        self,
        ts: float,
        proto: int,
        src: builtins.bytes,
        dst: builtins.bytes,
        sport: int,
        dport: int,
        vlan: int,
        buf: Any,
        poff: int,
        pend: int,
    ) -> None:
        """Parse DNS, TLS ClientHello or an HTTP request from a candidate packet's payload.

        Cheap prefix checks come before the payload is copied out of the capture buffer.
        """
        if sport == _DNS_PORT or dport == _DNS_PORT:
            payload = bytes(buf[poff:pend])
            if proto == TCP:
                if len(payload) < 14 or int.from_bytes(payload[:2], "big") > len(payload) - 2:
                    return  # only whole messages at the start of a segment
                payload = payload[2:]
            dns = parse_dns(payload)
            if dns is None:
                return
            client, server = ((src, sport), (dst, dport)) if dns["type"] == "query" else ((dst, dport), (src, sport))
            fields: dict[str, Any] = {"dns": dns}
            dataset, protocol, identity = "network_traffic.dns", "dns", (dns["id"], dns["type"])
        elif buf[poff] == _TLS_HANDSHAKE:
            if pend - poff < 43 or buf[poff + 5] != 1:
                return  # not a ClientHello
            tls = parse_client_hello(bytes(buf[poff:pend]))
            if tls is None:
                return
            client, server = (src, sport), (dst, dport)
            fields = {"tls": tls}
            dataset, protocol, identity = "network_traffic.tls", "tls", tls["client"]["ja3"]
        else:
            if bytes(buf[poff : poff + 4]) not in HTTP_PREFIXES:
                return
            http = parse_request(bytes(buf[poff:pend]))
            if http is None:
                return
            client, server = (src, sport), (dst, dport)
            fields = http
            dataset, protocol, identity = "network_traffic.http", "http", http["url"]["original"]
        self._ready.append(
            metadata_event(
                host=self.host,
                dataset=dataset,
                protocol=protocol,
                ts=ts,
                proto=proto,
                client=client,
                server=server,
                vlan=vlan,
                fields=fields,
                identity=identity,
            )
        )
        self.metadata_events += 1
