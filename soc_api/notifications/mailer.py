"""Sending one e-mail over SMTP (implicit TLS, STARTTLS, or plain only when configured so)."""

from __future__ import annotations

import base64
import smtplib
import ssl
from email.message import EmailMessage

from soc_api.notifications.settings import EmailSettings


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def login(client: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN in UTF-8 (RFC 4616) when offered: smtplib's own login only encodes ASCII, so a
    Vietnamese password would otherwise fail. Other mechanisms go through smtplib."""
    client.ehlo_or_helo_if_needed()
    mechanisms = client.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" not in mechanisms:
        client.login(username, password)
        return
    token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode()).decode()
    code, _reply = client.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, b"authentication refused")


def send_email(settings: EmailSettings, to: str, subject: str, body: str) -> None:
    """Deliver or raise (``OSError``/``smtplib.SMTPException``); the password is never in messages."""
    if settings.host is None:
        raise RuntimeError("no SMTP host configured")
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    timeout = settings.timeout_seconds
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=tls_context(settings))
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    with client:
        if settings.security == "starttls":
            client.starttls(context=tls_context(settings))
        if settings.username and settings.password is not None:
            login(client, settings.username, settings.password.get_secret_value())
        client.send_message(msg)
