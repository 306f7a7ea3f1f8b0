"""Agent ingest: the HTTPS endpoint, its CA, the token/agent registry, rate limits and policy."""
