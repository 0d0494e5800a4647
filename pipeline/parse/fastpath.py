"""The fast path of parsing: a whole clean `{"Records": [...]}` document in one C pass.

msgspec decodes every record straight into a typed struct (scalars typed, nested parts kept as
raw JSON text), and columns are then built with one list comprehension each. It refuses any
document it cannot take whole — an unknown top-level key (which must land in `extra`), a value
of the wrong type, a record without eventID or eventTime, an unparseable time, invalid UTF-8 —
by returning None; the caller then takes the record-by-record path (records.py), which keeps or
quarantines each record on its own. Both paths produce the same rows (tests/parse checks it).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from msgspec.structs import astuple

from pipeline.parse.records import (
    _PARTITION_VALUE,
    RecordError,
    _as_flag,
    _Attributes,
    _OnBehalfOf,
    _parse_time,
    _SessionContext,
    _SessionIssuer,
    _TlsDetails,
    _UserIdentity,
    _WebIdFederationData,
    iam_principal_arn,
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
_NO_IDENTITY = _UserIdentity()
_NO_CONTEXT = _SessionContext()
_NO_ISSUER = _SessionIssuer()
_NO_ATTRIBUTES = _Attributes()
_NO_WEB = _WebIdFederationData()
_NO_BEHALF = _OnBehalfOf()
_NULL_JSON = pa.scalar(b"null", pa.binary())
_TOKEN = b"sessionToken"
_ESCAPE = b"\\u"

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


def _json_array(raws: Sequence[Raw]) -> bytes:
    """The raw values as the text of one JSON array (absent values are already `null`)."""
    return b"[" + b",".join(raws) + b"]"


def _redacted(raws: Sequence[Raw]) -> Sequence[Raw | bytes]:
    """The values with every sessionToken redacted: one search of the joined values, then the
    pattern on the few values that hold the key (STS responses), as RowBuilder does."""
    joined = b"".join(raws)
    start = joined.find(_TOKEN)
    escaped = _ESCAPE in joined  # a key may be written "session\\u0054oken" (see records.py)
    if start < 0 and not escaped:
        return raws
    if escaped:
        return [redact_session_tokens(bytes(raw)) for raw in raws]
    ends = list(accumulate(map(len, raws)))
    out: list[Raw | bytes] = list(raws)
    while start >= 0:
        i = bisect_right(ends, start)  # the value the key starts in
        out[i] = redact_session_tokens(bytes(raws[i]))
        start = joined.find(_TOKEN, ends[i])
    return out


def _utf8(raws: Sequence[Raw | bytes], *, ascii_only: bool) -> pa.Array:
    """A string column of raw JSON texts, JSON null as NULL, built from one joined buffer with
    no copy: the texts become the data, the nulls only a validity bitmap."""
    if raws and raws[0] is _ABSENT and raws.count(_ABSENT) == len(raws):
        # A part no record of the document has (addendum, serviceEventDetails, ... in most
        # trails): counting the shared default costs far less than joining and measuring.
        return pa.nulls(len(raws), pa.string())
    offsets = pa.py_buffer(array("i", accumulate(map(len, raws), initial=0)))  # int32, as Arrow's
    data = pa.py_buffer(b"".join(raws))
    binary = pa.Array.from_buffers(pa.binary(), len(raws), [None, offsets, data])
    valid = pc.invert(pc.equal(binary, _NULL_JSON)).buffers()[1]
    texts = pa.Array.from_buffers(pa.string(), len(raws), [valid, offsets, data])
    if not ascii_only:
        texts.validate(full=True)  # ArrowInvalid on invalid UTF-8 -> slow path
    return texts


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
    if not records:
        return None
    try:
        if ascii_only is None:
            ascii_only = doc.isascii()
        table = _build(
            records, source_uri, source_sha256, run_id, fallback_account, ascii_only=ascii_only
        )
        return table, len(records)
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
    *,
    ascii_only: bool,
) -> pa.Table:
    n = len(records)
    times = [r.eventTime for r in records]
    if not all(times):
        raise _NotClean
    event_time = pa.array(times, pa.string()).cast(TIMESTAMP)  # ArrowInvalid -> slow path
    # Rows leave the parser sorted by event_time (see sort_by_time), so that staging can write
    # an object's rows without reordering them. Reordering the decoded records here, before
    # any column exists, costs a list copy instead of a gather of every built column.
    positions: pa.Array = pa.array(range(n), pa.int32())
    if not is_time_sorted(event_time):
        order = pc.sort_indices(event_time)  # stable: equal times keep the record order
        records = [records[i] for i in order.to_pylist()]
        event_time = event_time.take(order)
        positions = order.cast(pa.int32())
    columns = _transpose(records, _Record.__struct_fields__)

    def field(key: str) -> Sequence[Any]:
        return columns[key]

    event_ids = field("eventID")
    if not all(event_ids):
        raise _NotClean
    arrays: dict[str, pa.Array] = {
        "event_id": pa.array(event_ids, pa.string()),
        "event_time": event_time,
        "event_time_source": pa.repeat(pa.scalar("eventTime", pa.string()), n),
    }
    for column, key in _STRINGS:
        arrays[column] = pa.array(field(key), pa.string())
    arrays["read_only"] = pa.array(field("readOnly"), pa.bool_())
    arrays["management_event"] = pa.array(field("managementEvent"), pa.bool_())
    arrays["session_credential_from_console"] = pa.array(
        [_flag(v) for v in field("sessionCredentialFromConsole")], pa.bool_()
    )
    identity_raw = field("userIdentity")
    identities = _identities.decode(_json_array(identity_raw))
    for column, values in _identity_columns(identities).items():
        arrays[column] = pa.array(values, STAGED_SCHEMA.field(column).type)
    arrays["session_creation_date"] = _creation_dates(identities)
    tls = _tls_list.decode(_json_array(field("tlsDetails")))
    arrays["tls_version"] = pa.array([t.tlsVersion if t else None for t in tls], pa.string())
    arrays["user_identity"] = _utf8(identity_raw, ascii_only=ascii_only)
    arrays["response_elements"] = _utf8(_redacted(field("responseElements")), ascii_only=ascii_only)
    for column, key in _JSON:
        arrays[column] = _utf8(field(key), ascii_only=ascii_only)
    arrays["extra"] = pa.nulls(n, pa.string())
    arrays["source_uri"] = pa.repeat(pa.scalar(source_uri, pa.string()), n)
    arrays["source_sha256"] = pa.repeat(pa.scalar(source_sha256, pa.string()), n)
    arrays["source_record_index"] = positions
    arrays["ingest_run_id"] = pa.repeat(pa.scalar(run_id, pa.string()), n)
    accounts = [a or fallback_account or "unknown" for a in field("recipientAccountId")]
    if not all(_PARTITION_VALUE.match(a) for a in set(accounts)):
        raise _NotClean  # a folder name that could leave events/: quarantined record by record
    arrays["recipient_account_id"] = pa.array(accounts, pa.string())
    arrays["event_date"] = arrays["event_time"].cast(pa.date32())
    return pa.table([arrays[f.name] for f in STAGED_SCHEMA], schema=STAGED_SCHEMA)


def is_time_sorted(times: pa.Array | pa.ChunkedArray) -> bool:
    """Whether event_time never decreases from one row to the next."""
    if len(times) < 2:
        return True
    return bool(pc.all(pc.greater_equal(times[1:], times[:-1])).as_py())


def sort_by_time(table: pa.Table) -> pa.Table:
    """The table's rows in a stable sort by event_time: the order in which the parser hands
    rows on, whichever path built them."""
    if is_time_sorted(table["event_time"]):
        return table
    return table.take(pc.sort_indices(table, sort_keys=[("event_time", "ascending")]))


def _creation_dates(identities: list[_UserIdentity | None]) -> pa.Array:
    """sessionContext.attributes.creationDate as timestamps: one vectorised cast, or, when any
    value is not an ISO time with a zone, RowBuilder's rule value by value (NULL for those)."""
    texts = [
        u.sessionContext.attributes.creationDate
        if u and u.sessionContext and u.sessionContext.attributes
        else None
        for u in identities
    ]
    try:
        return pa.array(texts, pa.string()).cast(TIMESTAMP)
    except pa.ArrowInvalid:
        return pa.array([_parse_time(t) for t in texts], TIMESTAMP)


