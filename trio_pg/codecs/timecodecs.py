"""Codecs for date, time, timetz, timestamp, timestamptz and interval.

Binary layouts (``src/backend/utils/adt/date.c``, ``timestamp.c``; integer datetimes,
the only kind PostgreSQL 10+ builds): ``date_send`` sends an int32 day count from
2000-01-01; ``time_send`` an int64 microsecond count from midnight; ``timetz_send``
that int64 then an int32 zone offset in seconds *west* of UTC; ``timestamp_send``
and ``timestamptz_send`` an int64 microsecond count from 2000-01-01 00:00:00 (UTC
for timestamptz); ``interval_send`` an int64 of microseconds, an int32 of days and
an int32 of months.

Python mapping:

* ``timestamptz`` decodes to an aware ``datetime`` in UTC. A naive ``datetime``
  sent as ``timestamptz`` is taken to be in UTC (not in the session's TimeZone).
* ``timestamp`` and ``time`` take naive values only: an aware one raises
  ``ValueError`` rather than silently dropping its offset.
* ``timetz`` decodes to a ``time`` whose tzinfo is a fixed ``datetime.timezone``;
  a naive ``time`` sent as ``timetz`` is taken to be in UTC.
* ``date`` takes a ``date`` only: a ``datetime`` raises ``TypeError`` (pass
  ``value.date()``) rather than silently dropping its time.
* Infinity: PostgreSQL's ``'infinity'`` and ``'-infinity'`` dates and timestamps
  decode to ``date.max``/``date.min`` and ``datetime.max``/``datetime.min`` (with
  ``tzinfo=timezone.utc`` for timestamptz), and those exact sentinel values encode
  back to ``'infinity'``/``'-infinity'``. So the finite PostgreSQL values
  9999-12-31 (23:59:59.999999) and 0001-01-01 (00:00:00) read back as infinities
  when written from Python.
* Values outside Python's range (years before 1 or after 9999) cannot be decoded and
  raise ``ValueError``; select them as text (``col::text``) instead. ``time``
  ``'24:00:00'`` likewise has no ``datetime.time`` and raises ``ValueError``.
* ``interval`` decodes to ``timedelta`` when it has no months, otherwise to
  :class:`trio_pg.codecs.Interval`; both encode. A ``timedelta`` is sent as its
  days plus its seconds and microseconds, like ``'1 day 02:03:04'``.

Text decoders assume the server's ``DateStyle`` is ``ISO`` and ``IntervalStyle`` is
``postgres`` (the defaults, ``runtime-config-client.html#GUC-DATESTYLE``).
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

from trio_pg.codecs import oids
from trio_pg.codecs.base import Codec, DecodeFn, Format, wrong_type
from trio_pg.codecs.types import Interval

__all__ = ["CODECS", "EPOCH_OFFSET_DECODERS", "TEXT_DECODERS"]

_UTC: Final = UTC
_EPOCH: Final = datetime(2000, 1, 1)
_EPOCH_UTC: Final = datetime(2000, 1, 1, tzinfo=_UTC)
_EPOCH_ORDINAL: Final = date(2000, 1, 1).toordinal()
_DATETIME_MAX_UTC: Final = datetime.max.replace(tzinfo=_UTC)
_DATETIME_MIN_UTC: Final = datetime.min.replace(tzinfo=_UTC)

# DATEVAL_NOBEGIN/NOEND and DT_NOBEGIN/DT_NOEND in src/include/datatype/timestamp.h.
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

_pack_i32 = struct.Struct("!i").pack
_unpack_i32 = struct.Struct("!i").unpack
_pack_i64 = struct.Struct("!q").pack
_unpack_i64 = struct.Struct("!q").unpack
_pack_timetz = struct.Struct("!qi").pack
_unpack_timetz = struct.Struct("!qi").unpack
_pack_interval = struct.Struct("!qii").pack
_unpack_interval = struct.Struct("!qii").unpack


def _out_of_range(pg_type: str, raw: int) -> ValueError:
    return ValueError(
        f"PostgreSQL {pg_type} value {raw} is outside the range of Python's datetime "
        f"types (years 1 to 9999); select it as text (value::text) instead"
    )


def _timedelta_micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# -- date ------------------------------------------------------------------------


def _decode_date(data: bytes) -> date:
    (days,) = _unpack_i32(data)
    try:
        return date.fromordinal(days + _EPOCH_ORDINAL)
    except (ValueError, OverflowError):
        if days == _INT32_MAX:
            return date.max
        if days == _INT32_MIN:
            return date.min
        raise _out_of_range("date", days) from None


def _encode_date(value: object) -> bytes:
    if value.__class__ is not date:
        if isinstance(value, datetime):
            raise TypeError(
                "cannot encode datetime as PostgreSQL date: pass value.date() "
                "(the time part would be lost)"
            )
        if not isinstance(value, date):
            raise wrong_type("date", "datetime.date", value)
    if value == date.max:
        return _pack_i32(_INT32_MAX)
    if value == date.min:
        return _pack_i32(_INT32_MIN)
    return _pack_i32(value.toordinal() - _EPOCH_ORDINAL)


# -- time and timetz ------------------------------------------------------------------


def _time_from_micros(micros: int, tzinfo: timezone | None) -> time:
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    try:
        return time(hour, minute, second, micro, tzinfo)
    except ValueError:
        # time_recv and timetz_recv accept 24:00:00, which datetime.time cannot hold.
        raise ValueError(
            f"PostgreSQL time {hour:02}:{minute:02}:{second:02} has no datetime.time "
            f"equivalent; select it as text (value::text) instead"
        ) from None


def _decode_time(data: bytes) -> time:
    return _time_from_micros(_unpack_i64(data)[0], None)


@functools.lru_cache(maxsize=64)
def _zone(seconds_east: int) -> timezone:
    return _UTC if seconds_east == 0 else timezone(timedelta(seconds=seconds_east))


def _decode_timetz(data: bytes) -> time:
    micros, seconds_west = _unpack_timetz(data)
    return _time_from_micros(micros, _zone(-seconds_west))


def _time_micros(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def _encode_time(value: object) -> bytes:
    if not isinstance(value, time):
        raise wrong_type("time", "datetime.time", value)
    if value.tzinfo is not None:
        raise ValueError(
            "cannot encode an aware time as PostgreSQL time (without time zone): "
            "pass value.replace(tzinfo=None), or use a timetz parameter"
        )
    return _pack_i64(_time_micros(value))


def _encode_timetz(value: object) -> bytes:
    if not isinstance(value, time):
        raise wrong_type("timetz", "datetime.time", value)
    offset = value.utcoffset()
    if offset is None:
        if value.tzinfo is not None:
            raise ValueError(
                "cannot encode a time as PostgreSQL timetz: its tzinfo gives no fixed "
                "UTC offset (use a datetime.timezone)"
            )
        offset = timedelta(0)
    if offset.microseconds:
        raise ValueError("PostgreSQL timetz offsets are whole seconds")
    return _pack_timetz(_time_micros(value), -(offset.days * 86_400 + offset.seconds))


# -- timestamp and timestamptz -------------------------------------------------------------


def _decode_timestamp(data: bytes) -> datetime:
    (micros,) = _unpack_i64(data)
    try:
        return _EPOCH + timedelta(0, 0, micros)
    except OverflowError:
        if micros == _INT64_MAX:
            return datetime.max
        if micros == _INT64_MIN:
            return datetime.min
        raise _out_of_range("timestamp", micros) from None


def _decode_timestamptz(data: bytes) -> datetime:
    (micros,) = _unpack_i64(data)
    try:
        return _EPOCH_UTC + timedelta(0, 0, micros)
    except OverflowError:
        if micros == _INT64_MAX:
            return _DATETIME_MAX_UTC
        if micros == _INT64_MIN:
            return _DATETIME_MIN_UTC
        raise _out_of_range("timestamptz", micros) from None


def _encode_timestamp(value: object) -> bytes:
    if not isinstance(value, datetime):
        raise wrong_type("timestamp", "datetime.datetime", value)
    if value.tzinfo is not None:
        raise ValueError(
            "cannot encode an aware datetime as PostgreSQL timestamp (without time "
            "zone): convert it yourself, e.g. value.astimezone(tz).replace(tzinfo=None), "
            "or use a timestamptz parameter"
        )
    if value == datetime.max:
        return _pack_i64(_INT64_MAX)
    if value == datetime.min:
        return _pack_i64(_INT64_MIN)
    return _pack_i64(_timedelta_micros(value - _EPOCH))


def _encode_timestamptz(value: object) -> bytes:
    if not isinstance(value, datetime):
        raise wrong_type("timestamptz", "datetime.datetime", value)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=_UTC)
    if value == _DATETIME_MAX_UTC:
        return _pack_i64(_INT64_MAX)
    if value == _DATETIME_MIN_UTC:
        return _pack_i64(_INT64_MIN)
    return _pack_i64(_timedelta_micros(value - _EPOCH_UTC))


# -- interval --------------------------------------------------------------------------


def _decode_interval(data: bytes) -> timedelta | Interval:
    return _interval_value(*_unpack_interval(data))


def _interval_value(micros: int, days: int, months: int) -> timedelta | Interval:
    if months == 0:
        try:
            return timedelta(days, 0, micros)
        except OverflowError:
            pass
    return Interval(months, days, micros)


def _encode_interval(value: object) -> bytes:
    if isinstance(value, timedelta):
        return _pack_interval(value.seconds * 1_000_000 + value.microseconds, value.days, 0)
    if not isinstance(value, Interval):
        raise wrong_type("interval", "datetime.timedelta or trio_pg.codecs.Interval", value)
    try:
        return _pack_interval(value.microseconds, value.days, value.months)
    except struct.error:
        raise OverflowError(
            "interval field out of range for PostgreSQL interval: months and days must "
            "fit 32-bit integers and microseconds a 64-bit integer"
        ) from None


# -- text format --------------------------------------------------------------------


def _check_text_year(text: str, pg_type: str) -> None:
    if text.endswith(" BC") or len(text.partition("-")[0]) > 4:
        raise ValueError(
            f"PostgreSQL {pg_type} value {text!r} is outside the range of Python's "
            f"datetime types (years 1 to 9999)"
        )


def _decode_date_text(data: bytes) -> date:
    text = data.decode("ascii")
    if text == "infinity":
        return date.max
    if text == "-infinity":
        return date.min
    _check_text_year(text, "date")
    return date.fromisoformat(text)


def _decode_timestamp_text(data: bytes) -> datetime:
    text = data.decode("ascii")
    if text == "infinity":
        return datetime.max
    if text == "-infinity":
        return datetime.min
    _check_text_year(text, "timestamp")
    return datetime.fromisoformat(text)


def _decode_timestamptz_text(data: bytes) -> datetime:
    # timestamptz_out writes the session's TimeZone offset; normalise to UTC.
    text = data.decode("ascii")
    if text == "infinity":
        return _DATETIME_MAX_UTC
    if text == "-infinity":
        return _DATETIME_MIN_UTC
    _check_text_year(text, "timestamptz")
    return datetime.fromisoformat(text).astimezone(_UTC)


def _decode_time_text(data: bytes) -> time:
    text = data.decode("ascii")
    if text.startswith("24:00:00"):
        raise ValueError(f"PostgreSQL time value {text!r} has no datetime.time equivalent")
    return time.fromisoformat(text)


# interval_out with IntervalStyle=postgres: "[N year[s]] [N mon[s]] [N day[s]]
# [[+-]HH:MM:SS[.ffffff]]", each number signed, "00:00:00" when zero.
_INTERVAL_TEXT = re.compile(
    r"(?:(?P<years>[+-]?\d+) years? ?)?"
    r"(?:(?P<months>[+-]?\d+) mons? ?)?"
    r"(?:(?P<days>[+-]?\d+) days? ?)?"
    r"(?:(?P<sign>[+-])?(?P<hours>\d+):(?P<minutes>\d\d):(?P<seconds>\d\d)(?:\.(?P<fraction>\d{1,6}))?)?"
)


def _decode_interval_text(data: bytes) -> timedelta | Interval:
    text = data.decode("ascii")
    if text == "infinity":
        return Interval(_INT32_MAX, _INT32_MAX, _INT64_MAX)
    if text == "-infinity":
        return Interval(_INT32_MIN, _INT32_MIN, _INT64_MIN)
    match = _INTERVAL_TEXT.fullmatch(text)
    if match is None or not text:
        raise ValueError(
            f"cannot parse PostgreSQL interval {text!r}: trio_pg reads the default "
            f"IntervalStyle 'postgres' only"
        )
    fields = match.groupdict()
    months = int(fields["years"] or 0) * 12 + int(fields["months"] or 0)
    days = int(fields["days"] or 0)
    micros = (
        (int(fields["hours"] or 0) * 60 + int(fields["minutes"] or 0)) * 60
        + int(fields["seconds"] or 0)
    ) * 1_000_000 + int((fields["fraction"] or "").ljust(6, "0"))
    if fields["sign"] == "-":
        micros = -micros
    return _interval_value(micros, days, months)


#: Binary codecs defined by this module.
CODECS: Final[tuple[Codec, ...]] = (
    Codec(oids.DATE, "date", Format.BINARY, _encode_date, _decode_date),
    Codec(oids.TIME, "time", Format.BINARY, _encode_time, _decode_time),
    Codec(oids.TIMETZ, "timetz", Format.BINARY, _encode_timetz, _decode_timetz),
    Codec(oids.TIMESTAMP, "timestamp", Format.BINARY, _encode_timestamp, _decode_timestamp),
    Codec(oids.TIMESTAMPTZ, "timestamptz", Format.BINARY, _encode_timestamptz, _decode_timestamptz),
    Codec(oids.INTERVAL, "interval", Format.BINARY, _encode_interval, _decode_interval),
)

#: Decoders whose value is an epoch plus the value's int64 of microseconds, whenever
#: that sum is in ``datetime``'s range (the others, infinities included, raise
#: ``OverflowError`` there): a row decoder may compute it inline, falling back to the
#: decoder itself when the sum overflows.
EPOCH_OFFSET_DECODERS: Final[Mapping[DecodeFn, datetime]] = {
    _decode_timestamp: _EPOCH,
    _decode_timestamptz: _EPOCH_UTC,
}

#: Text-format decoders defined by this module.
TEXT_DECODERS: Final[Mapping[int, DecodeFn]] = {
    oids.DATE: _decode_date_text,
    oids.TIME: _decode_time_text,
    oids.TIMETZ: _decode_time_text,
    oids.TIMESTAMP: _decode_timestamp_text,
    oids.TIMESTAMPTZ: _decode_timestamptz_text,
    oids.INTERVAL: _decode_interval_text,
}
