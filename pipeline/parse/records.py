"""One CloudTrail record -> one row of typed, flattened columns.

The hot path of ingest. A record arrives as `dict[str, msgspec.Raw]`: top-level keys with their
values still as JSON text. Scalars are decoded one by one; nested parts (requestParameters, ...)
stay as the exact JSON text CloudTrail wrote, so nothing is re-serialised or lost. Only
userIdentity is decoded into a typed struct, because a dozen columns come from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow as pa

from pipeline.parse.schema import REDACTED, STAGED_SCHEMA

Raw = msgspec.Raw


class _Attributes(msgspec.Struct):
    creationDate: str | None = None
    mfaAuthenticated: str | bool | None = None


class _SessionIssuer(msgspec.Struct):
    type: str | None = None
    principalId: str | None = None
    arn: str | None = None
    accountId: str | None = None
    userName: str | None = None


class _WebIdFederationData(msgspec.Struct):
    federatedProvider: str | None = None


class _SessionContext(msgspec.Struct):
    attributes: _Attributes | None = None
    sessionIssuer: _SessionIssuer | None = None
    sourceIdentity: str | None = None
    ec2RoleDelivery: str | None = None
    signInSessionArn: str | None = None
    webIdFederationData: _WebIdFederationData | None = None
    # Any JSON value: one that is no flag reads as NULL (lenient_flag), and refuses no record.
    assumedRoot: Any = None


class _OnBehalfOf(msgspec.Struct):
    userId: str | None = None
    identityStoreArn: str | None = None


class _UserIdentity(msgspec.Struct):
    type: str | None = None
    principalId: str | None = None
    arn: str | None = None
    accountId: str | None = None
    accessKeyId: str | None = None
    userName: str | None = None
    invokedBy: str | None = None
    credentialId: str | None = None
    identityProvider: str | None = None
    sessionContext: _SessionContext | None = None
    onBehalfOf: _OnBehalfOf | None = None


class _TlsDetails(msgspec.Struct):
    tlsVersion: str | None = None


_str = msgspec.json.Decoder(str | None)
_flag = msgspec.json.Decoder(bool | str | None)
_user_identity = msgspec.json.Decoder(_UserIdentity | None)
_tls = msgspec.json.Decoder(_TlsDetails | None)
_encode = msgspec.json.Encoder()

# Top-level scalar keys -> column. Their values must be JSON strings (or null).
_STRING_FIELDS: tuple[tuple[str, str], ...] = (
    ("eventVersion", "event_version"),
    ("eventSource", "event_source"),
    ("eventName", "event_name"),
    ("eventType", "event_type"),
    ("eventCategory", "event_category"),
    ("awsRegion", "aws_region"),
    ("sourceIPAddress", "source_ip"),
    ("userAgent", "user_agent"),
    ("errorCode", "error_code"),
    ("errorMessage", "error_message"),
    ("requestID", "request_id"),
    ("sharedEventID", "shared_event_id"),
    ("vpcEndpointId", "vpc_endpoint_id"),
    ("vpcEndpointAccountId", "vpc_endpoint_account_id"),
    ("apiVersion", "api_version"),
)
_FLAG_FIELDS: tuple[tuple[str, str], ...] = (
    ("readOnly", "read_only"),
    ("managementEvent", "management_event"),
    ("sessionCredentialFromConsole", "session_credential_from_console"),
)
# Nested parts kept as JSON text, byte for byte.
_JSON_FIELDS: tuple[tuple[str, str], ...] = (
    ("userIdentity", "user_identity"),
    ("requestParameters", "request_parameters"),
    ("responseElements", "response_elements"),
    ("additionalEventData", "additional_event_data"),
    ("resources", "resources"),
    ("serviceEventDetails", "service_event_details"),
    ("tlsDetails", "tls_details"),
    ("addendum", "addendum"),
)
_CONSUMED = frozenset(
    {"eventID", "eventTime", "recipientAccountId"}
    | {k for k, _ in _STRING_FIELDS + _FLAG_FIELDS + _JSON_FIELDS}
)
_IDENTITY_COLUMNS = (
    "principal_type",
    "principal_id",
    "principal_arn",
    "iam_principal_arn",
    "principal_account_id",
    "access_key_id",
    "user_name",
    "invoked_by",
    "credential_id",
    "identity_provider",
    "session_issuer_type",
    "session_issuer_principal_id",
    "session_issuer_arn",
    "session_issuer_name",
    "session_issuer_account_id",
    "session_creation_date",
    "mfa_authenticated",
    "source_identity",
    "ec2_role_delivery",
    "web_id_provider",
    "sign_in_session_arn",
    "on_behalf_of_user_id",
    "on_behalf_of_identity_store_arn",
    "assumed_root",
)
# The value ends at its closing quote, or at the end of the text when a truncated record (a
# quarantined NDJSON line cut short) stops inside it.
# Unrolled ("normal* (special normal*)*"): linear in the token's length, no per-character
# alternation, which matters for kilobyte-long tokens.
# The key in any letter case: "SessionToken" is as secret as "sessionToken".
_SESSION_TOKEN = re.compile(
    rb'("sessionToken"\s*:\s*)"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.IGNORECASE
)
_REDACTED_JSON = b'"' + REDACTED.encode() + b'"'
# The key's letters, in the lowered text: a match of _SESSION_TOKEN starts one byte before them
# (its quote); where a backslash follows them, a key may be in JSON text held by a string.
_TOKEN_WORD = b"sessiontoken"
_WORD = len(_TOKEN_WORD)
# _SESSION_TOKEN up to the value's opening quote (see redact_session_tokens).
_TOKEN_HEAD = re.compile(rb'("sessionToken"\s*:\s*)"', re.IGNORECASE)
# Every JSON string token, visited left to right (_redact_escaped_keys).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_VALUE_HEAD = re.compile(rb'\s*:\s*"')  # after a key: the colon and the value's opening quote
_ESCAPE = b"\\u"
# A key inside JSON text that a string holds (a SIEM export that stringifies responseElements):
# its closing quote is escaped, at any depth ("sessionToken\"", "sessionToken\\\""), or the key
# is spelt with escapes. In the lowered text.
_NESTED_KEY = _TOKEN_WORD + b"\\"
# Every JSON string token, or the last one cut by the end of the text (a truncated record).
_STRING_TOKEN = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)(?:(")|\\?\Z)', re.DOTALL)
# One escape of a JSON string: a surrogate pair, another \uXXXX, or a one-letter escape.
_STRING_ESCAPE = re.compile(
    rb"\\(?:u(?P<high>[dD][89abAB][0-9a-fA-F]{2})\\u(?P<low>[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|u(?P<code>[0-9a-fA-F]{4})|(?P<letter>.))",
    re.DOTALL,
)
_LETTERS = {
    b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r",
    b"t": b"\t",
}  # fmt: skip
# What _escape_string writes as an escape: quote, backslash, control bytes, and surrogates (as
# UTF-8 with "surrogatepass" gives them: ED A0..BF xx), which are no UTF-8 text.
_NEEDS_ESCAPE = re.compile(rb'["\\\x00-\x1f]|\xed[\xa0-\xbf][\x80-\xbf]')
_ESCAPES_OUT = {b'"': b'\\"', b"\\": b"\\\\", b"\n": b"\\n", b"\r": b"\\r", b"\t": b"\\t"}
_ROOT_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):root$")
# recipient_account_id becomes a folder name (Hive partition): nothing that could leave events/.
_PARTITION_VALUE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def redact_session_tokens(text: bytes, lowered: bytes | None = None) -> bytes:
    """Replace every "sessionToken" value: STS responses carry live credentials (facts s.2).
    Keys in any letter case, spelt with escapes, and inside JSON text that a string holds, at
    any depth (_redact_in_strings: SIEM exports stringify responseElements).

    For plain keys it gives what _SESSION_TOKEN.sub would (tests/parse/test_records.py compares
    them): the pattern's head is matched where its literal start is, and the string value is
    then skipped with bytes.find, in C, where the regex steps through a token of 400 to 900
    characters one byte at a time: measured 2 us per STS response instead of 10 (a tenth of the
    bench trail's records are STS responses, so ~0.8 us per event).
    """
    lowered = text.lower() if lowered is None else lowered  # the caller's, when it has it
    nested = False
    start = lowered.find(_TOKEN_WORD)
    if start >= 0:
        text, nested = _redact_literal_keys(text, lowered, start)
    # After the plain keys, whose values (400 to 900 bytes) are gone then; a backslash first, one
    # byte found with memchr, where "\\u" is searched far slower (~1 us per kilobyte).
    if b"\\" in text and _ESCAPE in text:
        text = _redact_escaped_keys(text)
        nested = True
    if nested:
        text = _redact_in_strings(text)
    return text


def _redact_literal_keys(text: bytes, lowered: bytes, start: int) -> tuple[bytes, bool]:
    """The text with the values of plain keys redacted, and whether a key inside JSON text in a
    string may be left (the word followed by a backslash: an escaped quote). `lowered` is
    text.lower(): ASCII letters only, so every offset is the same in both; `start` is where the
    word is first found in it."""
    parts = []
    done = 0
    nested = False
    while start >= 0:
        after = lowered[start + _WORD : start + _WORD + 1]
        nested = nested or after == b"\\"
        key = start - 1  # where the key's opening quote is, if it is one
        if after == b'"' and key >= done and lowered[key : key + 1] == b'"':
            head = _TOKEN_HEAD.match(text, key)
            end = _string_end(text, head.end()) if head else None
            if head is not None and end is not None:
                parts += [text[done:key], head.group(1), _REDACTED_JSON]
                done = end
                start = lowered.find(_TOKEN_WORD, done)
                continue
        start = lowered.find(_TOKEN_WORD, start + 1)
    parts.append(text[done:])
    return b"".join(parts), nested


def _redact_escaped_keys(text: bytes) -> bytes:
    """The values of "sessionToken" keys written with escapes ("session\\u0054oken"): JSON
    allows them and the literal search cannot see them. No CloudTrail writer emits them, but
    "never stored" must not rest on that. Every string token is visited in order (so a key is
    never looked for inside a value); those with a backslash that are followed by a colon are
    decoded, and a sessionToken's string value is replaced."""
    parts: list[bytes] = []
    done = 0
    for match in _JSON_STRING.finditer(text):
        token = match.group()
        if match.start() < done or b"\\" not in token:
            continue
        head = _VALUE_HEAD.match(text, match.end())
        if head is None or (_decoded_key(token) or "").lower() != "sessiontoken":
            continue
        end = _string_end(text, head.end())
        if end is None:
            continue
        parts += [text[done : head.end() - 1], _REDACTED_JSON]
        done = end
    if not parts:
        return text
    parts.append(text[done:])
    return b"".join(parts)


def _redact_in_strings(text: bytes) -> bytes:
    """The sessionToken values inside JSON text held in a string value, at any depth: an export
    that stringifies responseElements writes `"{\\"credentials\\":{\\"sessionToken\\":...}}"`.
    Each string that may hold such a key is decoded, redacted as a document of its own (so
    strings in it are, in turn), and written back, escaped, only where that changed it."""
    parts: list[bytes] = []
    done = 0
    for match in _STRING_TOKEN.finditer(text):
        token = match.group()
        if b"\\" not in token:
            continue
        if token.lower().find(_NESTED_KEY) < 0 and _ESCAPE not in token:
            continue
        inner = _unescape_string(match.group(1))  # a cut token's lone last backslash dropped
        redacted = redact_session_tokens(inner)
        if redacted == inner:
            continue
        closing = match.group(2) or b""  # none where the text was cut inside the string
        parts += [text[done : match.start()], b'"', _escape_string(redacted), closing]
        done = match.end()
    if not parts:
        return text
    parts.append(text[done:])
    return b"".join(parts)


def _unescape_string(content: bytes) -> bytes:
    """The text of a JSON string's content, as UTF-8 bytes (a lone surrogate escape as
    "surrogatepass" writes it; bytes as found where they are not escapes)."""
    if b"\\" not in content:
        return content
    return _STRING_ESCAPE.sub(_unescape_one, content)


def _unescape_one(match: re.Match[bytes]) -> bytes:
    letter = match.group("letter")
    if letter is not None:
        return _LETTERS.get(letter, match.group())  # an unknown escape stays as found
    code = match.group("code")
    if code is not None:
        return chr(int(code, 16)).encode("utf-8", "surrogatepass")
    high, low = int(match.group("high"), 16), int(match.group("low"), 16)
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).encode()


