"""The clock (the single source of time, with travel for tests) and prefixed, time-sortable ids."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app import clock
from app.db import is_id, new_id


class TestClock:
    def test_now_is_utc_and_aware(self):
        now = clock.now()
        assert now.tzinfo is not None
        assert now.utcoffset() == timedelta(0)
        assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)

    def test_travel_freezes_now_and_restores_it(self):
        target = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
        with clock.travel(target):
            assert clock.now() == target
            assert clock.now() == target  # frozen: does not move by itself
        assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)

    def test_travel_converts_to_utc(self):
        berlin = timezone(timedelta(hours=1))
        with clock.travel(datetime(2030, 1, 1, 1, 0, tzinfo=berlin)):
            assert clock.now() == datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
            assert clock.now().utcoffset() == timedelta(0)

    def test_travel_nests_and_unwinds(self):
        outer, inner = datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 6, 1, tzinfo=UTC)
        with clock.travel(outer):
            with clock.travel(inner):
                assert clock.now() == inner
            assert clock.now() == outer

    def test_travel_restores_after_an_exception(self):
        with pytest.raises(RuntimeError), clock.travel(datetime(2030, 1, 1, tzinfo=UTC)):
            raise RuntimeError("boom")
        assert clock.now().year == datetime.now(UTC).year

    def test_travel_refuses_naive_datetimes(self):
        with pytest.raises(ValueError, match="timezone-aware"), clock.travel(datetime(2030, 1, 1)):
            pass

    def test_advance_moves_a_frozen_clock(self):
        start = datetime(2030, 1, 1, tzinfo=UTC)
        with clock.travel(start):
            clock.advance(timedelta(minutes=31))
            assert clock.now() == start + timedelta(minutes=31)
            clock.advance(timedelta(hours=12))
            assert clock.now() == start + timedelta(hours=12, minutes=31)

    def test_advance_outside_travel_is_an_error(self):
        with pytest.raises(RuntimeError, match="travel"):
            clock.advance(timedelta(seconds=1))


class TestIds:
    def test_prefix_and_shape(self):
        value = new_id("ten")
        assert value.startswith("ten_")
        assert len(value) == len("ten_") + 26
        assert value == value.lower()
        assert is_id(value, "ten")

    def test_is_id_rejects_other_prefixes_and_garbage(self):
        value = new_id("key")
        assert not is_id(value, "ten")
        assert not is_id(value.upper(), "key")
        assert not is_id(value[:-1], "key")
        assert not is_id(value + "0", "key")
        assert not is_id("key_" + "i" * 26, "key")  # Crockford base32 has no i, l, o, u
        assert not is_id(None, "key")
        assert not is_id(12, "key")
        assert not is_id("", "key")

    def test_ids_made_later_sort_after_earlier_ones_across_travel(self):
        moments = [datetime(2021, 3, 1, tzinfo=UTC), datetime(2024, 7, 9, 8, 0, 0, 1000, tzinfo=UTC),
                   datetime(2024, 7, 9, 8, 0, 0, 2000, tzinfo=UTC), datetime(2029, 12, 31, 23, 59, tzinfo=UTC)]
        made = []
        # Made out of order on purpose: sorting the ids must give time order.
        for moment in (moments[2], moments[0], moments[3], moments[1]):
            with clock.travel(moment):
                made.append((moment, new_id("evt")))
        by_id = [moment for moment, _ in sorted(made, key=lambda pair: pair[1])]
        assert by_id == moments

    def test_ids_are_unique_within_one_millisecond(self):
        with clock.travel(datetime(2030, 1, 1, tzinfo=UTC)):
            ids = {new_id("aud") for _ in range(1000)}
        assert len(ids) == 1000
