"""forget_task_run: a collected task run leaves nothing behind in the flow run's bookkeeping."""

from __future__ import annotations

from uuid import UUID

import pytest
from prefect import flow, task
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from product_images.flows.bookkeeping import forget_task_run


@task
def _pair(n: int) -> list[int]:
    return [n, n + 1000]


def _kept(context: FlowRunContext, run_id: UUID) -> int:
    """Entries the flow run still holds for the task run."""
    links = [s for s, _, _ in context.run_results.values() if s.state_details.task_run_id == run_id]
    events = getattr(context.task_runner, "_cancel_events", {})
    return len(links) + (run_id in context.task_run_assets) + (run_id in events)


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))  # type: ignore[arg-type]
def _run(forget: bool) -> list[int]:
    """Three task runs collected (and forgotten, if asked): what is kept of each."""
    kept = []
    for n in range(3):
        future = _pair.submit(n)
        assert future.result() == [n, n + 1000]
        if forget:
            forget_task_run(future.task_run_id)
        context = FlowRunContext.get()
        assert context is not None
        kept.append(_kept(context, future.task_run_id))
    return kept


@pytest.mark.parametrize(("forget", "nothing_kept"), [(True, True), (False, False)])
def test_a_forgotten_task_run_leaves_nothing_behind(forget: bool, nothing_kept: bool) -> None:
    kept = _run(forget)
    assert (kept == [0, 0, 0]) is nothing_kept


def test_outside_a_flow_run_it_is_a_no_op() -> None:
    forget_task_run(UUID(int=1))
