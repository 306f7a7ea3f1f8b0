"""The annual report (NĐ 331 form 08 shape) and quarterly progress reports as DOCX, PDF and XLSX."""
