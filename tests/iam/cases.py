"""The named IAM case file and the constants the tests share."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CASE = Path(__file__).resolve().parent.parent / "cases" / "iam" / "authorization_details_small.json"
ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
TAKEN_AT = datetime(2024, 6, 1, tzinfo=UTC)


def case_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(CASE.read_text(encoding="utf-8"))
    return document
