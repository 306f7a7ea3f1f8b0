"""Hand-over to the central monitoring centre: signed, verifiable packages, STIX 2.1/TAXII 2.1,
exactly-once delivery through an outbox, and air-gapped export/verify. See docs/handover.md."""

FORMAT = "soc-handover/1.0"
