"""The fast path of parsing: a whole clean `{"Records": [...]}` document in one C pass.

msgspec decodes every record straight into a typed struct (scalars typed, nested parts kept as
raw JSON text), and columns are then built with one list comprehension each. It refuses any
document it cannot take whole — an unknown top-level key (which must land in `extra`), a value
of the wrong type, a record without eventID or eventTime, an unparseable time, invalid UTF-8 —
by returning None; the caller then takes the record-by-record path (records.py), which keeps or
quarantines each record on its own. Both paths produce the same rows (tests/parse checks it).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pyarrow as pa

from pipeline.parse.records import (
    _PARTITION_VALUE,
    RecordError,
    _user_identity,
    identity_columns,
    redact_session_tokens,
)
from pipeline.parse.schema import STAGED_SCHEMA, TIMESTAMP

Raw = msgspec.Raw
# An absent nested part; `Raw | None` is not a type msgspec accepts, and JSON null arrives as
# Raw(b"null"), which _text maps to NULL too.
_ABSENT = msgspec.Raw(b"null")


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    eventVersion: str | None = None
    eventTime: str | None = None
    eventSource: str | None = None
    eventName: str | None = None
    eventType: str | None = None
    eventCategory: str | None = None
    awsRegion: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    requestID: str | None = None
    eventID: str | None = None
    sharedEventID: str | None = None
    vpcEndpointId: str | None = None
    vpcEndpointAccountId: str | None = None
    apiVersion: str | None = None
    recipientAccountId: str | None = None
    readOnly: bool | None = None
    managementEvent: bool | None = None
    sessionCredentialFromConsole: bool | str | None = None
    userIdentity: Raw = _ABSENT
    requestParameters: Raw = _ABSENT
    responseElements: Raw = _ABSENT
    additionalEventData: Raw = _ABSENT
    resources: Raw = _ABSENT
    serviceEventDetails: Raw = _ABSENT
    tlsDetails: Raw = _ABSENT
    addendum: Raw = _ABSENT


class _Envelope(msgspec.Struct):
    Records: list[_Record]


_decode = msgspec.json.Decoder(_Envelope)
_tls_version = msgspec.json.Decoder(dict[str, Any] | None)

_STRINGS = (
    ("event_version", "eventVersion"),
    ("event_source", "eventSource"),
    ("event_name", "eventName"),
    ("event_type", "eventType"),
    ("event_category", "eventCategory"),
    ("aws_region", "awsRegion"),
    ("source_ip", "sourceIPAddress"),
    ("user_agent", "userAgent"),
    ("error_code", "errorCode"),
    ("error_message", "errorMessage"),
    ("request_id", "requestID"),
    ("shared_event_id", "sharedEventID"),
    ("vpc_endpoint_id", "vpcEndpointId"),
    ("vpc_endpoint_account_id", "vpcEndpointAccountId"),
    ("api_version", "apiVersion"),
)
_JSON = (
    ("request_parameters", "requestParameters"),
    ("additional_event_data", "additionalEventData"),
    ("resources", "resources"),
    ("service_event_details", "serviceEventDetails"),
    ("tls_details", "tlsDetails"),
    ("addendum", "addendum"),
)


def _text(raw: Raw | None) -> bytes | None:
    if raw is None:
        return None
    data = bytes(raw)
    return None if data == b"null" else data


def _utf8(values: list[bytes | None]) -> pa.Array:
    return pa.array(values, pa.binary()).cast(pa.string())


def fast_table(
    doc: bytes, *, source_uri: str, source_sha256: str, run_id: str, fallback_account: str | None
) -> tuple[pa.Table, int] | None:
    """(table, record count) of a clean document, or None to use the record-by-record path."""
    try:
        records = _decode.decode(doc).Records
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        return None  # deep nesting, invalid UTF-8 in a string: the slow path says which record
    if not records:
        return None
    try:
        return _build(records, source_uri, source_sha256, run_id, fallback_account), len(records)
    except (pa.ArrowInvalid, msgspec.MsgspecError, RecordError, _NotClean):
        return None


class _NotClean(Exception):
    """Something only the record-by-record path can judge (and maybe quarantine)."""


def _flag(value: bool | str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise _NotClean
    return lowered == "true"


def _build(
    records: list[_Record],
    source_uri: str,
    source_sha256: str,
    run_id: str,
    fallback_account: str | None,
) -> pa.Table:
    n = len(records)
    event_ids = [r.eventID for r in records]
    times = [r.eventTime for r in records]
    if not all(event_ids) or not all(times):
        raise _NotClean
    arrays: dict[str, pa.Array] = {
        "event_id": pa.array(event_ids, pa.string()),
        "event_time": pa.array(times, pa.string()).cast(TIMESTAMP),  # ArrowInvalid -> slow path
        "event_time_source": pa.array(["eventTime"] * n, pa.string()),
    }
    for column, key in _STRINGS:
        arrays[column] = pa.array([getattr(r, key) for r in records], pa.string())
    arrays["read_only"] = pa.array([r.readOnly for r in records], pa.bool_())
    arrays["management_event"] = pa.array([r.managementEvent for r in records], pa.bool_())
    arrays["session_credential_from_console"] = pa.array(
        [_flag(r.sessionCredentialFromConsole) for r in records], pa.bool_()
    )
    identity_raw = [_text(r.userIdentity) for r in records]
    identities = [_user_identity.decode(raw) if raw is not None else None for raw in identity_raw]
    for column, values in identity_columns(identities).items():
        arrays[column] = pa.array(values, STAGED_SCHEMA.field(column).type)
    tls = [_tls_version.decode(r.tlsDetails) for r in records]
    arrays["tls_version"] = pa.array(
        [t.get("tlsVersion") if isinstance(t, dict) else None for t in tls], pa.string()
    )
    arrays["user_identity"] = _utf8(identity_raw)
    responses = [_text(r.responseElements) for r in records]
    arrays["response_elements"] = _utf8(
        [redact_session_tokens(v) if v is not None else None for v in responses]
    )
    for column, key in _JSON:
        arrays[column] = _utf8([_text(getattr(r, key)) for r in records])
    arrays["extra"] = pa.nulls(n, pa.string())
    arrays["source_uri"] = pa.array([source_uri] * n, pa.string())
    arrays["source_sha256"] = pa.array([source_sha256] * n, pa.string())
    arrays["source_record_index"] = pa.array(range(n), pa.int32())
    arrays["ingest_run_id"] = pa.array([run_id] * n, pa.string())
    accounts = [r.recipientAccountId or fallback_account or "unknown" for r in records]
    if not all(_PARTITION_VALUE.match(a) for a in accounts):
        raise _NotClean  # a folder name that could leave events/: quarantined record by record
    arrays["recipient_account_id"] = pa.array(accounts, pa.string())
    arrays["event_date"] = arrays["event_time"].cast(pa.date32())
    return pa.table([arrays[f.name] for f in STAGED_SCHEMA], schema=STAGED_SCHEMA)
