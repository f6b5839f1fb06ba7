"""VirtualClock and SystemClock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wftest import Clock, SystemClock, VirtualClock


def test_virtual_clock_starts_at_2024_01_01_by_default() -> None:
    assert VirtualClock().now() == datetime(2024, 1, 1)


def test_virtual_clock_starts_where_told() -> None:
    assert VirtualClock(datetime(2030, 5, 6, 7, 8)).now() == datetime(2030, 5, 6, 7, 8)


def test_virtual_clock_keeps_an_aware_start_as_naive_utc() -> None:
    start = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))

    assert VirtualClock(start).now() == datetime(2024, 1, 1, 0, 0)


def test_virtual_clock_does_not_move_by_itself() -> None:
    clock = VirtualClock()

    assert clock.now() == clock.now() == datetime(2024, 1, 1)


def test_advance_moves_forward_and_returns_the_new_time() -> None:
    clock = VirtualClock()

    assert clock.advance(timedelta(hours=1)) == datetime(2024, 1, 1, 1)
    assert clock.now() == datetime(2024, 1, 1, 1)


def test_advance_by_zero_is_allowed() -> None:
    clock = VirtualClock()

    assert clock.advance(timedelta(0)) == datetime(2024, 1, 1)


def test_advance_by_a_negative_delta_is_an_error() -> None:
    clock = VirtualClock()

    with pytest.raises(ValueError, match="time can't go backwards"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == datetime(2024, 1, 1)


def test_jump_to_moves_to_a_later_time() -> None:
    clock = VirtualClock()

    assert clock.jump_to(datetime(2024, 2, 1)) == datetime(2024, 2, 1)
    assert clock.now() == datetime(2024, 2, 1)


def test_jump_to_the_current_time_is_allowed() -> None:
    clock = VirtualClock()

    assert clock.jump_to(datetime(2024, 1, 1)) == datetime(2024, 1, 1)


def test_jump_to_an_earlier_time_is_an_error_naming_both_times() -> None:
    clock = VirtualClock(datetime(2024, 1, 2))

    with pytest.raises(ValueError, match=r"time can't go backwards.*2024-01-01T00:00:00.*2024-01-02T00:00:00"):
        clock.jump_to(datetime(2024, 1, 1))
    assert clock.now() == datetime(2024, 1, 2)


def test_jump_to_accepts_an_aware_time() -> None:
    clock = VirtualClock()

    clock.jump_to(datetime(2024, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=3))))

    assert clock.now() == datetime(2024, 1, 1, 2, 0)


def test_virtual_clock_is_virtual() -> None:
    assert VirtualClock().is_virtual is True


def test_system_clock_is_not_virtual() -> None:
    assert SystemClock().is_virtual is False


def test_system_clock_reads_naive_utc_wall_time() -> None:
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    now = SystemClock().now()
    after = datetime.now(timezone.utc).replace(tzinfo=None)

    assert now.tzinfo is None
    assert before <= now <= after


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(SystemClock(), Clock)
