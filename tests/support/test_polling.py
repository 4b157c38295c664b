"""wait_until: returns when ready; says what it waited for when the process dies or time is up."""

import pytest

from tests.support.polling import wait_until


def test_returns_once_ready() -> None:
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), timeout=5, interval=0)


@pytest.mark.parametrize(
    ("alive", "timeout", "message"),
    [(False, 5, "stopped while waiting: the log"), (True, 0, "not ready after 0 s: the log")],
)
def test_a_dead_process_or_the_deadline_fails_with_its_description(
    alive: bool, timeout: float, message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        wait_until(lambda: False, timeout, lambda: "the log", lambda: alive, interval=0)
