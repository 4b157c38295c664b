"""`product-images serve`: register the deployments and run their flows in this process.

Needs a Prefect server that outlives this process (`prefect server start`): with the
temporary server Prefect starts when PREFECT_API_URL is unset, schedules, events and the UI
would vanish with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from product_images.settings import Settings, get_settings

if TYPE_CHECKING:
    from product_images.flows.upload_runs import UploadRuns
    from product_images.flows.upload_sensor import UploadWatcher

__all__ = ["POLL_SECONDS", "deploy", "serve"]

#: How often the runner asks the server for runs to start, unless PREFECT_RUNNER_POLL_FREQUENCY
#: is set. Prefect's default (10 s) is made for many runners on a big server; here it would add
#: up to 10 s to every upload (measured: 2-8 s at 10 s, 1-2 s at 1 s from event to flow start),
#: while one query a second costs a single server next to nothing.
POLL_SECONDS = 1.0

_NO_API = """\
PREFECT_API_URL is not set, so there is no Prefect server to serve deployments to.
Start one and point this shell at it:

    prefect server start          # in another terminal; UI at http://127.0.0.1:4200
    export PREFECT_API_URL=http://127.0.0.1:4200/api
"""


def _api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def _poll_seconds() -> float:
    """PREFECT_RUNNER_POLL_FREQUENCY when set (environment, profile or prefect.toml), else
    POLL_SECONDS."""
    from prefect.settings import get_current_settings

    runner = get_current_settings().runner
    return runner.poll_frequency if "poll_frequency" in runner.model_fields_set else POLL_SECONDS


@click.command()
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Most flow runs at once: form and scheduled runs (a Python process of ~200 MB each; "
    "default: no limit), and uploads, which run in this process (default: the concurrency "
    "setting).",
)
@click.option(
    "--take-over",
    is_flag=True,
    help="Serve the deployments even when workers own them (moves them off their pool).",
)
def serve(limit: int | None, take_over: bool) -> None:
    """Serve process-product and catalog-refresh, and watch for uploads, until Ctrl-C.

    Uploads are looked for under <store>/<incoming prefix> every sensor_interval_seconds,
    in this process. The deployments are paused when this stops and resumed when it starts
    again; uploads made in between are picked up by the first look.
    """
    if not _api_url():
        raise click.ClickException(_NO_API)
    from prefect import serve as prefect_serve

    from product_images.flows.deployments import deployments
    from product_images.flows.process_product import process_product
    from product_images.flows.upload_runs import UploadRuns
    from product_images.tasks.global_limits import ensure_concurrency_limits

    settings = get_settings()
    served = deployments(settings)
    _claim([f"{d.flow_name}/{d.name}" for d in served], None, take_over)
    ensure_concurrency_limits(settings)  # the generative backends' global limits
    product = f"{served[0].flow_name}/{served[0].name}"
    runs = UploadRuns(product, process_product, limit or settings.running.concurrency)
    watcher = _watcher(settings, runs)
    watcher.start()
    try:
        prefect_serve(*served, limit=limit, query_seconds=_poll_seconds())
    finally:
        watcher.stop()
        runs.close()


def _watcher(settings: Settings, runs: UploadRuns) -> UploadWatcher:
    """The upload watcher, announced with the store's layout. It starts looking once the
    process-product deployment is served (first resuming upload runs a crash left behind),
    and hands each upload to `runs`."""
    from product_images.cli.ownership import is_served
    from product_images.flows.upload_sensor import UploadWatcher, watched_location

    def ready() -> bool:
        if not is_served(runs.deployment):
            return False
        runs.resume()
        return True

    click.echo(
        _layout(
            settings.store.url, watched_location(settings.store.url, settings.store.incoming_prefix)
        )
    )
    return UploadWatcher(
        settings.store.url,
        settings.store.incoming_prefix,
        settings.serving.sensor_interval_seconds,
        ready=ready,
        announce=runs.submit,
    )


def _claim(names: list[str], pool: str | None, take_over: bool) -> None:
    """Stop with the names when registering would move deployments from the other mode;
    with `take_over`, make way instead (for serve, `pool` None: registering again without
    a pool would keep the old pool, so the pool's deployments are deleted first)."""
    from product_images.cli.ownership import (  # Prefect: serve/deploy only
        release_from_pools,
        taken_elsewhere,
    )

    if take_over and pool is None:
        for name in release_from_pools(names):
            click.echo(f"serve: took over {name} from its work pool")
    lines = [] if take_over else taken_elsewhere(names, pool)
    if lines:
        raise click.ClickException(
            "these deployments belong to the other way of running them:\n"
            + "\n".join(lines)
            + "\nRegistering would silently move them; run with --take-over if that is meant."
        )


def _layout(store: str, incoming: str) -> str:
    """The start-up line: where uploads are looked for and where products go."""
    return (
        f"serve: watching {incoming} for photos (<sku>.<ext> or <sku>/<file>); "
        f"products go to {store.rstrip('/')}/<sku>/ (manifest last)"
    )


@click.command()
@click.option("--pool", default=None, help="Work pool (default: the work_pool setting).")
@click.option(
    "--take-over",
    is_flag=True,
    help="Register even when `serve` owns the deployments (it then gets no more runs).",
)
def deploy(pool: str | None, take_over: bool) -> None:
    """Register the three deployments for workers of a work pool (instead of prefect.yaml).

    Runs import the flows from the package installed where each worker runs: no checkout,
    no path of this machine. Create the pool and its queues first (see the README).
    """
    if not _api_url():
        raise click.ClickException(_NO_API)
    from product_images.flows.deployments import deployments

    settings = get_settings().model_copy(update={"work_pool": pool} if pool else {})
    built = deployments(settings, work_pool=True)
    _claim([f"{d.flow_name}/{d.name}" for d in built], settings.serving.work_pool, take_over)
    for deployment in built:
        deployment.apply()
        click.echo(
            f"registered {deployment.flow_name}/{deployment.name} -> {settings.serving.work_pool}"
        )


if __name__ == "__main__":  # python -m product_images.cli.serve
    serve()