def _transpose(
    structs: Sequence[msgspec.Struct], names: tuple[str, ...]
) -> dict[str, Sequence[Any]]:
    """Field name -> that field of every struct (all of one type, non-empty list)."""
    return dict(zip(names, zip(*map(astuple, structs), strict=True), strict=True))


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


def _identity_columns(identities: list[_UserIdentity | None]) -> dict[str, Sequence[Any]]:
    """The userIdentity columns (as RowBuilder._identity gives them, record by record), read by
    transposing tuples: an absent part is an all-None struct, so every record has each level."""
    users = [u or _NO_IDENTITY for u in identities]
    contexts = [u.sessionContext or _NO_CONTEXT for u in users]
    issuers = [c.sessionIssuer or _NO_ISSUER for c in contexts]
    attributes = [c.attributes or _NO_ATTRIBUTES for c in contexts]
    user_cols = _transpose(users, _UserIdentity.__struct_fields__)
    context_cols = _transpose(contexts, _SessionContext.__struct_fields__)
    issuer_cols = _transpose(issuers, _SessionIssuer.__struct_fields__)
    webs = [w or _NO_WEB for w in context_cols["webIdFederationData"]]
    behalf = [b or _NO_BEHALF for b in user_cols["onBehalfOf"]]
    return {
        "principal_type": user_cols["type"],
        "principal_id": user_cols["principalId"],
        "principal_arn": user_cols["arn"],
        "iam_principal_arn": [iam_principal_arn(u) if u else None for u in identities],
        "principal_account_id": user_cols["accountId"],
        "access_key_id": [k or None for k in user_cols["accessKeyId"]],
        "user_name": user_cols["userName"],
        "invoked_by": user_cols["invokedBy"],
        "credential_id": user_cols["credentialId"],
        "identity_provider": user_cols["identityProvider"],
        "session_issuer_type": issuer_cols["type"],
        "session_issuer_principal_id": issuer_cols["principalId"],
        "session_issuer_arn": issuer_cols["arn"],
        "session_issuer_name": issuer_cols["userName"],
        "session_issuer_account_id": issuer_cols["accountId"],
        "mfa_authenticated": _flags([a.mfaAuthenticated for a in attributes], "mfaAuthenticated"),
        "source_identity": context_cols["sourceIdentity"],
        "ec2_role_delivery": context_cols["ec2RoleDelivery"],
        "web_id_provider": [w.federatedProvider for w in webs],
        "sign_in_session_arn": context_cols["signInSessionArn"],
        "on_behalf_of_user_id": [b.userId for b in behalf],
        "on_behalf_of_identity_store_arn": [b.identityStoreArn for b in behalf],
    }
