"""The fast path of parsing: a whole clean `{"Records": [...]}` document in one C pass.

msgspec decodes every record straight into a typed struct (scalars typed, nested parts kept as
raw JSON text), and columns are then built with one list comprehension each. It refuses any
document it cannot take whole — an unknown top-level key (which must land in `extra`), a value
of the wrong type, a record without eventID or eventTime, an unparseable time, invalid UTF-8 —
by returning None; the caller then takes the record-by-record path (records.py), which keeps or
quarantines each record on its own. Both paths produce the same rows (tests/parse checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.parse.gather import gather, token_candidates
from pipeline.parse.in_memory import records_key_once
from pipeline.parse.records import (
    _PARTITION_VALUE,
    RecordError,
    _as_flag,
    _parse_time,
    _TlsDetails,
    _UserIdentity,
    iam_principal_arn,
    lenient_flag,
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
# All userIdentity (tlsDetails) values of a document are decoded in one call, as one JSON array:
# one C pass instead of one Python-level call per record.
_identities = msgspec.json.Decoder(list[_UserIdentity | None])
_tls_list = msgspec.json.Decoder(list[_TlsDetails | None])

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
_EMPTY_AS_NULL = frozenset({"error_code"})
_JSON = (
    ("request_parameters", "requestParameters"),
    ("additional_event_data", "additionalEventData"),
    ("resources", "resources"),
    ("service_event_details", "serviceEventDetails"),
    ("tls_details", "tlsDetails"),
    ("addendum", "addendum"),
)


def _json_array(raws: Sequence[Raw]) -> bytes:
    """The raw values as the text of one JSON array (absent values are already `null`)."""
    return b"[" + b",".join(raws) + b"]"


def _redacted(raws: list[Raw], *, check_utf8: bool) -> Sequence[Raw | bytes]:
    """The values with every sessionToken redacted: one pass in C finds the few values that
    may hold the key (STS responses), which RowBuilder's redaction then reads. `check_utf8`:
    each value to redact is decoded as UTF-8 first (UnicodeDecodeError: the record-by-record
    path quarantines its record), as RowBuilder checks a record before it redacts: a byte that
    is not UTF-8 inside a token would go with the token. The values kept as they are are
    checked with their column (_build)."""
    found = token_candidates(raws)
    if not found:
        return raws
    out: list[Raw | bytes] = list(raws)
    for i in found:
        text = bytes(raws[i])
        if check_utf8 and not text.isascii():
            text.decode("utf-8")
        out[i] = redact_session_tokens(text)
    return out


def fast_table(
    doc: bytes,
    *,
    source_uri: str,
    source_sha256: str,
    run_id: str,
    fallback_account: str | None,
    ascii_only: bool | None = None,
) -> tuple[pa.Table, int] | None:
    """(table, record count) of a clean document, or None to use the record-by-record path.
    `ascii_only` is doc.isascii() when the caller knows it already (a pass over the document)."""
    try:
        records = _decode.decode(doc).Records
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        return None  # deep nesting, invalid UTF-8 in a string: the slow path says which record
    if not records or not records_key_once(doc, _first_raw(records)):
        return None  # "Records" twice: both lists are read record by record (in_memory.py)
    try:
        if ascii_only is None:
            ascii_only = doc.isascii()
        table = _build(
            records, source_uri, source_sha256, run_id, fallback_account, ascii_only=ascii_only
        )
        return table, len(records)
    except (pa.ArrowInvalid, msgspec.MsgspecError, RecordError, _NotClean):
        return None
    except (TypeError, UnicodeEncodeError, UnicodeDecodeError, OverflowError):
        # A value of another type than its column's, a string that is not valid Unicode, bytes
        # that are not UTF-8 in a string msgspec decodes here (the userIdentity and tlsDetails
        # values: the document's decode left them raw) or in a value redacted (_redacted), a
        # text column above 2 GiB (gather.py): the record-by-record path judges each record.
        return None


_RAW_FIELDS = tuple(
    name
    for name, field in zip(_Record.__struct_fields__, _Record.__struct_defaults__, strict=True)
    if field is _ABSENT
)


def _first_raw(records: list[_Record]) -> Raw | None:
    """The first nested part, as found in the document, of the first records (for
    records_key_once, which locates it there): None if none of them has one."""
    for record in records[:8]:
        for name in _RAW_FIELDS:
            value: Raw = getattr(record, name)
            if value is not _ABSENT:
                return value
    return None


# The instants whose UTC day a partition can name (Python's dates: years 1 to 9999); Arrow
# holds times beyond them, which a zone can put there (0001-01-01T00:00:00+01:00).
_FIRST_MOMENT = pa.scalar(datetime.min.replace(tzinfo=UTC), TIMESTAMP).value
_LAST_MOMENT = pa.scalar(datetime.max.replace(tzinfo=UTC), TIMESTAMP).value


class _NotClean(Exception):
    """Something only the record-by-record path can judge (and maybe quarantine)."""


def _flag(value: bool | str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise _NotClean
    return lowered == "true"


# What each record gives, read in one gather (gather.py): (column, path, kind). `o` values are
# converted here (flags that may be strings, the parts decoded or redacted further on).
_RECORD_FIELDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("event_id", ("eventID",), "S"),  # required: no NULL means none is empty
    # An empty errorCode is no error (as an absent one): kind S gives NULL for "".
    *((column, (key,), "S" if column in _EMPTY_AS_NULL else "s") for column, key in _STRINGS),
    ("read_only", ("readOnly",), "b"),
    ("management_event", ("managementEvent",), "b"),
    ("session_credential_from_console", ("sessionCredentialFromConsole",), "o"),
    ("recipient_account_id", ("recipientAccountId",), "S"),
    ("user_identity", ("userIdentity",), "o"),
    ("tls_details", ("tlsDetails",), "o"),
    ("response_elements", ("responseElements",), "o"),
    *((column, (key,), "r") for column, key in _JSON if column != "tls_details"),
)
# The userIdentity columns (as RowBuilder._identity gives them, record by record).
_IDENTITY_FIELDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("principal_type", ("type",), "s"),
    ("principal_id", ("principalId",), "s"),
    ("principal_arn", ("arn",), "s"),
    ("principal_account_id", ("accountId",), "s"),
    ("access_key_id", ("accessKeyId",), "S"),  # "" in some records: NULL
    ("user_name", ("userName",), "s"),
    ("invoked_by", ("invokedBy",), "s"),
    ("credential_id", ("credentialId",), "s"),
    ("identity_provider", ("identityProvider",), "s"),
    ("session_issuer_type", ("sessionContext", "sessionIssuer", "type"), "s"),
    ("session_issuer_principal_id", ("sessionContext", "sessionIssuer", "principalId"), "s"),
    ("session_issuer_arn", ("sessionContext", "sessionIssuer", "arn"), "s"),
    ("session_issuer_name", ("sessionContext", "sessionIssuer", "userName"), "s"),
    ("session_issuer_account_id", ("sessionContext", "sessionIssuer", "accountId"), "s"),
    ("session_creation_date", ("sessionContext", "attributes", "creationDate"), "s"),
    ("mfa_authenticated", ("sessionContext", "attributes", "mfaAuthenticated"), "o"),
    ("source_identity", ("sessionContext", "sourceIdentity"), "s"),
    ("ec2_role_delivery", ("sessionContext", "ec2RoleDelivery"), "s"),
    ("web_id_provider", ("sessionContext", "webIdFederationData", "federatedProvider"), "s"),
    ("sign_in_session_arn", ("sessionContext", "signInSessionArn"), "s"),
    ("on_behalf_of_user_id", ("onBehalfOf", "userId"), "s"),
    ("on_behalf_of_identity_store_arn", ("onBehalfOf", "identityStoreArn"), "s"),
    ("assumed_root", ("sessionContext", "assumedRoot"), "o"),
)


def _gathered(
    objs: list[Any], fields: tuple[tuple[str, tuple[str, ...], str], ...]
) -> dict[str, Any]:
    columns = gather(objs, [path for _, path, _ in fields], "".join(k for _, _, k in fields))
    return {name: column for (name, _, _), column in zip(fields, columns, strict=True)}


# 0, 1, 2, ...: each document's record indexes are a slice of it, not a new array (~40 us for
# the 500 records of a bench object). 256 KB, shared by every document of a parse process.
_RECORD_INDEXES = pa.array(range(1 << 16), pa.int32())


def _build(
    records: list[_Record],
    source_uri: str,
    source_sha256: str,
    run_id: str,
    fallback_account: str | None,
    *,
    ascii_only: bool,
) -> pa.Table:
    n = len(records)
    (times,) = gather(records, [("eventTime",)], "S")
    if times.null_count:
        raise _NotClean
    event_time = times.cast(TIMESTAMP)  # ArrowInvalid -> slow path
    first, last = pc.min_max(event_time).values()
    if first.is_valid and not (first.value >= _FIRST_MOMENT and last.value <= _LAST_MOMENT):
        raise _NotClean  # a time outside the years 1 to 9999 in UTC: the slow path names it
    # Rows leave the parser in the object's record order (staging sorts a partition by time
    # where that pays off: stage.py).
    positions: pa.Array = (
        _RECORD_INDEXES.slice(0, n) if n <= len(_RECORD_INDEXES) else pa.array(range(n), pa.int32())
    )
    arrays = _gathered(records, _RECORD_FIELDS)
    if arrays["event_id"].null_count:
        raise _NotClean
    arrays["event_time"] = event_time
    arrays["event_time_source"] = pa.repeat(pa.scalar("eventTime", pa.string()), n)
    from_console = arrays["session_credential_from_console"]
    arrays["session_credential_from_console"] = (
        pa.nulls(n, pa.bool_())
        if from_console.count(None) == n
        else pa.array([_flag(v) for v in from_console], pa.bool_())
    )
    identity_raw = arrays["user_identity"]
    identities = _identities.decode(_json_array(identity_raw))
    identity = _gathered(identities, _IDENTITY_FIELDS)
    identity["mfa_authenticated"] = pa.array(
        _flags(identity["mfa_authenticated"], "mfaAuthenticated"), pa.bool_()
    )
    identity["session_creation_date"] = _creation_dates(identity["session_creation_date"])
    assumed_root = identity["assumed_root"]
    identity["assumed_root"] = (
        pa.nulls(n, pa.bool_())
        if assumed_root.count(None) == n
        else pa.array([lenient_flag(v) for v in assumed_root], pa.bool_())
    )
    # One call per record is cheaper than the eight compute calls of a vectorised form.
    identity["iam_principal_arn"] = pa.array(
        [iam_principal_arn(u) if u else None for u in identities], pa.string()
    )
    arrays.update(identity)
    tls = _tls_list.decode(_json_array(arrays["tls_details"]))
    (arrays["tls_version"],) = gather(tls, [("tlsVersion",)], "s")
    for column, raws in (
        ("user_identity", identity_raw),
        ("tls_details", arrays["tls_details"]),
        ("response_elements", _redacted(arrays["response_elements"], check_utf8=not ascii_only)),
    ):
        (arrays[column],) = gather(list(raws), [()], "r")
    if not ascii_only:
        for column in (*(c for c, _ in _JSON), "user_identity", "response_elements"):
            arrays[column].validate(full=True)  # ArrowInvalid on invalid UTF-8 -> slow path
    arrays["extra"] = pa.nulls(n, pa.string())
    arrays["source_uri"] = pa.repeat(pa.scalar(source_uri, pa.string()), n)
    arrays["source_sha256"] = pa.repeat(pa.scalar(source_sha256, pa.string()), n)
    arrays["source_record_index"] = positions
    arrays["ingest_run_id"] = pa.repeat(pa.scalar(run_id, pa.string()), n)
    arrays["recipient_account_id"] = _accounts(arrays["recipient_account_id"], fallback_account)
    arrays["event_date"] = arrays["event_time"].cast(pa.date32())
    return pa.table([arrays[f.name] for f in STAGED_SCHEMA], schema=STAGED_SCHEMA)


def _accounts(accounts: pa.Array, fallback_account: str | None) -> pa.Array:
    """recipientAccountId, else the key's account, else "unknown"; each a safe folder name."""
    if accounts.null_count:  # absent or empty ("S")
        accounts = pa.array(
            [a or fallback_account or "unknown" for a in accounts.to_pylist()], pa.string()
        )
    if not all(_PARTITION_VALUE.match(a) for a in pc.unique(accounts).to_pylist()):
        raise _NotClean  # a folder name that could leave events/: quarantined record by record
    return accounts


def _creation_dates(texts: pa.Array) -> pa.Array:
    """sessionContext.attributes.creationDate as timestamps: one vectorised cast, or, when any
    value is not an ISO time with a zone, RowBuilder's rule value by value (NULL for those)."""
    try:
        return texts.cast(TIMESTAMP)
    except pa.ArrowInvalid:
        return pa.array([_parse_time(t) for t in texts.to_pylist()], TIMESTAMP)


# _as_flag of the values CloudTrail writes; anything else (other cases, a stray value) goes
# through _as_flag itself, which also says what is wrong.
_FLAG_VALUES: dict[object, bool | None] = {"true": True, "false": False, None: None}
_FLAG_VALUES.update({True: True, False: False})
_NOT_A_FLAG = object()


def _flags(values: list[bool | str | None], key: str) -> Sequence[Any]:
    """_as_flag of every value: a dictionary lookup each, instead of a call each."""
    flags = [_FLAG_VALUES.get(v, _NOT_A_FLAG) for v in values]
    if _NOT_A_FLAG in flags:
        return [_as_flag(v, key) for v in values]
    return flags
