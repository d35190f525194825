from __future__ import annotations

from collections.abc import Iterator

import pytest
from webhook_server import RecordingServer


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    try:
        yield srv
    finally:
        srv.stop()
