"""Renderers of a neutral report document to DOCX, PDF and XLSX."""
