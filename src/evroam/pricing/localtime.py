"""UTC offsets without a zoneinfo lookup per period.

Restrictions are judged in the Location's local time. Every zone in use today
changes its offset at a multiple of 15 minutes UTC, so the offset is cached per
15-minute bucket: one zoneinfo call per bucket and zone, then dict hits.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

BUCKET_US = 900_000_000
_CACHE_MAX = 200_000


class UnknownTimeZone(ValueError):
    pass


def zone(name: str | tzinfo | None) -> tzinfo:
    if name is None:
        return UTC
    if isinstance(name, tzinfo):
        return name
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for malformed keys
        raise UnknownTimeZone(f"time_zone: unknown IANA time zone {name!r}") from exc


class OffsetCache:
    """UTC offset in whole seconds of one zone, by 15-minute bucket."""

    __slots__ = ("tz", "cache", "fixed", "spans")

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.cache: dict[int, int] = {}
        self.spans: dict[int, tuple[int, int]] = {}
        # UTC and fixed-offset zones need no lookups at all.
        self.fixed: int | None = 0 if tz is UTC else None

    def bucket_offset(self, bucket: int) -> int:
        off = self.cache.get(bucket)
        if off is None:
            if len(self.cache) > _CACHE_MAX:
                self.cache.clear()
            d = datetime.fromtimestamp(bucket * (BUCKET_US // 1_000_000), self.tz)
            off = int(d.utcoffset().total_seconds())  # type: ignore[union-attr]
            self.cache[bucket] = off
        return off

    def offset(self, t_us: int) -> int:
        if self.fixed is not None:
            return self.fixed
        return self.bucket_offset(t_us // BUCKET_US)

    def next_change(self, start_us: int, end_us: int) -> int | None:
        """The first instant in (start, end) where the offset changes, if any."""
        if self.fixed is not None or end_us - start_us <= 1:
            return None
        lo = start_us // BUCKET_US
        hi = (end_us - 1) // BUCKET_US
        off = self.bucket_offset(lo)
        if self.bucket_offset(hi) == off:
            # Two changes inside one period (a period longer than months) are
            # not worth a scan; every period is short of that in practice.
            return None
        return self._first_other(lo, hi, off) * BUCKET_US


    def stable(self, t_us: int) -> tuple[int, int]:
        """(offset at t, the first instant after t where it may change).

        Looks a week ahead: two offset changes are never that close, so one
        comparison usually settles it; otherwise a binary search over buckets
        finds the change.
        """
        if self.fixed is not None:
            return self.fixed, 1 << 62
        lo = t_us // BUCKET_US
        got = self.spans.get(lo)
        if got is not None:
            return got
        got = self.spans[lo] = self._stable(lo)
        return got

    def _stable(self, lo: int) -> tuple[int, int]:
        if len(self.spans) > _CACHE_MAX:
            self.spans.clear()
        off = self.bucket_offset(lo)
        hi = lo + _WEEK_BUCKETS
        if self.bucket_offset(hi) == off:
            return off, hi * BUCKET_US
        return off, self._first_other(lo, hi, off) * BUCKET_US

    def _first_other(self, lo: int, hi: int, off: int) -> int:
        """The first bucket after `lo` whose offset is not `off`, given that
        `lo` has it and `hi` does not (binary search)."""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.bucket_offset(mid) == off:
                lo = mid
            else:
                hi = mid
        return hi


_WEEK_BUCKETS = 7 * 96
_caches: dict[object, OffsetCache] = {}


def offsets_for(tz: tzinfo) -> OffsetCache:
    key = getattr(tz, "key", None) or tz
    cache = _caches.get(key)
    if cache is None:
        if len(_caches) > 1000:
            _caches.clear()
        cache = _caches[key] = OffsetCache(tz)
    return cache
