"""Vectorised replay of classic pcap files: numpy decodes and aggregates, the meter keeps the rules.

Replaying a capture packet by packet in Python costs about a microsecond and a half a packet, most
of it the per-packet dict lookup and counter updates. This path takes a chunk of records at once,
decodes the common frame shapes (Ethernet or 802.1Q IPv4 without options or fragments, any protocol
but ICMP; IPv6 TCP/UDP without extension headers) with numpy fancy indexing, groups the packets per
bidirectional flow and adds each flow's packets, bytes and flags in one step, so Python work is per
flow, not per packet.

Exactness comes from only aggregating what provably needs no per-packet rule. Within a flow,
packets are aggregated up to the first one that would change the flow's life: a FIN or RST, a gap
over the idle timeout, a time past the active deadline. That packet and the rest of its flow's
packets in the chunk, every frame of another shape, and every flow sharing addresses with such a
frame (fragments, IP options, extension headers) go through :meth:`FlowMeter.feed_at` in capture
order, with the meter's expiry scans run where the per-packet path runs them (see :meth:`_chunk`
for why running them after the aggregation is exact). Protocol metadata (DNS, TLS ClientHello,
HTTP) is parsed per candidate packet with the per-packet path's gates; it reads the packet only,
not the flow state. The records and counters are the per-packet path's (tests/flows compares
them); within one chunk the events may be queued in a different order.

numpy is optional (the ``flows`` extra): without it :func:`vector_bulk` returns ``None`` and the
replay uses :meth:`FlowMeter.feed_pcap`.
"""

from __future__ import annotations

import itertools
import struct
from typing import TYPE_CHECKING, Any

from agent.flows.decode import _IPV6_EXT
from agent.flows.meter import _TCP_CANDIDATE_FIRST, FlowMeter
from agent.flows.pcap import MAX_RECORD, Bulk

try:
    import numpy as np

    HAVE_NUMPY = True
except ImportError:  # pragma: no cover - exercised only where the extra is not installed
    HAVE_NUMPY = False

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: records per numpy chunk: big enough to amortise numpy's per-call cost, small enough for memory
CHUNK_RECORDS = 16384
#: below this many records (a chunk, or a piece of one between scans) the per-packet loop is cheaper
MIN_SEGMENT = 192

_CAPLEN = struct.Struct("<8xI").unpack_from  # a record header's captured length
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_FIN_RST = 0x05
_FWD, _REV, _FINS, _DEADLINE, _LAST = 9, 10, 11, 12, 1  # the meter's flow record layout


def vector_bulk(meter: FlowMeter) -> Bulk | None:
    """The numpy bulk consumer for ``meter`` (see :func:`agent.flows.pcap.pump`), or None without numpy."""
    return VectorReplay(meter).feed_pcap if HAVE_NUMPY else None


def _be16(data: NDArray[Any], at: NDArray[Any]) -> NDArray[Any]:
    return (data[at].astype(np.int64) << 8) | data[at + 1]


def _be_words(data: NDArray[Any], at: NDArray[Any], width: int) -> NDArray[Any]:
    """``width`` bytes at each offset as big-endian unsigned 64-bit words, shape (n, width // 8 or 1)."""
    raw = data[at[:, None] + np.arange(width)]
    if width == 4:
        return raw.view(">u4").astype(np.uint64)
    return raw.view(">u8").astype(np.uint64)


