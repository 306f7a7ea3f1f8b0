"""The TOTP provisioning URI as an SVG QR code, drawn on the server (no script, no CDN)."""

from __future__ import annotations

import io

import segno


def qr_svg(data: str) -> str:
    """An ``<svg>`` element (no XML declaration, no inline style) for embedding in a page."""
    buf = io.BytesIO()
    segno.make(data, error="m").save(buf, kind="svg", scale=5, border=4, xmldecl=False, svgns=True,
                                      svgclass="qr", lineclass=None, title="QR")  # fmt: skip
    return buf.getvalue().decode()
