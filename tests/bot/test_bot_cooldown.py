"""The per-user cooldown."""

from __future__ import annotations

import pytest

from bot.cooldown import Cooldown, cooldown_message


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_use_per_period_per_user() -> None:
    clock = Clock()
    cd = Cooldown(5, clock=clock)
    assert cd.hit(1) == 0.0
    assert cd.hit(2) == 0.0  # another user is not affected
    clock.now += 2
    assert cd.hit(1) == pytest.approx(3.0)
    clock.now += 1
    assert cd.hit(1) == pytest.approx(2.0)  # a refused try does not restart the clock
    clock.now += 2
    assert cd.hit(1) == 0.0
    assert cd.retry_after(1) == pytest.approx(5.0)


def test_zero_disables_and_reset() -> None:
    cd = Cooldown(0)
    assert all(cd.hit(1) == 0.0 for _ in range(5))
    cd = Cooldown(10)
    cd.hit(1)
    cd.reset(1)
    assert cd.hit(1) == 0.0
    with pytest.raises(ValueError):
        Cooldown(-1)


def test_memory_is_bounded() -> None:
    clock = Clock()
    cd = Cooldown(1, clock=clock)
    for i in range(Cooldown.PRUNE_AT):
        cd.hit(i)
    clock.now += 2
    cd.hit("new")
    assert len(cd) == 1


def test_message_says_when() -> None:
    assert cooldown_message(2.2) == "You're asking a bit fast: try again in 3 s."
    assert "in 1 s" in cooldown_message(0.01)
