"""Declared endpoint counts per site: the denominator of the coverage KPIs.

Agents only report hosts that run them, so "100% of computers under central protection" needs
the number of computers the office actually has, declared by the office.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from soc_api.db.base import Base
from soc_api.db.types import UtcDateTime
from soc_common.ecs import utc_now


class DeclaredAssets(Base):
    __tablename__ = "kpi_declared_assets"

    site: Mapped[str] = mapped_column(ForeignKey("sites.code"), primary_key=True)
    pcs: Mapped[int] = mapped_column(Integer, default=0)
    servers: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
