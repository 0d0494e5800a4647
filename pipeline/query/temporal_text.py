"""Dates, times, timestamps and intervals as ISO 8601 text, written from Arrow's integers.

Python's datetime holds neither nanoseconds, nor years beyond 1..9999, nor DuckDB's infinite
values (the type's largest integer and its negation); Arrow's as_py raises on them (or, for TIME
'24:00:00', gives 00:00:00). So the result formats (formats.py) write every date and time here,
as isoformat would write it where it can.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc


def duration(value: pa.MonthDayNano) -> str:
    """An interval as an ISO 8601 duration: P1M2DT3H4M5.5S; PT0S when empty. A negative part
    keeps its sign (PT-3H), as java.time writes it."""
    months, days, nanos = value.months, value.days, value.nanoseconds
    sign = "-" if nanos < 0 else ""
    hours, rest = divmod(abs(nanos), 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds, fraction = divmod(rest, 1_000_000_000)
    date_part = (f"{months}M" if months else "") + (f"{days}D" if days else "")
    time_part = (f"{sign}{hours}H" if hours else "") + (f"{sign}{minutes}M" if minutes else "")
    if seconds or fraction:
        digits = f".{fraction:09d}".rstrip("0") if fraction else ""
        time_part += f"{sign}{seconds}{digits}S"
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + (f"T{time_part}" if time_part else "")


_INFINITE_DAY = 2**31 - 1
_INFINITE_MOMENT = 2**63 - 1
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_CYCLE_DAYS = 146_097  # 400 Gregorian years: the calendar repeats after them
# Instants whose UTC offset a zone can give (a day inside datetime's years, whatever the zone).
_FIRST_INSTANT = int((datetime(1, 1, 2, tzinfo=UTC) - _EPOCH).total_seconds())
_LAST_INSTANT = int((datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH).total_seconds())


def _infinite(value: int, infinity: int) -> str | None:
    if abs(value) != infinity:
        return None
    return "infinity" if value > 0 else "-infinity"


def _calendar_day(days: int) -> str:
    """Days since 1970-01-01 as an ISO 8601 date, whatever the year: one beyond 0000-9999 has
    its sign and five digits or more (+10000-01-01, -0001-12-31: year 0 is 1 BC), as java.time
    writes it."""
    cycles, rest = divmod(days + _EPOCH_ORDINAL - 1, _CYCLE_DAYS)
    day = date.fromordinal(rest + 1)  # within the years 1..400
    year = day.year + 400 * cycles
    digits = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    return f"{digits}-{day.month:02d}-{day.day:02d}"


def _clock(seconds: int, nanos: int) -> str:
    """Seconds since midnight as isoformat writes them (08:00:00, 08:00:00.500000), with nine
    digits where a nanosecond would be lost to six; 24:00:00 (a DuckDB TIME) stays itself."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if nanos % 1000:
        return f"{text}.{nanos:09d}"
    return f"{text}.{nanos // 1000:06d}" if nanos else text


def _offset(seconds: int) -> str:
    """A UTC offset as isoformat writes it: +00:00, -05:30, +05:30:15."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def _offsets(kind: pa.TimestampType) -> Callable[[int], int]:
    """The UTC offset, in seconds, of the type's time zone at an instant (seconds since the
    epoch): of the zone as_py uses, at the nearest instant it can give one for."""
    zone = pa.scalar(0, kind).as_py().tzinfo
    fixed = zone.utcoffset(None)  # a fixed offset ("+02:00"); None for a named zone
    if fixed is not None or kind.tz in ("UTC", "Etc/UTC"):  # DuckDB's usual: no lookup per row
        constant = int(fixed.total_seconds()) if fixed is not None else 0
        return lambda _: constant

    def at(instant: int) -> int:
        clamped = min(max(instant, _FIRST_INSTANT), _LAST_INSTANT)
        offset = (_EPOCH + timedelta(seconds=clamped)).astimezone(zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    return at


def moments(column: pa.Array) -> pa.Array:
    """A timestamp column as text: 2024-03-01T08:00:00+00:00 (the offset when it has a zone)."""
    kind = column.type
    per_second = _PER_SECOND[kind.unit]
    offset_at = _offsets(kind) if kind.tz is not None else None

    def text(value: int) -> str:
        infinite = _infinite(value, _INFINITE_MOMENT)
        if infinite is not None:
            return infinite
        seconds, fraction = divmod(value, per_second)
        suffix = ""
        if offset_at is not None:
            shift = offset_at(seconds)
            seconds += shift
            suffix = _offset(shift)
        days, seconds = divmod(seconds, 86_400)
        nanos = fraction * (1_000_000_000 // per_second)
        return f"{_calendar_day(days)}T{_clock(seconds, nanos)}{suffix}"

    values = column.view(pa.int64()).to_pylist()
    return pa.array([None if v is None else text(v) for v in values], pa.string())


def days(column: pa.Array) -> pa.Array:
    """A date column as text: 2024-03-01."""
    if pa.types.is_date64(column.type):  # milliseconds, of whole days
        column = pc.cast(column, pa.date32(), safe=False)
    days = column.view(pa.int32())
    low, high = pc.min_max(days).as_py().values()
    if low is None or (low >= _FIRST_INSTANT // 86_400 and high <= _LAST_INSTANT // 86_400):
        return column.cast(pa.string())  # Arrow's text, isoformat's within these years: faster
    texts = [
        None if d is None else _infinite(d, _INFINITE_DAY) or _calendar_day(d)
        for d in days.to_pylist()
    ]
    return pa.array(texts, pa.string())


def clocks(column: pa.Array) -> pa.Array:
    """A TIME column as text: 08:00:00."""
    per_second = _PER_SECOND[column.type.unit]
    values = column.view(pa.int32() if column.type.bit_width == 32 else pa.int64()).to_pylist()
    scale = 1_000_000_000 // per_second
    texts = [None if v is None else _clock(v // per_second, v % per_second * scale) for v in values]
    return pa.array(texts, pa.string())
