"""Let go of what Prefect keeps in the flow process for a task run whose result is collected.

Prefect holds, for every task run of a flow run until the flow ends: states linked to the
result's objects (`FlowRunContext.run_results`, to infer data dependencies when a result is
passed to another task), the run's assets (`FlowRunContext.task_run_assets`) and the thread
pool's cancel event (`ThreadPoolTaskRunner._cancel_events`). That is ~4 KB per task run: a
catalog flow of 2,000 products grew by 8 MB of live objects (bench/catalog_memory.py, tracemalloc).
A catalog product's result goes into the summary, never into another task, so once it is
collected nothing of its run is needed any more.
"""

from __future__ import annotations

from uuid import UUID

from prefect.context import FlowRunContext

__all__ = ["forget_task_run"]


def forget_task_run(task_run_id: UUID) -> None:
    """Drop the flow run's bookkeeping of a finished task run (a no-op outside a flow run)."""
    context = FlowRunContext.get()
    if context is None:
        return
    links = context.run_results
    # A copy: the pool's threads link new results while this runs (dict() holds the GIL).
    for key, (state, _, _) in dict(links).items():
        if state.state_details.task_run_id == task_run_id:
            links.pop(key, None)
    context.task_run_assets.pop(task_run_id, None)
    cancel_events = getattr(context.task_runner, "_cancel_events", None)
    if isinstance(cancel_events, dict):  # ThreadPoolTaskRunner's, one Event per task run
        cancel_events.pop(task_run_id, None)
