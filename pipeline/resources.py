"""Where the shipped SQL and report templates are.

In a checkout they are the top-level `queries/` and `reports/` folders; in an installed wheel they
are packaged as `pipeline._queries` and `pipeline._reports` (see pyproject.toml).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _find(folder: str, package: str) -> Path:
    local = _CHECKOUT / folder
    if local.is_dir():
        return local
    return Path(str(resources.files(package)))


def checkout_dir() -> Path:
    """The repository root when running from a checkout (sample_logs/ lives there)."""
    return _CHECKOUT


def queries_dir() -> Path:
    return _find("queries", "pipeline._queries")


def reports_dir() -> Path:
    return _find("reports", "pipeline._reports")
