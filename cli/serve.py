"""`product-images serve`: register the deployments and run their flows in this process.

Needs a Prefect server that outlives this process (`prefect server start`): with the
temporary server Prefect starts when PREFECT_API_URL is unset, schedules, events and the UI
would vanish with it.
"""

from __future__ import annotations

import click

from product_images.settings import get_settings

__all__ = ["POLL_SECONDS", "serve"]

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
    help="Most flow runs at once (each is a Python process of ~200 MB); default: no limit.",
)
def serve(limit: int | None) -> None:
    """Serve process-product, catalog-refresh and upload-sensor until Ctrl-C.

    The deployments are paused when this stops and resumed when it starts again; uploads
    made in between are picked up by the first look of the sensor.
    """
    if not _api_url():
        raise click.ClickException(_NO_API)
    from prefect import serve as prefect_serve

    from flows.deployments import deployments
    from tasks.limits import ensure_concurrency_limits

    ensure_concurrency_limits(get_settings())  # the generative backends' global limits
    prefect_serve(*deployments(get_settings()), limit=limit, query_seconds=_poll_seconds())


if __name__ == "__main__":  # python -m cli.serve, until `serve` is registered in cli.main
    serve()
