"""windowed: results in order, never more than the window in flight."""

import pytest

from product_images.streaming import windowed


@pytest.mark.parametrize(("items", "window"), [(10, 3), (10, 1), (2, 5), (0, 4), (7, 0)])
def test_results_come_in_order_with_at_most_the_window_in_flight(items, window):
    in_flight, peak = set(), [0]

    def submit(item):
        in_flight.add(item)
        peak[0] = max(peak[0], len(in_flight))
        return item * 10

    def collect(item, future):
        in_flight.remove(item)
        return (item, future)

    results = list(windowed(range(items), submit, collect, window))
    assert results == [(n, n * 10) for n in range(items)]
    assert peak[0] <= max(window, 1) and not in_flight


def test_nothing_is_submitted_before_the_results_ahead_of_it_are_taken():
    submitted = []
    results = windowed(range(100), lambda n: submitted.append(n) or n, lambda n, f: f, 4)
    assert next(results) == 0 and submitted == [0, 1, 2, 3]
