"""Information elements: the NetFlow v9 field types and IPFIX (RFC 7012) elements we name.

NetFlow v9 types 1-127 are the same numbers as the IPFIX elements, so one table serves both. An
element we do not know keeps its number (``ie_<id>``) rather than being dropped: an analyst can
still see it under ``netflow.*``.
"""

from __future__ import annotations

import socket
from enum import Enum


class Kind(Enum):
    UNSIGNED = "u"
    IPV4 = "ip4"
    IPV6 = "ip6"
    MAC = "mac"
    STRING = "str"
    BYTES = "bytes"


# id -> (snake_case IPFIX name, kind)
ELEMENTS: dict[int, tuple[str, Kind]] = {
    1: ("octet_delta_count", Kind.UNSIGNED),
    2: ("packet_delta_count", Kind.UNSIGNED),
    3: ("delta_flow_count", Kind.UNSIGNED),
    4: ("protocol_identifier", Kind.UNSIGNED),
    5: ("ip_class_of_service", Kind.UNSIGNED),
    6: ("tcp_control_bits", Kind.UNSIGNED),
    7: ("source_transport_port", Kind.UNSIGNED),
    8: ("source_ipv4_address", Kind.IPV4),
    9: ("source_ipv4_prefix_length", Kind.UNSIGNED),
    10: ("ingress_interface", Kind.UNSIGNED),
    11: ("destination_transport_port", Kind.UNSIGNED),
    12: ("destination_ipv4_address", Kind.IPV4),
    13: ("destination_ipv4_prefix_length", Kind.UNSIGNED),
    14: ("egress_interface", Kind.UNSIGNED),
    15: ("ip_next_hop_ipv4_address", Kind.IPV4),
    16: ("bgp_source_as_number", Kind.UNSIGNED),
    17: ("bgp_destination_as_number", Kind.UNSIGNED),
    18: ("bgp_next_hop_ipv4_address", Kind.IPV4),
    21: ("flow_end_sys_up_time", Kind.UNSIGNED),
    22: ("flow_start_sys_up_time", Kind.UNSIGNED),
    23: ("post_octet_delta_count", Kind.UNSIGNED),
    24: ("post_packet_delta_count", Kind.UNSIGNED),
    27: ("source_ipv6_address", Kind.IPV6),
    28: ("destination_ipv6_address", Kind.IPV6),
    29: ("source_ipv6_prefix_length", Kind.UNSIGNED),
    30: ("destination_ipv6_prefix_length", Kind.UNSIGNED),
    31: ("flow_label_ipv6", Kind.UNSIGNED),
    32: ("icmp_type_code_ipv4", Kind.UNSIGNED),
    34: ("sampling_interval", Kind.UNSIGNED),
    35: ("sampling_algorithm", Kind.UNSIGNED),
    36: ("flow_active_timeout", Kind.UNSIGNED),
    37: ("flow_idle_timeout", Kind.UNSIGNED),
    40: ("exported_octet_total_count", Kind.UNSIGNED),
    41: ("exported_message_total_count", Kind.UNSIGNED),
    42: ("exported_flow_record_total_count", Kind.UNSIGNED),
    48: ("flow_sampler_id", Kind.UNSIGNED),
    49: ("flow_sampler_mode", Kind.UNSIGNED),
    50: ("flow_sampler_random_interval", Kind.UNSIGNED),
    52: ("minimum_ttl", Kind.UNSIGNED),
    53: ("maximum_ttl", Kind.UNSIGNED),
    56: ("source_mac_address", Kind.MAC),
    57: ("post_destination_mac_address", Kind.MAC),
    58: ("vlan_id", Kind.UNSIGNED),
    59: ("post_vlan_id", Kind.UNSIGNED),
    60: ("ip_version", Kind.UNSIGNED),
    61: ("flow_direction", Kind.UNSIGNED),
    62: ("ip_next_hop_ipv6_address", Kind.IPV6),
    80: ("destination_mac_address", Kind.MAC),
    81: ("post_source_mac_address", Kind.MAC),
    82: ("interface_name", Kind.STRING),
    83: ("interface_description", Kind.STRING),
    85: ("octet_total_count", Kind.UNSIGNED),
    86: ("packet_total_count", Kind.UNSIGNED),
    89: ("forwarding_status", Kind.UNSIGNED),
    136: ("flow_end_reason", Kind.UNSIGNED),
    139: ("icmp_type_code_ipv6", Kind.UNSIGNED),
    143: ("metering_process_id", Kind.UNSIGNED),
    144: ("exporting_process_id", Kind.UNSIGNED),
    148: ("flow_id", Kind.UNSIGNED),
    149: ("observation_domain_id", Kind.UNSIGNED),
    150: ("flow_start_seconds", Kind.UNSIGNED),
    151: ("flow_end_seconds", Kind.UNSIGNED),
    152: ("flow_start_milliseconds", Kind.UNSIGNED),
    153: ("flow_end_milliseconds", Kind.UNSIGNED),
    154: ("flow_start_microseconds", Kind.UNSIGNED),
    155: ("flow_end_microseconds", Kind.UNSIGNED),
    156: ("flow_start_nanoseconds", Kind.UNSIGNED),
    157: ("flow_end_nanoseconds", Kind.UNSIGNED),
    158: ("flow_start_delta_microseconds", Kind.UNSIGNED),
    159: ("flow_end_delta_microseconds", Kind.UNSIGNED),
    160: ("system_init_time_milliseconds", Kind.UNSIGNED),
    176: ("icmp_type_ipv4", Kind.UNSIGNED),
    177: ("icmp_code_ipv4", Kind.UNSIGNED),
    178: ("icmp_type_ipv6", Kind.UNSIGNED),
    179: ("icmp_code_ipv6", Kind.UNSIGNED),
    225: ("post_nat_source_ipv4_address", Kind.IPV4),
    226: ("post_nat_destination_ipv4_address", Kind.IPV4),
    227: ("post_napt_source_transport_port", Kind.UNSIGNED),
    228: ("post_napt_destination_transport_port", Kind.UNSIGNED),
    233: ("firewall_event", Kind.UNSIGNED),
    234: ("ingress_vrf_id", Kind.UNSIGNED),
    235: ("egress_vrf_id", Kind.UNSIGNED),
    239: ("biflow_direction", Kind.UNSIGNED),
    302: ("selector_id", Kind.UNSIGNED),
    304: ("selector_algorithm", Kind.UNSIGNED),
    305: ("sampling_packet_interval", Kind.UNSIGNED),
    306: ("sampling_packet_space", Kind.UNSIGNED),
    323: ("observation_time_milliseconds", Kind.UNSIGNED),
}

# NetFlow v9 options-template scope types (RFC 3954 section 6.1); they clash with element numbers.
V9_SCOPES = {1: "scope_system", 2: "scope_interface", 3: "scope_line_card", 4: "scope_cache", 5: "scope_template"}


def element(ie_id: int) -> tuple[str, Kind]:
    return ELEMENTS.get(ie_id) or (f"ie_{ie_id}", Kind.UNSIGNED)


def convert(kind: Kind, value: object) -> object:
    """A decoded field as an event value: addresses as text, counters as int, strings as str."""
    if isinstance(value, int):
        return value
    if not isinstance(value, bytes):
        return value
    if kind is Kind.UNSIGNED:
        return int.from_bytes(value, "big") if len(value) <= 8 else value.hex()
    if kind is Kind.IPV4 and len(value) == 4:
        return socket.inet_ntoa(value)
    if kind is Kind.IPV6 and len(value) == 16:
        return socket.inet_ntop(socket.AF_INET6, value)
    if kind is Kind.MAC and len(value) == 6:
        return "-".join(f"{b:02X}" for b in value)
    if kind is Kind.STRING:
        return value.rstrip(b"\x00").decode("utf-8", "replace")
    return value.hex()
