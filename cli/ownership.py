"""Who runs the deployments: `product-images serve` (no work pool) or workers (a pool).

Both register the same names, and registering again silently moves a deployment from one
to the other: `prefect deploy` would take serve's away (serve then gets no runs), `serve`
would take the workers' away. Our commands look first and refuse, naming the owner, unless
told to take over.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

__all__ = ["is_served", "owners", "release_from_pools", "taken_elsewhere"]


def owners(names: list[str]) -> dict[str, str | None]:
    """For each registered 'flow/deployment' name: its work pool, or None when served."""
    found: dict[str, str | None] = {}
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                found[name] = client.read_deployment_by_name(name).work_pool_name
            except ObjectNotFound:
                continue
    return found


def taken_elsewhere(names: list[str], pool: str | None) -> list[str]:
    """Lines naming the deployments registered for the other mode than `pool` (None = serve)."""
    lines = []
    for name, owner in owners(names).items():
        if owner != pool:
            where = f"work pool {owner!r} (workers)" if owner else "`product-images serve`"
            lines.append(f"  {name}: registered for {where}")
    return lines


def is_served(name: str) -> bool:
    """Whether the 'flow/deployment' is registered and a runner polls for its runs (READY):
    its triggers exist from then on."""
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return deployment.status is not None and deployment.status.value == "READY"


def release_from_pools(names: list[str]) -> list[str]:
    """Delete the deployments among `names` that belong to a work pool, so that `serve` can
    register them afresh: registering again without a pool keeps the old one. Their past
    runs stay. Returns the names deleted."""
    deleted = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if deployment.work_pool_name:
                client.delete_resource_owned_automations(f"prefect.deployment.{deployment.id}")
                client.delete_deployment(deployment.id)
                deleted.append(name)
    return deleted
