"""Bad text in a source document, read the same way in memory (in_memory.py) and streamed
(streaming.py).

A lone UTF-16 surrogate escape is read as U+FFFD (fix_lone_surrogates; safe_cut says where a
stream may be cut for it, for SurrogateFixer). A key that is not UTF-8 quarantines its record,
and bad_key words why; json_fault says why a text is no JSON value. ijson's faults: whether it
stopped at bytes that are not UTF-8 (is_not_utf8), and its message without record text
(ijson_message).
"""

from __future__ import annotations

import re

import msgspec

_raw_value = msgspec.json.Decoder(msgspec.Raw)  # checks a text is one JSON value (not its UTF-8)
# A lone UTF-16 surrogate escape ("\udc00", or "\ud800" not followed by a low one) is in no
# Unicode text: msgspec refuses the whole document, ijson (yajl) raises while decoding it. Such an
# escape is read as U+FFFD, the replacement character (fix_lone_surrogates). Every backslash
# escape is matched, left to right, so that an escaped backslash ("\\udc00") is not taken for
# one; a surrogate pair is matched whole.
_ESCAPE_SEQUENCE = re.compile(
    rb"\\(?:(?P<high>u[dD][89abAB][0-9a-fA-F]{2})(?P<low>\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|(?P<lone>u[dD][c-fC-F][0-9a-fA-F]{2})|.)",
    re.DOTALL,
)
SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")  # a text without it has nothing to fix
_REPLACEMENT = rb"\ufffd"
_LONGEST_ESCAPE = 12  # a surrogate pair: "\ud83d\ude00"


def fix_lone_surrogates(text: bytes) -> bytes:
    """`text` with every lone UTF-16 surrogate escape replaced by "\\ufffd" (U+FFFD): the same
    object when there is none (the common case, one search). Python's json keeps such an escape
    as a lone surrogate, which no UTF-8 column can hold; a record is not lost over one."""
    if SURROGATE_HINT.search(text) is None:
        return text
    fixed = _ESCAPE_SEQUENCE.sub(_fix_escape, text)
    return text if fixed == text else fixed


def _fix_escape(match: re.Match[bytes]) -> bytes:
    if match.group("lone") is not None or (match.group("high") and match.group("low") is None):
        return _REPLACEMENT
    return match.group(0)


def safe_cut(data: bytes, hinted: bool) -> int:
    """Where `data`, which starts outside any escape, may be cut for fix_lone_surrogates to
    read the part before the cut as it would read the whole: at most _LONGEST_ESCAPE bytes
    before its end, with no escape (a surrogate pair) split, at a point outside any escape.
    `hinted`: whether SURROGATE_HINT occurs in data."""
    limit = len(data) - _LONGEST_ESCAPE
    if limit <= 0:
        return 0
    if not hinted:
        # No surrogate escape at all (any that starts before `limit` ends within data): a
        # cut after an escape's "\\u" leaves hex digits, which are no escape, and a run of
        # backslashes is kept whole, so that the next part starts outside any escape.
        while limit > 0 and data[limit - 1] == 0x5C:
            limit -= 1
        return limit
    cut = limit
    for match in _ESCAPE_SEQUENCE.finditer(data):  # every escape, to know which are escapes
        if match.start() >= limit:
            break
        cut = max(limit, match.end())
    return cut


def bad_key(exc: UnicodeDecodeError) -> str:
    """The reason for a key that is not UTF-8 (msgspec decodes keys, and raises on one)."""
    return f"a key is not valid UTF-8 ({exc.reason} at byte {exc.start} of the key)"


def json_fault(text: bytes) -> str | None:
    """Why `text` is not one JSON value, or None when it is one. Strings are not checked for
    UTF-8 (msgspec skips them as raw text). Only on error paths."""
    try:
        _raw_value.decode(fix_lone_surrogates(text))
    except msgspec.MsgspecError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"
    return None


_NOT_UTF8 = "invalid bytes in UTF8 string"


def is_not_utf8(exc: Exception) -> bool:
    """Whether ijson stopped at a string that is not UTF-8 (and at nothing else)."""
    return isinstance(exc, UnicodeDecodeError) or _NOT_UTF8 in ijson_message(exc)


def ijson_message(exc: Exception) -> str:
    """yajl's message without its multi-line excerpt (which may hold record text)."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
