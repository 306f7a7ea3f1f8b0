"""The annual report of a seeded province in DOCX, XLSX and PDF carries the hand-computed counts;
the PDF opens and its Vietnamese text survives (pdftotext), and renders to PNG (pdftoppm)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from soc_api.reports.document import Report, Section
from soc_api.reports.formatting import vn_date, vn_number, vn_percent
from soc_api.reports.render.pdf import FontMissing, render_pdf
from tests.helpers.api_world import Api
from tests.reports.seed import Seeded, seed_province

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"
SUMMARY = {
    "Tổng số hệ thống thông tin": 5,
    "Số hệ thống thông tin đã xác định cấp độ": 5,
    "Số hồ sơ đề xuất cấp độ đang dự thảo": 1,
    "Số hồ sơ đã gửi thẩm định": 1,
    "Số hồ sơ đã thẩm định": 1,
    "Số hệ thống đã được phê duyệt cấp độ": 2,
    "Số hệ thống chưa lập hồ sơ": 0,
    "Số hệ thống đã triển khai đầy đủ phương án": 1,
    "Số hệ thống đã triển khai một số hạng mục": 1,
    "Số hệ thống chưa triển khai phương án": 3,
    "Số hệ thống đã ban hành quy chế bảo đảm an ninh mạng": 2,
    "Số hệ thống đã kiểm tra, đánh giá trước khi đưa vào sử dụng": 1,
    "Số hệ thống được kiểm tra, đánh giá định kỳ trong kỳ": 2,
}
APPROVAL = {
    "Cổng thông tin điện tử": "Đã được phê duyệt",
    "Hệ thống quản lý văn bản và điều hành": "Đã được phê duyệt",
    "Hệ thống thư điện tử": "Đã gửi thẩm định",
    "Hạ tầng mạng nội bộ": "Đang dự thảo",
    "Hệ thống lưu trữ tài liệu mật": "Đã thẩm định",
}


def _get(api: Api, fmt: str, year: int, site: str = "hn") -> bytes:
    r = api.client.get(
        "/api/v1/reports/annual", params={"year": year, "format": fmt, "site": site}, headers=api.headers("auditor")
    )
    assert r.status_code == 200, r.text
    assert f"bao-cao-nam-{year}.{fmt}" in r.headers["content-disposition"]
    return r.content


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed_province(api.state)


def test_docx_has_form_08_rows_and_counts(api: Api, seeded: Seeded) -> None:
    doc = Document(io.BytesIO(_get(api, "docx", seeded.year)))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert f"NĂM {seeded.year}" in text
    assert f"từ ngày 15/12/{seeded.year - 1} đến ngày 14/12/{seeded.year}" in text
    systems, summary = doc.tables[0], doc.tables[1]
    rows = [[c.text for c in r.cells] for r in systems.rows[1:]]
    assert {r[1]: r[5] for r in rows} == APPROVAL  # no hcm system in the hn scope
    qlvb = next(r for r in rows if r[1].startswith("Hệ thống quản lý văn bản"))
    assert qlvb[4] == "3"
    assert qlvb[9] == "Đã triển khai một số hạng mục"
    assert qlvb[11] == "Trước khi đưa vào sử dụng; Định kỳ"
    counts = {r.cells[0].text: r.cells[1].text for r in summary.rows[1:]}
    for label, value in SUMMARY.items():
        assert counts[label] == str(value), label


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_xlsx_keeps_native_numbers(api: Api, seeded: Seeded) -> None:
    wb = load_workbook(io.BytesIO(_get(api, "xlsx", seeded.year)))
    summary = wb["III"]
    counts = {row[0]: row[1] for row in summary.iter_rows(values_only=True) if row[0] in SUMMARY}
    assert counts == SUMMARY
    listing = wb["II"]
    names = [row[1] for row in listing.iter_rows(min_row=4, values_only=True)]
    assert sorted(n for n in names if n) == sorted(APPROVAL)
    activity = {row[0]: row[1] for row in wb["IV"].iter_rows(values_only=True) if row[0]}
    assert activity["Đánh giá tuân thủ"] == 1  # cong-ttdt in period; qlvb's is 420 days old
    assert activity["Đánh giá hiệu quả"] == 1
    assert activity["Số hành động khắc phục chưa hoàn thành"] == 2


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext, pdftoppm) not installed")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_pdf_opens_with_correct_vietnamese(api: Api, seeded: Seeded, tmp_path: Path) -> None:
    data = _get(api, "pdf", seeded.year)
    assert data.startswith(b"%PDF-")
    pdf = tmp_path / "annual.pdf"
    pdf.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    text = " ".join(text.split())  # table cells wrap inside narrow columns
    for phrase in (
        "BÁO CÁO",
        "HỆ THỐNG THÔNG TIN THEO CẤP ĐỘ",
        "Hệ thống thông tin",
        "cấp độ",
        "Đã được phê duyệt",
        "Đã gửi thẩm định",
        "Số hồ sơ đã thẩm định",
        "Cổng thông tin điện tử",
    ):
        assert phrase in text, phrase
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(ARTIFACTS / "annual")],
        check=True,
        capture_output=True,
    )
    png = sorted(ARTIFACTS.glob("annual*.png"))
    assert png and png[0].read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_quarterly_report_formats(api: Api, seeded: Seeded) -> None:
    quarter = (seeded.today.month - 1) // 3 + 1
    for fmt, magic in (("docx", b"PK"), ("xlsx", b"PK"), ("pdf", b"%PDF-")):
        r = api.client.get(
            "/api/v1/reports/quarterly",
            params={"year": seeded.today.year, "quarter": quarter, "format": fmt, "site": "hn"},
            headers=api.headers("officer_hn"),
        )
        assert r.status_code == 200, r.text
        assert r.content.startswith(magic)
    wb = load_workbook(io.BytesIO(r.content if fmt == "xlsx" else _quarterly_xlsx(api, seeded, quarter)))
    rows = [row for row in wb["I"].iter_rows(values_only=True) if row[0] in ("Tỉnh ủy Hà Nội", "Tổng cộng")]
    assert [r[1] for r in rows] == [3, 5]  # systems at hn, then the province total


def _quarterly_xlsx(api: Api, seeded: Seeded, quarter: int) -> bytes:
    r = api.client.get(
        "/api/v1/reports/quarterly",
        params={"year": seeded.today.year, "quarter": quarter, "format": "xlsx", "site": "hn"},
        headers=api.headers("officer_hn"),
    )
    return r.content


def test_missing_font_names_the_file(tmp_path: Path) -> None:
    report = Report(title="Báo cáo", subtitle=[], sections=[Section("I. Chung")], file_stem="x")
    with pytest.raises(FontMissing, match=r"nope\.ttf.*fonts-dejavu-core"):
        render_pdf(report, tmp_path / "nope.ttf", tmp_path / "nope-bold.ttf")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1234.5, "1.234,5"), (0.0, "0,0"), (1234567.25, "1.234.567,2")],
)
def test_vietnamese_number_format(value: float, expected: str) -> None:
    # 1234567.25 rounds half to even at one decimal: .2
    assert vn_number(value, 1) == expected


def test_vietnamese_date_and_percent() -> None:
    from datetime import date

    assert vn_date(date(2026, 12, 14)) == "14/12/2026"
    assert vn_percent(0.7) == "70,0%"
    assert vn_percent(None) == "—"
    assert vn_number(40000) == "40.000"
