"""What the app holds for its lifetime: config, database, signer, secret box, event store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from soc_api.config import ApiConfig
from soc_api.services.auth import SecretBox
from soc_api.services.tokens import TokenSigner

if TYPE_CHECKING:
    from collector.store.base import EventStore


@dataclass
class AppState:
    config: ApiConfig
    engine: Engine
    sessions: sessionmaker[Session]
    signer: TokenSigner
    box: SecretBox
    tz: ZoneInfo
    store: EventStore | None = None
    # API key id -> when this process last scheduled a last-used update (see deps._touch_api_key)
    api_key_touches: dict[int, datetime] = field(default_factory=dict)
