"""Page texts in Vietnamese (default) and English, and local-time formatting.

A small dict catalogue is enough for a handful of pages and keeps translations reviewable in one
place; the language comes from ``?lang=``, then the ``lang`` cookie, then the configured default.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES = ("vi", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "vi": {
        "app_name": "Trung tâm giám sát an toàn thông tin",
        "login": "Đăng nhập",
        "logout": "Đăng xuất",
        "username": "Tên đăng nhập",
        "password": "Mật khẩu",
        "totp": "Mã xác thực (TOTP)",
        "login_failed": "Sai tên đăng nhập, mật khẩu hoặc mã xác thực.",
        "login_locked": "Tài khoản tạm khoá do đăng nhập sai nhiều lần.",
        "alerts": "Cảnh báo",
        "time": "Thời gian",
        "severity": "Mức độ",
        "rule": "Luật phát hiện",
        "host": "Máy",
        "user": "Người dùng",
        "site": "Đơn vị",
        "status": "Trạng thái",
        "no_alerts": "Không có cảnh báo nào.",
        "next_page": "Trang sau",
        "filter": "Lọc",
        "all": "Tất cả",
        "status_new": "Mới",
        "status_acknowledged": "Đã tiếp nhận",
        "status_in_progress": "Đang xử lý",
        "status_closed": "Đã đóng",
        "severity_informational": "Thông tin",
        "severity_low": "Thấp",
        "severity_medium": "Trung bình",
        "severity_high": "Cao",
        "severity_critical": "Nghiêm trọng",
        "signed_in_as": "Đăng nhập với",
        "language": "Ngôn ngữ",
        "timezone_note": "Giờ hiển thị theo",
    },
    "en": {
        "app_name": "Security Operations Centre",
        "login": "Sign in",
        "logout": "Sign out",
        "username": "Username",
        "password": "Password",
        "totp": "Authentication code (TOTP)",
        "login_failed": "Wrong username, password or authentication code.",
        "login_locked": "Account temporarily locked after repeated failures.",
        "alerts": "Alerts",
        "time": "Time",
        "severity": "Severity",
        "rule": "Rule",
        "host": "Host",
        "user": "User",
        "site": "Site",
        "status": "Status",
        "no_alerts": "No alerts.",
        "next_page": "Next page",
        "filter": "Filter",
        "all": "All",
        "status_new": "New",
        "status_acknowledged": "Acknowledged",
        "status_in_progress": "In progress",
        "status_closed": "Closed",
        "severity_informational": "Informational",
        "severity_low": "Low",
        "severity_medium": "Medium",
        "severity_high": "High",
        "severity_critical": "Critical",
        "signed_in_as": "Signed in as",
        "language": "Language",
        "timezone_note": "Times shown in",
    },
}


def pick_language(query: str | None, cookie: str | None, default: str) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return default if default in LANGUAGES else "vi"


class Translator:
    def __init__(self, lang: str, tz: ZoneInfo) -> None:
        self.lang = lang
        self.tz = tz
        self._messages = MESSAGES[lang]

    def __call__(self, key: str) -> str:
        return self._messages.get(key, MESSAGES["en"].get(key, key))

    def when(self, ts: datetime | None) -> str:
        """A stored UTC time shown in the configured zone (dd/mm/yyyy in Vietnamese)."""
        if ts is None:
            return ""
        local = ts.astimezone(self.tz)
        return local.strftime("%d/%m/%Y %H:%M:%S") if self.lang == "vi" else local.strftime("%Y-%m-%d %H:%M:%S")
