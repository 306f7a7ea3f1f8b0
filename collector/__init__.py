"""The collector: receivers (agent ingest, syslog, NetFlow/IPFIX) -> processors -> event store, plus detection."""