class VectorReplay:
    """Feeds a :class:`FlowMeter` whole chunks of a little-endian classic pcap of Ethernet frames."""

    def __init__(self, meter: FlowMeter, *, min_segment: int = MIN_SEGMENT) -> None:
        if not HAVE_NUMPY:
            raise RuntimeError("numpy is not installed (pip install 'soc-platform[flows]')")
        self.meter = meter
        self.min_segment = min_segment
        candidates = np.zeros(256, dtype=bool)
        candidates[list(_TCP_CANDIDATE_FIRST)] = True
        self._candidates = candidates
        # the protocols a frame left to the per-packet path may share a numpy-metered flow with
        self._may_share_v4 = np.ones(256, dtype=bool)
        self._may_share_v4[1] = False
        self._may_share_v6 = np.zeros(256, dtype=bool)
        self._may_share_v6[[6, 17, *_IPV6_EXT, 44, 51]] = True

    # ------------------------------------------------------------------ record walk
    def feed_pcap(self, buf: Any, off: int, size: int, unit: float, limit: int) -> tuple[int, int]:
        """:data:`agent.flows.pcap.Bulk`: meter up to ``limit`` records from ``off``; stop before damage."""
        done = 0
        while done < limit:
            offsets, off = self._walk(buf, off, size, min(limit - done, CHUNK_RECORDS))
            if not len(offsets):
                break
            self._chunk(buf, size, unit, offsets)
            done += len(offsets)
        return off, done

    @staticmethod
    def _walk(buf: Any, off: int, size: int, limit: int) -> tuple[NDArray[Any], int]:
        """Record offsets from ``off``, stopping at the end, at ``limit`` or before a damaged record.

        The walk is the one sequential part; a comprehension that only chains record lengths is
        cheaper than a loop that also checks them. Lengths are checked afterwards, at once: the first record that
        is too long or runs past the end stops the walk there, and what follows it is discarded.
        """
        caplen_of = _CAPLEN
        begin = off
        try:
            ends = [off := off + 16 + caplen_of(buf, off)[0] for _ in range(limit)]
        except struct.error:  # a header past the end (or a length leading there): walk with checks
            ends = []
            off = begin
            while len(ends) < limit and off + 16 <= size:
                off += 16 + caplen_of(buf, off)[0]
                ends.append(off)
        stop = np.array(ends, dtype=np.int64)
        start = np.empty_like(stop)
        if len(stop):
            start[0] = begin
            start[1:] = stop[:-1]
        bad = np.flatnonzero((stop - start - 16 > MAX_RECORD) | (stop > size))
        if len(bad):
            start = start[: bad[0]]
        return start, int(stop[len(start) - 1]) if len(start) else begin

    def _chunk(self, buf: Any, size: int, unit: float, offsets: NDArray[Any]) -> None:
        """Meter a chunk in one piece when its time runs forward, else piece by piece between scans.

        With time running forward, running the expiry scans after aggregating gives the per-packet
        records: a flow a scan would end either gets no later packet (its state is the same) or its
        next packet comes more than a timeout later, so that packet is left to the per-packet path,
        which replays it after the scan. Time running backwards breaks that, so such a chunk is cut
        at the scans and each piece is aggregated after the scan that opens it.
        """
        data = np.frombuffer(buf, dtype=np.uint8, count=size)
        head = data[offsets[:, None] + np.arange(12)].view("<u4")
        ts = head[:, 0].astype(np.float64) + head[:, 1].astype(np.float64) * unit
        caplen = head[:, 2].astype(np.int64)
        running_max = np.maximum.accumulate(ts)
        scans = self._scan_points(ts, running_max)
        if len(offsets) < self.min_segment:
            self.meter.feed_pcap(buf, int(offsets[0]), size, unit, len(offsets))
        elif bool((running_max == ts).all()):
            self._meter(buf, data, size, unit, offsets, ts, caplen, scans)
        else:
            cuts = sorted({0, *scans, len(offsets)})
            for begin, stop in itertools.pairwise(cuts):
                span = slice(begin, stop)
                if begin in scans:
                    self.meter._scan(float(ts[begin]))
                self._meter(buf, data, size, unit, offsets[span], ts[span], caplen[span], [])

    def _scan_points(self, ts: NDArray[Any], running_max: NDArray[Any]) -> list[int]:
        """Indices of the packets at which the per-packet path would run :meth:`FlowMeter._scan`."""
        every = self.meter._scan_every
        next_scan = self.meter._next_scan
        n = len(ts)
        points: list[int] = []
        at = 0
        while at < n:
            # the first packet at or past the next scan time: where the running maximum reaches it,
            # unless a packet before `at` already did (time ran backwards after a wall-clock expire)
            if at == 0 or running_max[at - 1] < next_scan:
                at += int(np.searchsorted(running_max[at:], next_scan, side="left"))
            else:
                later = np.flatnonzero(ts[at:] >= next_scan)
                at = at + int(later[0]) if len(later) else n
            if at < n:
                points.append(at)
                next_scan = float(ts[at]) + every
                at += 1
        return points

    # ------------------------------------------------------------------ aggregation
    def _meter(
        self,
        buf: Any,
        data: NDArray[Any],
        size: int,
        unit: float,
        offsets: NDArray[Any],
        ts: NDArray[Any],
        caplen: NDArray[Any],
        scans: list[int],
    ) -> None:
        """Aggregate a span, then replay its scans and left-out packets in capture order."""
        meter = self.meter
        n = len(offsets)
        if n < self.min_segment:
            meter.feed_pcap(buf, int(offsets[0]), size, unit, n)
            return
        start = offsets + 16
        end = start + caplen
        slow = np.ones(n, dtype=bool)
        big = caplen >= 54
        idx = np.flatnonzero(big)
        s = start[idx]
        etype = _be16(data, s + 12)
        vlan_tagged = (etype == 0x8100) & (caplen[idx] >= 58)
        inner = np.where(vlan_tagged, _be16(data, s + 16), etype)
        l3 = s + np.where(vlan_tagged, 18, 14)
        v4 = (inner == 0x0800) & ((etype == 0x0800) | vlan_tagged)
        v4 &= data[l3 + 0] == 0x45
        v4 &= (_be16(data, l3 + 6) & 0x3FFF) == 0
        v4size = _be16(data, l3 + 2)
        v4 &= v4size >= 40
        v4proto = data[l3 + 9]
        v4 &= v4proto != 1  # ICMP: type/code pairing is decode()'s job; GRE, ESP...: addresses only
        v6 = (etype == 0x86DD) & (caplen[idx] >= 68)
        v6 &= (data[s + 14] >> 4) == 6
        v6size = _be16(data, s + 18)
        v6 &= v6size >= 20
        v6proto = data[s + 20]
        v6 &= (v6proto == 6) | (v6proto == 17)
        fast = v4 | v6
        idx, s, l3, v4, vlan_tagged = idx[fast], s[fast], l3[fast], v4[fast], vlan_tagged[fast]
        proto = np.where(v4, v4proto[fast], v6proto[fast]).astype(np.int64)
        ipsize = np.where(v4, v4size[fast], v6size[fast] + 40)
        vlan = np.where(vlan_tagged, _be16(data, s + 14) & 0x0FFF, 0)
        l4 = np.where(v4, l3 + 20, s + 54)
        src_at = np.where(v4, l3 + 12, s + 22)
        dst_at = np.where(v4, l3 + 16, s + 38)
        slow[idx] = False
        m = len(idx)
        if m == 0:
            self._in_order(buf, offsets, ts, caplen, np.flatnonzero(slow), scans)
            return
        tcp = proto == 6
        ported = tcp | (proto == 17)
        sport = np.where(ported, _be16(data, l4), 0)
        dport = np.where(ported, _be16(data, l4 + 2), 0)
        flags = np.where(tcp, data[l4 + 13], 0).astype(np.int64)
        poff = np.where(tcp, l4 + ((data[l4 + 12].astype(np.int64) >> 4) << 2), np.where(ported, l4 + 8, end[idx]))
        pend = np.minimum(np.where(v4, l3, s + 14) + ipsize, end[idx])
        # addresses as (high word, low word) of a 128-bit number; IPv4 in the low word
        any_v6 = not bool(v4.all())
        src_lo = np.where(v4, _be_words(data, src_at, 4)[:, 0], 0).astype(np.uint64)
        dst_lo = np.where(v4, _be_words(data, dst_at, 4)[:, 0], 0).astype(np.uint64)
        src_hi = np.zeros(m, dtype=np.uint64)
        dst_hi = np.zeros(m, dtype=np.uint64)
        if any_v6:
            w6 = ~v4
            src6 = _be_words(data, src_at[w6], 16)
            dst6 = _be_words(data, dst_at[w6], 16)
            src_hi[w6], src_lo[w6] = src6[:, 0], src6[:, 1]
            dst_hi[w6], dst_lo[w6] = dst6[:, 0], dst6[:, 1]
        # canonical endpoint order so both directions share a group
        src_first = (src_hi < dst_hi) | (
            (src_hi == dst_hi) & ((src_lo < dst_lo) | ((src_lo == dst_lo) & (sport <= dport)))
        )
        lo_hi = np.where(src_first, src_hi, dst_hi)
        lo_lo = np.where(src_first, src_lo, dst_lo)
        hi_hi = np.where(src_first, dst_hi, src_hi)
        hi_lo = np.where(src_first, dst_lo, src_lo)
        lo_port = np.where(src_first, sport, dport)
        hi_port = np.where(src_first, dport, sport)
        meta = (proto | (vlan << 8) | (lo_port << 20) | (hi_port << 36) | (~v4).astype(np.int64) << 52).astype(
            np.uint64
        )
        # IPv4 only (the common chunk): both addresses fit one word, so two sort keys instead of five
        keys = (meta, hi_lo, lo_lo, hi_hi, lo_hi) if any_v6 else (meta, (lo_lo << np.uint64(32)) | hi_lo)
        order = np.lexsort(keys)  # stable: capture order within a flow
        changed = np.zeros(m, dtype=bool)
        changed[0] = True
        for key in keys:
            ks = key[order]
            changed[1:] |= ks[1:] != ks[:-1]
        starts = np.flatnonzero(changed)
        gid = np.cumsum(changed) - 1
        groups = len(starts)

        forced = np.zeros(groups, dtype=bool)
        sequential = False
        slow_idx = np.flatnonzero(slow)
        if len(slow_idx):
            clash, sequential = self._address_clash(data, start[slow_idx], caplen[slow_idx])
            if clash is not None and not sequential:
                pair = self._pair_hash(src_hi ^ src_lo, dst_hi ^ dst_lo)
                forced = np.logical_or.reduceat(np.isin(pair[order], clash), starts)
        if sequential or meter._active + groups + len(slow_idx) > meter.max_flows:
            meter.feed_pcap(buf, int(offsets[0]), size, unit, n)  # rare: let the exact loop do it all
            return

        # the flow state each group continues (Python: one lookup per flow)
        first = order[starts]
        width = np.where(v4[first], 4, 16).tolist()
        group_keys = [
            (p, buf[a : a + w], buf[b : b + w], sp, dp, vl)
            for p, a, b, w, sp, dp, vl in zip(
                *(x[first].tolist() for x in (proto, src_at, dst_at)),
                width,
                *(x[first].tolist() for x in (sport, dport, vlan)),
                strict=True,
            )
        ]
        lookup = meter._lookup
        states = [lookup(key) for key in group_keys]
        f_ts = ts[idx[first]]
        deadline = f_ts + meter.active_timeout
        last = f_ts.copy()
        known = [g for g, counters in enumerate(states) if counters is not None]
        if known:
            flows = [states[g][3] for g in known]  # type: ignore[index]
            deadline[known] = [flow[_DEADLINE] for flow in flows]
            last[known] = [flow[_LAST] for flow in flows]
            forced[known] |= np.array([bool(flow[_FINS]) for flow in flows])

        # each group's packets up to the first that needs a per-packet rule
        tss = ts[idx[order]]
        prev = np.empty(m)
        prev[1:] = tss[:-1]
        prev[starts] = last
        gap = tss - prev
        flags_s = flags[order]
        bad = (flags_s & _FIN_RST) != 0
        bad |= gap > meter.idle_timeout
        bad |= tss > deadline[gid]
        bad |= forced[gid]
        pos = np.arange(m) - starts[gid]
        cut = np.minimum.reduceat(np.where(bad, pos, m), starts)
        np.minimum(cut, np.diff(starts, append=m), out=cut)
        prefix = pos < cut[gid]
        same = src_first[order] == src_first[first][gid]
        size_s = ipsize[order]
        along, back = prefix & same, prefix & ~same
        taken = np.flatnonzero(cut > 0)
        sums = [np.add.reduceat(x, starts)[taken].tolist() for x in (along, size_s * along, back, size_s * back)]
        ors = [np.bitwise_or.reduceat(flags_s * x, starts)[taken].tolist() for x in (along, back)]
        last_ts = tss[starts[taken] + cut[taken] - 1].tolist()
        first_ts = f_ts[taken].tolist()
        opened = meter._open
        for g, start_ts, end_ts, packets, octets, flags_seen, rev_packets, rev_octets, rev_flags in zip(
            taken.tolist(), first_ts, last_ts, sums[0], sums[1], ors[0], sums[2], sums[3], ors[1], strict=True
        ):
            counters = states[g]
            if counters is None:
                counters = opened(start_ts, group_keys[g])
            flow = counters[3]
            other = flow[_FWD] if counters is flow[_REV] else flow[_REV]
            flow[_LAST] = end_ts
            counters[0] += packets
            counters[1] += octets
            counters[2] |= flags_seen
            other[0] += rev_packets
            other[1] += rev_octets
            other[2] |= rev_flags

        in_prefix = np.zeros(m, dtype=bool)
        in_prefix[order] = prefix
        if meter.metadata:
            self._inspect(buf, data, ts, idx, in_prefix, proto, sport, dport, vlan, src_at, dst_at, v4, poff, pend)
        slow[idx[~in_prefix]] = True
        self._in_order(buf, offsets, ts, caplen, np.flatnonzero(slow), scans)

    def _inspect(
        self,
        buf: Any,
        data: NDArray[Any],
        ts: NDArray[Any],
        idx: NDArray[Any],
        chosen: NDArray[Any],
        proto: NDArray[Any],
        sport: NDArray[Any],
        dport: NDArray[Any],
        vlan: NDArray[Any],
        src_at: NDArray[Any],
        dst_at: NDArray[Any],
        v4: NDArray[Any],
        poff: NDArray[Any],
        pend: NDArray[Any],
    ) -> None:
        """Parse metadata from the aggregated packets that pass the per-packet path's gates."""
        has_payload = poff < pend
        dns = (sport == 53) | (dport == 53)
        lead = self._candidates[data[np.where(has_payload, poff, 0)]]
        wanted = chosen & has_payload & (dns | ((proto == 6) & lead))
        inspect = self.meter._inspect
        for i in np.flatnonzero(wanted).tolist():
            width = 4 if v4[i] else 16
            a, b = int(src_at[i]), int(dst_at[i])
            inspect(float(ts[idx[i]]), int(proto[i]), buf[a : a + width], buf[b : b + width], int(sport[i]),
                    int(dport[i]), int(vlan[i]), buf, int(poff[i]), int(pend[i]))  # fmt: skip

    def _in_order(
        self,
        buf: Any,
        offsets: NDArray[Any],
        ts: NDArray[Any],
        caplen: NDArray[Any],
        which: NDArray[Any],
        scans: list[int],
    ) -> None:
        """Run the scans and feed the packets ``which`` (both indices in the span) in capture order."""
        meter = self.meter
        feed = meter.feed_at
        todo = zip(which.tolist(), offsets[which].tolist(), ts[which].tolist(), caplen[which].tolist(), strict=True)
        upcoming = iter(scans)
        scan = next(upcoming, None)
        for i, at, when, length in todo:
            while scan is not None and scan <= i:
                meter._scan(float(ts[scan]))
                scan = next(upcoming, None)
            feed(when, 1, buf, at + 16, at + 16 + length)
        while scan is not None:
            meter._scan(float(ts[scan]))
            scan = next(upcoming, None)

    # ------------------------------------------------------------------ frames the numpy path leaves out
    @staticmethod
    def _pair_hash(a: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]:
        """An order-free hash of two folded addresses (collisions only send more packets the slow way)."""
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        with np.errstate(over="ignore"):
            return lo * np.uint64(0x9E3779B97F4A7C15) ^ hi

    def _address_clash(
        self, data: NDArray[Any], start: NDArray[Any], caplen: NDArray[Any]
    ) -> tuple[NDArray[Any] | None, bool]:
        """Address-pair hashes of the IP frames numpy did not decode (a flow sharing one must go
        packet by packet, in order with them); True when some frame's addresses cannot be located."""
        ok = caplen >= 14
        start, caplen = start[ok], caplen[ok]
        if not len(start):
            return None, False
        etype = _be16(data, start + 12)
        tagged = np.isin(etype, _VLAN_TAGS)
        l3 = start + 14
        if tagged.any():
            deep = tagged & (caplen >= 18)
            inner = np.where(deep, _be16(data, np.where(deep, start + 16, start)), 0)
            if np.isin(inner[deep], _VLAN_TAGS).any():
                return None, True  # stacked tags: rare, let the exact loop take the segment
            etype = np.where(tagged, inner, etype)
            l3 = np.where(tagged, start + 18, l3)
        length = start + caplen - l3
        v4 = (etype == 0x0800) & (length >= 20)
        v6 = (etype == 0x86DD) & (length >= 40)
        # ICMP never shares a flow numpy meters (nor ICMPv6 or others over IPv6)
        v4 &= self._may_share_v4[data[np.where(v4, l3 + 9, 0)]]
        v6 &= self._may_share_v6[data[np.where(v6, l3 + 6, 0)]]
        pairs = []
        if v4.any():
            at = l3[v4]
            pairs.append(self._pair_hash(_be_words(data, at + 12, 4)[:, 0], _be_words(data, at + 16, 4)[:, 0]))
        if v6.any():
            at = l3[v6]
            src, dst = _be_words(data, at + 8, 16), _be_words(data, at + 24, 16)
            pairs.append(self._pair_hash(src[:, 0] ^ src[:, 1], dst[:, 0] ^ dst[:, 1]))
        if not pairs:
            return None, False
        return np.concatenate(pairs), False
