"""Public value types for PostgreSQL values that have no exact standard-library match."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Interval"]


@dataclass(frozen=True, slots=True)
class Interval:
    """A PostgreSQL ``interval`` with its three separate fields.

    PostgreSQL keeps months, days and microseconds apart because their lengths vary
    (a month is 28 to 31 days; a day is 23 to 25 hours across a daylight-saving
    change), see ``datatype-datetime.html#DATATYPE-INTERVAL-INPUT``. An interval
    with ``months == 0`` decodes to :class:`datetime.timedelta`; any other interval
    decodes to this type. Both types can be sent as ``interval`` parameters.

    PostgreSQL 17's ``'infinity'`` and ``'-infinity'`` intervals decode to
    ``Interval(2**31 - 1, 2**31 - 1, 2**63 - 1)`` and
    ``Interval(-2**31, -2**31, -2**63)``, the values they have on the wire.

    Attributes:
        months: Whole months (a year is 12 months), a signed 32-bit integer.
        days: Whole days, a signed 32-bit integer.
        microseconds: The time part, a signed 64-bit integer.
    """

    months: int = 0
    days: int = 0
    microseconds: int = 0
