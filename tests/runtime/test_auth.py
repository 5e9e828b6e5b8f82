"""API keys for serve: constant-time Bearer check, per-key request and spend windows, loopback rule."""

from __future__ import annotations

import pytest

from slmkit.runtime.auth import ApiKeys, KeyLimits, is_loopback, keys_from
from slmkit.runtime.errors import SlmkitError

KEY_A, KEY_B = "a" * 20 + "-first", "b" * 20 + "-second"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_a_configured_bearer_key_authenticates() -> None:
    keys = ApiKeys([KEY_A, KEY_B])
    assert keys.authenticate(f"Bearer {KEY_A}") == 0 and keys.authenticate(f"bearer {KEY_B}") == 1
    for header in (None, "", KEY_A, f"Basic {KEY_A}", f"Bearer {KEY_A}x", f"Bearer {KEY_A[:-1]}", "Bearer ",
                   f"Bearer {KEY_A.upper()}", "Bearer \udcff"):
        assert keys.authenticate(header) is None, header


def test_keys_come_from_options_else_the_environment_and_weak_ones_are_refused() -> None:
    assert keys_from([KEY_A], {"SLMKIT_API_KEY": KEY_B}) == [KEY_A]
    assert keys_from([], {"SLMKIT_API_KEY": f" {KEY_A} ,{KEY_B},"}) == [KEY_A, KEY_B]
    assert keys_from([], {}) == []
    for weak in ("short", "x" * 20 + " y"):
        with pytest.raises(SlmkitError, match="API key 1 is not usable") as caught:
            keys_from([weak], {})
        assert weak not in str(caught.value) and weak not in (caught.value.hint or "")


def test_requests_per_minute_is_a_rolling_window_with_the_wait_until_a_slot_frees() -> None:
    clock = Clock()
    keys = ApiKeys([KEY_A, KEY_B], KeyLimits(requests_per_minute=2), clock)
    assert keys.admit(0) is None
    clock.now += 10
    assert keys.admit(0) is None
    clock.now += 5
    assert keys.admit(0) == pytest.approx(45)      # the first request leaves the window 60 s after it came
    assert keys.admit(1) is None                   # each key has its own window
    clock.now += 45
    assert keys.admit(0) is None


def test_spend_limit_blocks_until_enough_spend_ages_out() -> None:
    clock = Clock()
    keys = ApiKeys([KEY_A], KeyLimits(usd_per_day=1.0), clock)
    assert keys.admit(0) is None
    keys.charge(0, 0.7)
    clock.now += 3600
    assert keys.admit(0) is None                   # 0.7 < 1.0: admitted, and this one costs 0.5
    keys.charge(0, 0.5)
    assert keys.spent(0) == pytest.approx(1.2)
    wait = keys.admit(0)
    assert wait == pytest.approx(24 * 3600 - 3600)  # once the 0.7 ages out, 0.5 < 1.0
    clock.now += wait
    assert keys.admit(0) is None and keys.spent(0) == pytest.approx(0.5)


def test_bad_limits_and_no_keys_are_refused() -> None:
    with pytest.raises(SlmkitError, match="at least 1 request"):
        KeyLimits(requests_per_minute=0)
    with pytest.raises(SlmkitError, match="above 0 USD"):
        KeyLimits(usd_per_day=0)
    with pytest.raises(SlmkitError, match="No API key"):
        ApiKeys([])


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.5", False), ("example.com", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