def _escape_string(text: bytes) -> bytes:
    """`text` as the content of a JSON string: _unescape_string's inverse, up to spelling."""
    return _NEEDS_ESCAPE.sub(_escape_one, text)


def _escape_one(match: re.Match[bytes]) -> bytes:
    found = match.group()
    out = _ESCAPES_OUT.get(found)
    if out is not None:
        return out
    code = ord(found) if len(found) == 1 else ord(found.decode("utf-8", "surrogatepass"))
    return b"\\u%04x" % code


def _decoded_key(token: bytes) -> str | None:
    try:
        key: str | None = _str.decode(token)
    except msgspec.MsgspecError:
        return None
    return key


def _string_end(text: bytes, pos: int) -> int | None:
    """Where _SESSION_TOKEN's value part, from just after its opening quote at `pos`, ends:
    after the closing quote, or at the end of a text cut inside the value; None where the
    pattern fails (a backslash before a line break)."""
    while True:
        quote = text.find(b'"', pos)
        escape = text.find(b"\\", pos, None if quote < 0 else quote)
        if escape < 0:
            return len(text) if quote < 0 else quote + 1
        if escape + 1 == len(text):
            return len(text)  # `\\?\Z`: a value cut right after a backslash
        if text[escape + 1] == 0x0A:
            return None  # `\\.` does not take a line break, and nothing else fits there
        pos = escape + 2


