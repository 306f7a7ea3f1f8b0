"""Business logic kept out of the HTTP layer, so the CLI, the sink and the routers share it."""
