"""Outbound notifications (SMTP e-mail and signed HTTPS webhooks) through a retrying outbox."""
