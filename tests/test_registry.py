"""Registry checks: every command documented, every query tested, every report rendered,
and the IAM policy in docs/ covering exactly the calls the code makes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _command_paths() -> list[str]:
    group = typer.main.get_command(app)
    paths: list[str] = []

    def walk(command: object, prefix: str) -> None:
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sorted(sub.items()):
                walk(child, f"{prefix} {name}".strip())
        else:
            paths.append(prefix)

    walk(group, "")
    return paths


def test_every_cli_command_is_in_the_readme_table_with_help() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = _command_paths()
    assert {"ingest", "sql", "attribute", "iam import", "iam snapshot", "demo"} <= set(commands)
    group = typer.main.get_command(app)
    for path in commands:
        assert f"`agenttrail {path}" in readme or f"agenttrail {path}" in readme, path
        command = group
        for part in path.split():
            command = command.commands[part]  # type: ignore[attr-defined]
        assert (command.help or "").strip(), f"{path} has no help text"


def test_every_option_of_every_command_is_in_the_readme() -> None:
    """`agenttrail COMMAND --help` is not the only documentation: an option only --help names
    (ingest's --download-threads, --max-object-mb, --retry-quarantined were) is one a reader
    of the README never learns of."""
    readme = (ROOT / "README.md").read_text()
    missing = []

    def walk(command: Any, path: str) -> None:
        for param in command.params:
            for option in param.opts:
                named = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", readme)
                if option.startswith("--") and option != "--help" and not named:
                    missing.append(f"{path or 'agenttrail'} {option}")
        for name, child in sorted(getattr(command, "commands", {}).items()):
            walk(child, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    assert missing == []


def test_the_usage_lines_name_arguments_as_the_readme_does() -> None:
    """typer writes a required argument in braces ({statement}), which reads as a set of
    choices."""
    group = typer.main.get_command(app)
    usage = {}
    for path in ("ingest", "sql", "iam import", "query run", "query show"):
        command: Any = group
        for part in path.split():
            command = command.commands[part]
        with typer.Context(command, info_name=f"agenttrail {path}") as ctx:
            usage[path] = command.get_usage(ctx)
    assert usage == {
        "ingest": "Usage: agenttrail ingest [OPTIONS] SOURCE...",
        "sql": "Usage: agenttrail sql [OPTIONS] STATEMENT",
        "iam import": "Usage: agenttrail iam import [OPTIONS] FILE...",
        "query run": "Usage: agenttrail query run [OPTIONS] NAME",
        "query show": "Usage: agenttrail query show [OPTIONS] NAME",
    }


def test_every_command_prints_its_help() -> None:
    for path in _command_paths():
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", *path.split(), "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (path, done.stderr)
        assert "Usage:" in done.stdout, path
        assert "error" not in done.stderr.lower(), (path, done.stderr)


def test_every_named_query_has_a_result_test() -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for path in sorted((ROOT / "queries").glob("*.sql")):
        assert re.search(rf"\b{re.escape(path.stem)}\b", tests), f"no test names {path.name}"


def test_every_report_template_is_rendered_by_a_test() -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    templates = [p for p in (ROOT / "reports").glob("*.j2") if not p.name.startswith("_")]
    for template in templates:
        assert template.name in tests, f"no test renders {template.name}"


# boto3 client methods the package calls -> the IAM action each needs.
_CALLS = {
    "list_objects_v2": "s3:ListBucket",
    "get_object": "s3:GetObject",
    "get_account_authorization_details": "iam:GetAccountAuthorizationDetails",
    "list_public_keys": "cloudtrail:ListPublicKeys",
}
# Needed without a call of their own: S3 asks KMS to decrypt SSE-KMS objects on our behalf, and
# ListPublicKeys serves the digest verification that the evidence issue adds.
_IMPLIED = {"kms:Decrypt", "cloudtrail:ListPublicKeys"}


def test_the_iam_policy_grants_exactly_what_the_code_calls() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "pipeline").rglob("*.py"))
    used = {action for call, action in _CALLS.items() if re.search(rf"\b{call}\b", source)}
    policy = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
    granted = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        granted |= {actions} if isinstance(actions, str) else set(actions)
        assert "*" not in "".join(granted), "no wildcard actions"
    assert granted == used | _IMPLIED
    # Reads are limited to CloudTrail's own objects, not Insights or other services' logs.
    get = next(s for s in policy["Statement"] if s["Sid"] == "ReadLogFilesAndDigests")
    assert all(r.endswith(("/CloudTrail/*", "/CloudTrail-Digest/*")) for r in get["Resource"])
