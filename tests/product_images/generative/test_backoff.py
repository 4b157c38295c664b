"""HTTP backoff: the delays and the attempt loop (call_with_backoff), without a server."""

from __future__ import annotations

import math
import random

import pytest

from product_images.errors import BadRequestError, UpstreamServerError
from product_images.generative.backoff import backoff_delay, call_with_backoff
from product_images.generative.base import Attempt, AttemptHooks


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10, 5000])
def test_backoff_doubles_with_jitter_and_stays_under_the_cap(attempt):
    ceiling = min(8.0, 0.5 * 2 ** min(attempt - 1, 60))
    rng = random.Random(attempt)
    for _ in range(50):
        equal = backoff_delay(attempt, 0.5, 8.0, rng)
        assert ceiling / 2 <= equal <= ceiling
        full = backoff_delay(attempt, 0.5, 8.0, rng, jitter="full")
        assert 0 <= full <= ceiling
    assert backoff_delay(attempt, 0.5, 8.0, jitter="none") == ceiling
    assert backoff_delay(attempt, 0.0, 8.0) == 0.0


def test_call_with_backoff_retries_only_retryable_errors():
    sleeps: list[float] = []
    attempts: list[Attempt] = []
    answers: list[Exception | str] = [UpstreamServerError("down", 503), "done"]

    def attempt(info):
        info.http_status = 200
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    hooks = AttemptHooks(after=attempts.append)
    value = call_with_backoff(
        attempt, backend="x", model="m", hooks=hooks, base_delay=1.0, sleep=sleeps.append
    )
    assert value == ("done", 2)
    assert [a.outcome for a in attempts] == ["upstream_error", "ok"]
    assert 0.5 <= sleeps[0] <= 1.0

    def permanent(info):
        raise BadRequestError("no")

    with pytest.raises(BadRequestError):
        call_with_backoff(permanent, backend="x", model="m", sleep=sleeps.append)
    assert len(sleeps) == 1
    assert math.isclose(sum(sleeps), sleeps[0])
