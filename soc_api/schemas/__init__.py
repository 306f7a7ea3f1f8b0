"""Request and response bodies of the SOC API."""
