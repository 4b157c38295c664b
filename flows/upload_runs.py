"""`serve`'s fast path: each new upload becomes a run of the process-product deployment that
runs in serve's own process.

Through the event trigger and the runner, an upload's run started 3.8 s (median, loaded
2-core machine) after the trigger had created it: the runner starts a fresh Python process
per run, which imports Prefect, NumPy, OpenCV... before the first pixel (bench/
upload_latency.py). Here the run is created from the deployment (it shows under it in the
UI, with its logs and artifacts) in the Pending state, which no runner picks up, and executed
at once in a thread of this process, where everything is imported already.

No duplicate runs: the run's idempotency key is the upload's, so announcing the same upload
twice (a crash before the cursor was saved) returns the existing run, which is executed only
while it is still Pending; the processed marker (`claim_upload`) guards the rest. Runs left
Pending by a crash are picked up by `resume` when serve starts again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.flow_engine import run_flow
from prefect.logging import get_logger
from prefect.states import Pending

from product_images.uploads import Upload

__all__ = ["UPLOAD_TAG", "UploadRuns", "upload_parameters"]

#: Tag of the runs made this way (the UI can filter on it).
UPLOAD_TAG = "upload"


def upload_parameters(store_url: str, upload: Upload) -> dict[str, Any]:
    """The process-product parameters of an upload: what the event trigger would pass."""
    return {
        "request": {"sku": upload.sku, "source": upload.source_url},
        "idempotency_key": upload.idempotency_key,
        "store": store_url,
    }


class UploadRuns:
    """Creates and executes upload runs of one deployment, `workers` at a time."""

    def __init__(self, deployment: str, flow: Flow[..., Any], workers: int) -> None:
        self.deployment, self.flow = deployment, flow
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload-run")
        self._logger = get_logger("upload-runs")
        self._deployment_id: UUID | None = None

    def submit(self, store_url: str, uploads: list[Upload]) -> None:
        """Create a run per upload (returns once the API has them all), then execute them."""
        with get_client(sync_client=True) as client:
            runs = [self._create(client, store_url, upload) for upload in uploads]
        for run in runs:
            if run.state_type == StateType.PENDING:
                self._pool.submit(self._execute, run)

    def resume(self) -> None:
        """Execute the upload runs a previous serve created but did not start."""
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[self._id(client)])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING])),
                    tags=FlowRunFilterTags(all_=[UPLOAD_TAG]),
                ),
            )
        for run in runs:
            self._logger.info("resuming upload run %s", run.name)
            self._pool.submit(self._execute, run)

    def close(self) -> None:
        """Wait for the runs in progress."""
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _id(self, client: Any) -> UUID:
        if self._deployment_id is None:
            self._deployment_id = client.read_deployment_by_name(self.deployment).id
        return self._deployment_id

    def _create(self, client: Any, store_url: str, upload: Upload) -> FlowRun:
        run: FlowRun = client.create_flow_run_from_deployment(
            self._id(client),
            parameters=upload_parameters(store_url, upload),
            state=Pending(message="upload: started by serve in its own process"),
            tags=[UPLOAD_TAG],
            idempotency_key=f"upload:{store_url}#{upload.idempotency_key}",
        )
        return run

    def _execute(self, run: FlowRun) -> None:
        try:
            run_flow(self.flow, flow_run=run, parameters=run.parameters)
        except BaseException as error:  # the run's own log and state say the rest
            self._logger.warning("upload run %s ended with %s", run.name, type(error).__name__)
