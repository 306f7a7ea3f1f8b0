"""The web interface in a real browser (Debian Chromium via Playwright) against uvicorn:
MFA enrolment and sign-in, triage of a pcap-detected alert to closed, escalation of its sibling to
an incident with a PDF report, a drill record, and a level dossier from submission to approval by
the right people. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyotp
from playwright.sync_api import expect

from tests.e2e_browser.browser_world import PASSWORD, Site, shot

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _sign_in(page: Any, site: Site, username: str, code: str = "") -> None:
    page.context.clear_cookies()
    page.goto(f"{site.base}/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    if code:
        page.get_by_label("Mã xác thực (TOTP)").fill(code)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(f"{site.base}/alerts")


def test_officer_enrols_mfa_and_triages_a_detected_alert(site: Site, browser: Any) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # CSP violations land here
    page.goto(f"{site.base}/login")
    shot(page, "01-login")
    _sign_in(page, site, "officer")
    page.goto(f"{site.base}/account")
    page.get_by_role("button", name="Thiết lập xác thực hai bước").click()
    expect(page.locator("svg.qr")).to_be_visible()
    shot(page, "02-mfa-enrolment")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Mã", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Bật").click()
    expect(page.get_by_text("Mã khôi phục")).to_be_visible()

    _sign_in(page, site, "officer", pyotp.TOTP(secret).now())  # the second factor is now required
    page.goto(f"{site.base}/overview")
    expect(page.get_by_role("heading", name="Tổng quan")).to_be_visible()
    shot(page, "03-overview")

    page.goto(f"{site.base}/alerts?severity=medium")
    rows = page.locator("#queue tbody tr[data-href]")
    assert rows.count() >= 1
    shot(page, "04-alerts")
    page.keyboard.press("j")  # keyboard navigation: first row, then open it
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.base}/alerts/*")
    expect(page.locator("text=Sự kiện gốc")).to_be_visible()
    with page.expect_navigation():  # the key submits a form; wait for the page it leads to
        page.keyboard.press("a")  # assign to me
    assert "Đang xử lý" in page.locator("#alert-status").inner_text()
    page.keyboard.press("c")  # focuses the close reason
    page.locator("#close-reason").select_option("true_positive")
    page.locator("#close-note").fill("Quét cổng từ máy trong mạng WAN, đã cô lập")
    page.locator("#close-form button[type=submit]").click()
    page.wait_for_load_state()
    assert "Đã đóng" in page.locator("#alert-status").inner_text()
    assert "Tấn công thật" in page.locator("#alert-status").inner_text()
    shot(page, "05-alert-closed")
    page.goto(f"{site.base}/hunt?q=event.dataset:network.flow&range=30d")
    shot(page, "06-hunt")
    assert [e for e in errors if "Content Security Policy" in e] == []
    page.close()


def test_sibling_alert_escalated_to_an_incident_with_a_pdf_report_and_a_drill_recorded(
    site: Site, browser: Any
) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _sign_in(page, site, "admin")
    page.goto(f"{site.base}/alerts?status=new")  # the triaged alert is closed; its siblings are still new
    assert page.locator("#queue tbody tr[data-href]").count() >= 1
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.base}/alerts/*")
    page.keyboard.press("e")  # escalate this alert to a new incident
    page.wait_for_url(f"{site.base}/incidents/*")
    expect(page.get_by_text("Đã mở sự cố.")).to_be_visible()
    assert "Đã phát hiện" in page.locator("#incident-status").inner_text()
    page.locator("#report-format").select_option("pdf")
    page.get_by_role("button", name="Tạo báo cáo").click()
    expect(page.get_by_text("Đã tạo báo cáo.")).to_be_visible()
    shot(page, "09-incident")
    with page.expect_download() as info:
        page.locator("#reports a").first.click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    assert Path(download.path()).read_bytes().startswith(b"%PDF")
    page.goto(f"{site.base}/incidents")
    assert page.locator("#column-detected a").count() >= 1
    shot(page, "10-incident-board")

    page.goto(f"{site.base}/drills")
    form = page.locator("#drill-form")
    form.get_by_label("Tiêu đề").fill("Diễn tập ứng cứu sự cố quét cổng")
    form.get_by_label("Hình thức").select_option("tabletop")
    form.get_by_role("button", name="Lưu").click()
    page.wait_for_url(f"{site.base}/drills/*")
    expect(page.get_by_text("Đã ghi nhận cuộc diễn tập.")).to_be_visible()
    timeline = page.locator("#timeline-form")
    timeline.get_by_label("Giai đoạn").select_option("detection")
    timeline.get_by_label("Ghi chú").fill("SOC phát hiện quét cổng")
    timeline.get_by_role("button", name="Thêm").click()
    expect(page.locator("#drill-timeline").get_by_text("SOC phát hiện quét cổng")).to_be_visible()
    shot(page, "11-drill")
    assert [e for e in errors if "Content Security Policy" in e] == []
    page.close()


def test_dossier_submitted_appraised_and_approved_by_the_right_people(site: Site, browser: Any) -> None:
    page = browser.new_page()
    dossier = f"{site.base}/dossiers/{site.dossier_id}"
    _sign_in(page, site, "admin")  # admin can edit but is not the owner's approver
    page.goto(f"{site.base}/systems/qlvb-hn")
    page.get_by_label("Số quy chế").fill("45-QĐ/VPTU")
    page.get_by_label("Ngày ban hành quy chế").fill("2026-09-20")
    page.get_by_role("button", name="Lưu").click()
    expect(page.get_by_text("Đã lưu.")).to_be_visible()
    shot(page, "07-system")
    page.goto(dossier)
    inputs = page.locator("input[type=file]")
    for i in range(inputs.count()):
        page.locator("input[type=file]").nth(i).set_input_files(
            {"name": f"phan-{i}.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        page.locator("input[type=file]").nth(i).locator("xpath=..").get_by_role("button", name="Tải lên").click()
        page.wait_for_load_state()
        expect(page.get_by_text("Đã tải lên tài liệu.")).to_be_visible()
    page.get_by_role("button", name="Trình thẩm định").click()
    assert "Đã trình" in page.locator("#dossier-status").inner_text()
    expect(page.get_by_text("Phòng CNTT - Cơ yếu").first).to_be_visible()  # who must act next

    _sign_in(page, site, "owner")  # the owner may not appraise a level-3 dossier
    page.goto(dossier)
    page.get_by_label("Ý kiến thẩm định").fill("Chưa đúng thẩm quyền")
    page.get_by_role("button", name="Ghi nhận thẩm định").click()
    expect(page.get_by_text("Thao tác bị từ chối.")).to_be_visible()

    _sign_in(page, site, "appraiser")
    page.goto(dossier)
    page.get_by_label("Ý kiến thẩm định").fill("Đủ điều kiện đề xuất cấp độ 3")
    page.get_by_role("button", name="Ghi nhận thẩm định").click()
    assert "Đã thẩm định" in page.locator("#dossier-status").inner_text()

    _sign_in(page, site, "owner")
    page.goto(dossier)
    page.get_by_label("Số quyết định").fill("123-QĐ/TU")
    page.get_by_role("button", name="Phê duyệt").click()
    assert "Đã phê duyệt" in page.locator("#dossier-status").inner_text()
    shot(page, "08-dossier-approved")
    page.goto(f"{dossier}?lang=en")
    assert "Approved" in page.locator("#dossier-status").inner_text()
    page.close()


def test_administration_pages_and_the_per_user_language(site: Site, browser: Any) -> None:
    """Suppression created from its page, the tuning, hand-over, KPI and agents pages drawn without a
    CSP violation, then the header switch stores English on the account."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _sign_in(page, site, "admin")
    page.goto(f"{site.base}/admin/suppressions")
    page.get_by_label("Lý do").fill("Máy sao lưu chạy hằng đêm")
    page.get_by_label("Hết hạn vào cuối ngày").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Tạo", exact=True).click()
    expect(page.get_by_text("Đã tạo quy tắc chặn.")).to_be_visible()
    shot(page, "12-suppressions")
    page.goto(f"{site.base}/agents")  # served by a real collector's admin API
    page.get_by_role("link", name="pc-vp-hn-01").click()
    expect(page.get_by_text("Windows Defender").first).to_be_visible()
    shot(page, "16-agent-detail")
    page.goto(f"{site.base}/agents")
    expect(page.get_by_role("link", name="pc-vp-hn-01")).to_be_visible()
    shot(page, "17-agents")
    for path, heading, name in (("/admin/detectors", "Bộ phát hiện", "13-detectors"),
                                ("/admin/handover", "Chuyển giao cho trung tâm giám sát", "14-handover"),
                                ("/kpi", "Chỉ tiêu và báo cáo", "15-kpi")):  # fmt: skip
        page.goto(f"{site.base}{path}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        shot(page, name)
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="KPIs and reports")).to_be_visible()
    page.context.clear_cookies()  # a new browser session: sign in again, no language cookie
    _sign_in(page, site, "admin")
    page.goto(f"{site.base}/overview")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()  # stored on the account
    assert [e for e in errors if "Content Security Policy" in e] == []
