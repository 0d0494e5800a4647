"""IAM fixtures: variants of the named case file written to tmp_path (another account, a broken
field), so each test states only what it changes, and a fresh warehouse layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.warehouse.layout import Layout

from .cases import ACCOUNT, case_document

WriteCase = Callable[..., Path]


@pytest.fixture
def write_case(tmp_path: Path) -> WriteCase:
    """`write_case(name, document=None, account=None)`: the case (or `document`) as a file in
    tmp_path, with every ARN of ACCOUNT moved to `account` when given."""

    def write(
        name: str, document: dict[str, Any] | None = None, account: str | None = None
    ) -> Path:
        text = json.dumps(case_document() if document is None else document, indent=4)
        if account is not None:
            text = text.replace(f"::{ACCOUNT}:", f"::{account}:")
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout.at(tmp_path / "warehouse")