class RecordError(ValueError):
    """A record that cannot become a row; its message is the quarantine reason."""


def _as_flag(value: bool | str | None, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise RecordError(f"{key} is {value!r}, expected true or false")


def lenient_flag(value: object) -> bool | None:
    """A flag no record is refused over (sessionContext.assumedRoot, which some records carry
    as an empty string): true or false in any letter case, else NULL (also a value of another
    JSON type)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _LENIENT_FLAGS.get(value.lower())
    return None


_LENIENT_FLAGS = {"true": True, "false": False}


def _json_text(raw: Raw | None) -> bytes | None:
    if raw is None:
        return None
    data = bytes(raw)
    return None if data == b"null" else data


def iam_principal_arn(identity: _UserIdentity) -> str | None:
    """The IAM identity behind a call: role ARN (with path) for sessions, else the user/root."""
    issuer = identity.sessionContext.sessionIssuer if identity.sessionContext else None
    if identity.type == "AssumedRole" and issuer is not None and issuer.arn:
        return issuer.arn
    if identity.type in ("IAMUser", "Root") and identity.arn:
        return identity.arn
    if identity.type == "FederatedUser" and issuer is not None and issuer.arn:
        return issuer.arn  # GetFederationToken: the IAM user that federated
    return None


@dataclass
class RowBuilder:
    """Accumulates rows of one source object (or a chunk of one) as column lists."""

    source_uri: str
    source_sha256: str
    run_id: str
    fallback_account: str | None = None
    # Check every value for invalid UTF-8 (skipped by the parser for all-ASCII documents): msgspec
    # leaves Raw values unchecked, and one bad byte would fail the whole table's cast.
    check_utf8: bool = True
    columns: dict[str, list[Any]] = field(default_factory=dict)
    rows: int = 0

    def __post_init__(self) -> None:
        self.columns = {name: [] for name in STAGED_SCHEMA.names}

    def add(self, record: dict[str, Raw], index: int) -> None:
        """Append one record; raises RecordError (nothing appended) when it is not valid."""
        try:
            if self.check_utf8:
                _check_utf8(record)
            values = self._values(record, index)
        except msgspec.ValidationError as exc:
            raise RecordError(f"wrong type: {_field_of_error(record) or exc}") from None
        except msgspec.DecodeError as exc:
            raise RecordError(f"invalid JSON value: {exc}") from None
        for name, value in values.items():
            self.columns[name].append(value)
        self.rows += 1

    def _values(self, record: dict[str, Raw], index: int) -> dict[str, Any]:
        get = record.get
        event_id_raw = get("eventID")
        event_id = _str.decode(event_id_raw) if event_id_raw is not None else None
        if not event_id:
            raise RecordError("record has no eventID")
        time_raw = get("eventTime")
        time_source = "eventTime"
        time_text = _str.decode(time_raw) if time_raw is not None else None
        if not time_text and "@timestamp" in record:  # absent, null or ""
            time_source = "@timestamp"
            time_text = _str.decode(record["@timestamp"])
        if not time_text:
            raise RecordError(f"record {event_id} has no eventTime")
        event_time = _parse_time(time_text)
        if event_time is None:
            raise RecordError(
                f"record {event_id}: {time_source} {time_text!r} is not an ISO 8601 time with a zone"
            )
        try:
            event_time.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:00:00+01:00 is valid, but in year 0 in UTC: no event_date partition
            # (nor Python date) can name its day.
            raise RecordError(
                f"record {event_id}: {time_source} {time_text!r} is outside the years 1 to 9999"
                " in UTC (events are partitioned by their UTC date)"
            ) from None

        out: dict[str, Any] = {
            "event_id": event_id,
            "event_time": event_time,
            "event_time_source": time_source,
            "source_uri": self.source_uri,
            "source_sha256": self.source_sha256,
            "source_record_index": index,
            "ingest_run_id": self.run_id,
        }
        for key, column in _STRING_FIELDS:
            raw = get(key)
            out[column] = _str.decode(raw) if raw is not None else None
        # An empty errorCode is no error, as an absent one (fastpath.py: kind S).
        out["error_code"] = out["error_code"] or None
        for key, column in _FLAG_FIELDS:
            raw = get(key)
            out[column] = _as_flag(_flag.decode(raw), key) if raw is not None else None
        for key, column in _JSON_FIELDS:
            out[column] = _json_text(get(key))
        response = out["response_elements"]
        if response is not None:
            out["response_elements"] = redact_session_tokens(response)

        account_raw = get("recipientAccountId")
        account = _str.decode(account_raw) if account_raw is not None else None
        account = account or self.fallback_account or "unknown"
        if not _PARTITION_VALUE.match(account):
            raise RecordError(
                f"record {event_id}: recipientAccountId {account!r} is not an account id"
            )
        out["recipient_account_id"] = account

        identity_raw = get("userIdentity")
        identity = _user_identity.decode(identity_raw) if identity_raw is not None else None
        out.update(self._identity(identity))
        tls_raw = get("tlsDetails")
        tls = _tls.decode(tls_raw) if tls_raw is not None else None
        out["tls_version"] = tls.tlsVersion if tls else None

        extra = {k: v for k, v in record.items() if k not in _CONSUMED}
        out["extra"] = _encode.encode(extra) if extra else None
        out["event_date"] = None  # derived from event_time, vectorised in to_table()
        return out

    @staticmethod
    def _identity(identity: _UserIdentity | None) -> dict[str, Any]:
        if identity is None:
            return dict.fromkeys(_IDENTITY_COLUMNS)
        context = identity.sessionContext
        issuer = context.sessionIssuer if context else None
        attributes = context.attributes if context else None
        web = context.webIdFederationData if context else None
        behalf = identity.onBehalfOf
        mfa = attributes.mfaAuthenticated if attributes else None
        return {
            "principal_type": identity.type,
            "principal_id": identity.principalId,
            "principal_arn": identity.arn,
            "iam_principal_arn": iam_principal_arn(identity),
            "principal_account_id": identity.accountId,
            "access_key_id": identity.accessKeyId or None,
            "user_name": identity.userName,
            "invoked_by": identity.invokedBy,
            "credential_id": identity.credentialId,
            "identity_provider": identity.identityProvider,
            "session_issuer_type": issuer.type if issuer else None,
            "session_issuer_principal_id": issuer.principalId if issuer else None,
            "session_issuer_arn": issuer.arn if issuer else None,
            "session_issuer_name": issuer.userName if issuer else None,
            "session_issuer_account_id": issuer.accountId if issuer else None,
            # A malformed creationDate is not worth losing an event over: NULL here, and the
            # original text stays in user_identity.
            "session_creation_date": _parse_time(attributes.creationDate) if attributes else None,
            "mfa_authenticated": _as_flag(mfa, "mfaAuthenticated"),
            "source_identity": context.sourceIdentity if context else None,
            "ec2_role_delivery": context.ec2RoleDelivery if context else None,
            "web_id_provider": web.federatedProvider if web else None,
            "sign_in_session_arn": context.signInSessionArn if context else None,
            "on_behalf_of_user_id": behalf.userId if behalf else None,
            "on_behalf_of_identity_store_arn": behalf.identityStoreArn if behalf else None,
            "assumed_root": lenient_flag(context.assumedRoot) if context else None,
        }

    def to_table(self) -> pa.Table:
        """The rows as an Arrow table in the staged schema (partition columns included)."""
        arrays: dict[str, pa.Array] = {}
        for fld in STAGED_SCHEMA:
            if fld.name == "event_date":
                continue
            values = self.columns[fld.name]
            if fld.name in _BYTES_COLUMNS:
                arrays[fld.name] = pa.array(values, pa.binary()).cast(pa.string())
            else:
                arrays[fld.name] = pa.array(values, fld.type)
        arrays["event_date"] = arrays["event_time"].cast(pa.date32())
        return pa.table(arrays, schema=STAGED_SCHEMA)


_BYTES_COLUMNS = frozenset({column for _, column in _JSON_FIELDS} | {"extra"})
_TYPED_FIELDS: tuple[tuple[str, msgspec.json.Decoder[Any]], ...] = (
    ("eventID", _str),
    ("eventTime", _str),
    ("@timestamp", _str),
    ("recipientAccountId", _str),
    *((key, _str) for key, _ in _STRING_FIELDS),
    *((key, _flag) for key, _ in _FLAG_FIELDS),
    ("userIdentity", _user_identity),
    ("tlsDetails", _tls),
)


def _field_of_error(record: dict[str, Raw]) -> str | None:
    """Which field of a record has the wrong type, and how (only on the error path)."""
    for key, decoder in _TYPED_FIELDS:
        raw = record.get(key)
        if raw is None:
            continue
        try:
            decoder.decode(raw)
        except msgspec.ValidationError as exc:
            return f"{key}: {exc}"
    return None


def _check_utf8(record: dict[str, Raw]) -> None:
    for key, raw in record.items():
        data = bytes(raw)
        if data.isascii():
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(f"{key}: invalid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _parse_time(text: str | None) -> datetime | None:
    """An aware datetime from CloudTrail's ISO 8601 text; None when it has no zone or is invalid."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
