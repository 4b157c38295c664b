"""`product-images`: run, batch, check, specs, models, generative-models, demo, settings."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from product_images.allocator import bound_arenas
from product_images.cli.engine import resolve_engine, run_catalog, run_one
from product_images.cli.generative_models import generative_models
from product_images.cli.local_s3 import local_s3, upload
from product_images.cli.models import models, say_if_classical
from product_images.cli.serve import deploy, serve
from product_images.errors import ProductImagesError
from product_images.manifest import ProductResult
from product_images.settings import FLAT_NAMES, GROUPS, Settings, get_settings, variable_names
from product_images.wiring import Wiring, wire

__all__ = ["main"]


def _settings(**overrides: Any) -> Settings:
    """The settings with the command's options applied, validated like the environment."""
    chosen = {k: v for k, v in overrides.items() if v is not None}
    try:
        return get_settings().with_overrides(**chosen)
    except ValidationError as error:
        problems = [f"--{e['loc'][-1]}".replace("_", "-") + f": {e['msg']}" for e in error.errors()]
        raise click.UsageError("; ".join(problems)) from None


def _platform_list(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


_store_option = click.option(
    "--store", help="Local folder or s3://bucket/prefix (default: setting)."
)
_platforms_option = click.option(
    "--platforms", help="Comma-separated platforms, e.g. amazon,shopify."
)
_backend_option = click.option(
    "--backend",
    type=click.Choice(["auto", "local", "gemini", "openai"]),
    default=None,
    help="Backend for generated masters (default: setting; auto = Gemini when GEMINI_API_KEY "
    "is set).",
)
_budget_option = click.option(
    "--budget-usd",
    type=float,
    default=None,
    help="Spending cap for paid calls in this run; products past it are skipped, not failed.",
)
_force_option = click.option(
    "--force", is_flag=True, help="Redo products even when nothing they depend on changed."
)
_tag_option = click.option("--tag", default="", help="Catalog tag recorded in the cost ledger.")
_engine_option = click.option(
    "--engine",
    type=click.Choice(["auto", "prefect", "inline"]),
    default=None,
    help="prefect: run the flows; inline: same steps in-process; auto: prefect when "
    "PREFECT_API_URL is set.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Product photos in; white, scene and detail images for every marketplace out."""
    bound_arenas()  # before any command starts its threads (product_images.allocator)


def _echo_result(result: ProductResult, store: str) -> None:
    if result.status == "unchanged":
        click.echo(f"unchanged {result.sku}: outputs are current (use --force to redo)")
        return
    if result.status != "done":
        label = {"skipped": "SKIPPED", "deferred": "DEFERRED"}.get(result.status, "FAILED")
        click.echo(f"{label} {result.sku}: [{result.reason}] {result.message}", err=True)
        return
    reasons = "; ".join(result.review_reasons) or "see the manifest"
    review = f"  NEEDS REVIEW: {reasons}" if result.needs_review else ""
    where = f"{store.rstrip('/')}/{result.manifest_key}"
    cost = f", {result.paid_calls} paid calls ${result.cost_usd:.4f}" if result.paid_calls else ""
    click.echo(f"done {result.sku}: {result.outputs} images{cost}, manifest {where}{review}")
    if result.message:
        click.echo(f"  {result.message}")


@main.command()
@click.argument("photo")
@click.option("--sku", required=True, help="The product's SKU (its folder in the store).")
@_store_option
@_platforms_option
@_engine_option
@_backend_option
@_budget_option
@_tag_option
@click.option("--name", default="", help="Product name (fills the prompt templates).")
@click.option("--category", default="", help="Product category.")
@click.option("--scene-hint", default="", help="Where a generated scene is set.")
@_force_option
def run(
    photo: str,
    sku: str,
    store: str | None,
    platforms: str | None,
    engine: str | None,
    backend: str | None,
    budget_usd: float | None,
    tag: str,
    name: str,
    category: str,
    scene_hint: str,
    force: bool,
) -> None:
    """Make one product from PHOTO (a path or s3:// URL); an unchanged product is skipped."""
    from product_images.request import ProductRequest

    settings = _settings(
        store=store,
        platforms=_platform_list(platforms),
        engine=engine,
        backend=backend,
        budget_usd=budget_usd,
    )
    request = ProductRequest(
        sku=sku,
        source=photo,
        platforms=settings.imaging.platforms,
        backend=settings.generation.backend,
        run_id=uuid.uuid4().hex,
        tag=tag,
        budget_usd=settings.generation.budget_usd,
        name=name,
        category=category,
        scene_hint=scene_hint,
        force=force,
    )
    engine_name = resolve_engine(settings.running.engine)
    say_if_classical(settings)
    result = _guarded(lambda: run_one(request, settings, engine_name))
    _echo_result(result, settings.store.url)
    sys.exit({"done": 0, "unchanged": 0, "skipped": 3}.get(result.status, 1))


def _guarded(call: Any) -> Any:
    """Run-level errors (bad spec, store down) end the command with one clear line."""
    try:
        return call()
    except ProductImagesError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@main.command()
@click.argument("catalog")
@_store_option
@_platforms_option
@_engine_option
@_backend_option
@_budget_option
@_tag_option
@click.option("--concurrency", type=int, help="Products at once (default: setting).")
@_force_option
@click.option(
    "--batch-mode",
    is_flag=True,
    help="Make the generations with the Gemini Batch API first (half price, slower); what "
    "it cannot make falls back to normal calls.",
)
def batch(
    catalog: str,
    store: str | None,
    platforms: str | None,
    engine: str | None,
    backend: str | None,
    budget_usd: float | None,
    tag: str,
    concurrency: int | None,
    force: bool,
    batch_mode: bool,
) -> None:
    """Make every product of CATALOG: a CSV/JSON file, a folder, or an s3:// prefix.

    CSV/JSON columns: sku, source (required); platforms, name, category, brand_style,
    scene_hint, backend, tag (optional, per row).
    """
    settings = _settings(
        store=store,
        platforms=_platform_list(platforms),
        engine=engine,
        concurrency=concurrency,
        backend=backend,
        budget_usd=budget_usd,
    )
    say_if_classical(settings)
    summary = _guarded(lambda: _run_catalog(catalog, settings, tag, force, batch_mode))
    for line in summary.lines():
        click.echo(line, err=line.startswith(("FAILED", "DEFERRED")))
    sys.exit(1 if summary.failed or summary.deferred else 0)


def _run_catalog(
    catalog: str, settings: Settings, tag: str = "", force: bool = False, batch_mode: bool = False
) -> Any:
    from product_images.catalog import load_catalog
    from product_images.summary import CatalogSummary

    if resolve_engine(settings.running.engine) == "prefect":
        from product_images.flows.process_catalog import catalog_flow

        return catalog_flow(settings.running.dask_address, settings.running.concurrency)(
            catalog=catalog,
            platforms=settings.imaging.platforms,
            store=settings.store.url,
            backend=settings.generation.backend,
            budget_usd=settings.generation.budget_usd,
            tag=tag,
            force=force,
            batch_mode=batch_mode,
        )
    loaded = load_catalog(
        catalog,
        settings.imaging.platforms,
        run_id=uuid.uuid4().hex,
        tag=tag,
        budget_usd=settings.generation.budget_usd,
        backend=settings.generation.backend,
        force=force,
    )
    wiring = wire(settings)  # the composition root of this run
    if batch_mode:
        _prefill(loaded.requests, wiring)
    with _progress(len(loaded.requests)) as advance:
        results = run_catalog(loaded, wiring, advance)
    return CatalogSummary(results=results)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[ProductResult], None]]:
    """A bar on a terminal; elsewhere (logs, CI, pipes) one plain line per finished product."""
    if sys.stderr.isatty():
        with click.progressbar(length=total, label="products", file=sys.stderr) as bar:
            yield lambda _: bar.update(1)
        return
    done = 0

    def line(result: ProductResult) -> None:
        nonlocal done
        done += 1
        click.echo(f"[{done}/{total}] {result.sku} {result.status}", err=True)

    yield line


def _prefill(requests: list[Any], wiring: Wiring) -> None:
    from product_images.batch_prefill import prefill_refresh

    report = prefill_refresh(requests, wiring)
    click.echo(
        f"batch: {report.submitted} submitted, {report.made} made, ${report.cost_usd:.4f}", err=True
    )
    for line in report.left_for_sync:
        click.echo(f"  left for normal calls: {line}", err=True)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--platform", required=True, help="Platform whose rules apply.")
@click.option(
    "--slot", help="Slot name (default: the file's name if it is a slot, else the first)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(file: Path, platform: str, slot: str | None, as_json: bool) -> None:
    """Check FILE against a marketplace slot's rules, rule by rule."""
    from product_images.imaging.check import check_image
    from product_images.specs import load_specs, select_platforms

    spec = _guarded(lambda: select_platforms(load_specs(get_settings().spec_dirs()), [platform])[0])
    names = [s.name for s in spec.slots]
    chosen = _guarded(lambda: spec.slot(slot or (file.stem if file.stem in names else names[0])))
    results = _guarded(lambda: check_image(file.read_bytes(), chosen, str(file)))
    passed = all(r.passed for r in results)
    if as_json:
        payload = {
            "file": str(file),
            "platform": platform,
            "slot": chosen.name,
            "passed": passed,
            "checks": [r.model_dump() for r in results],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(f"{file} against {platform}/{chosen.name}:")
        for r in results:
            mark = "PASS" if r.passed else "FAIL"
            click.echo(f"  {mark}  {r.rule:17s} {r.measured}  (expected {r.expected})")
    sys.exit(0 if passed else 1)


main.add_command(models)
main.add_command(generative_models)


@main.group()
def specs() -> None:
    """List, show and validate marketplace spec files."""


@specs.command("list")
def specs_list() -> None:
    """Every platform and its slots."""
    from product_images.specs import load_specs

    for spec in _guarded(lambda: load_specs(get_settings().spec_dirs())).values():
        slots = ", ".join(
            f"{s.name}({s.variant} {'x'.join(map(str, s.target_size()))})" for s in spec.slots
        )
        click.echo(f"{spec.name:16s} {spec.title:24s} {slots}")


@specs.command("show")
@click.argument("platform")
def specs_show(platform: str) -> None:
    """One platform's full rules as JSON."""
    from product_images.specs import load_specs, select_platforms

    spec = _guarded(lambda: select_platforms(load_specs(get_settings().spec_dirs()), [platform])[0])
    click.echo(spec.model_dump_json(indent=2))


@specs.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def specs_validate(paths: tuple[Path, ...]) -> None:
    """Validate spec files (default: the built-in and configured directories)."""
    from product_images.errors import SpecError
    from product_images.specs import load_spec_file

    files = [
        p
        for path in (paths or tuple(get_settings().spec_dirs()))
        for p in (sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    ]
    errors = 0
    for file in files:
        try:
            spec = load_spec_file(file)
            click.echo(f"ok     {file.name}: {len(spec.slots)} slots")
        except SpecError as error:
            errors += 1
            click.echo(f"error  {error}", err=True)
    sys.exit(1 if errors else 0)


#: The last outcomes `failed` lists and `retry` runs again.
_TO_RETRY = ("failed", "deferred")


@main.command()
@_store_option
def failed(store: str | None) -> None:
    """Products whose last run failed or was deferred, with the reason (exit 1 if any)."""
    from product_images.status import last_statuses
    from product_images.store import open_store

    settings = _settings(store=store)
    statuses = _guarded(lambda: last_statuses(open_store(settings.store.url), _TO_RETRY))
    for status in statuses:
        result = status.result
        click.echo(
            f"{result.sku}\t{status.time:%Y-%m-%d %H:%M}\t{result.status}\t"
            f"[{result.reason}] {result.message}"
        )
    deferred = sum(s.result.status == "deferred" for s in statuses)
    click.echo(f"{len(statuses) - deferred} failed product(s), {deferred} deferred", err=True)
    sys.exit(1 if statuses else 0)


def _retryable(statuses: list[Any], everything: bool) -> list[Any]:
    """Deferred products and failures a rerun can fix (an outage); all of them with
    `everything`. Prints what is left out and why."""
    from product_images.errors import transient_reasons

    transient = transient_reasons()
    chosen = []
    for status in statuses:
        result = status.result
        if everything or result.status == "deferred" or result.reason in transient:
            chosen.append(status)
        else:
            click.echo(f"not retried {result.sku}: [{result.reason}] needs a fix first", err=True)
    return chosen


@main.command()
@_store_option
@_engine_option
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also products that failed for their input (corrupt photo, no product found...).",
)
def retry(store: str | None, engine: str | None, everything: bool) -> None:
    """Run again the products whose last run was deferred or failed for an outage."""
    from product_images.catalog import Catalog
    from product_images.status import last_statuses
    from product_images.store import open_store
    from product_images.summary import CatalogSummary

    settings = _settings(store=store, engine=engine)
    statuses = _guarded(lambda: last_statuses(open_store(settings.store.url), _TO_RETRY))
    # exactly what was asked last time (so its generations come from the cache), made again,
    # as a run of its own (with its own budget)
    run_id = uuid.uuid4().hex
    requests = [
        s.request.model_copy(update={"force": True, "run_id": run_id})
        for s in _retryable(statuses, everything)
    ]
    if resolve_engine(settings.running.engine) == "prefect":
        results = [run_one(r, settings, "prefect") for r in requests]
    else:
        results = run_catalog(Catalog(requests=requests), wire(settings), lambda _: None)
    summary = CatalogSummary(results=results)
    for line in summary.lines():
        click.echo(line, err=line.startswith(("FAILED", "DEFERRED")))
    sys.exit(1 if summary.failed or summary.deferred else 0)


@main.command()
@_store_option
@click.option("--by", type=click.Choice(["day", "tag", "model"]), default="day", show_default=True)
def costs(store: str | None, by: str) -> None:
    """Summarise the cost ledger of a store: calls and USD per day, catalog tag or model."""
    from product_images.generative.ledger import Ledger, summarise
    from product_images.store import open_store

    settings = _settings(store=store)
    entries = _guarded(lambda: Ledger(open_store(settings.store.url)).entries())
    total_calls, total_usd = 0, 0.0
    for label, (calls, usd) in summarise(entries, by).items():
        click.echo(f"{label:24s} {calls:6d} calls  ${usd:10.4f}")
        total_calls, total_usd = total_calls + calls, total_usd + usd
    click.echo(f"{'total':24s} {total_calls:6d} calls  ${total_usd:10.4f}")


@main.command("settings")
def show_settings() -> None:
    """Every setting, by group, with the variable it is read from, its value and description."""
    current = get_settings()
    for group, model in GROUPS.items():
        click.echo(f"[{group}] {model.__doc__}")
        for flat, (where, name) in FLAT_NAMES.items():
            if where == group:
                value = getattr(getattr(current, group), name)
                description = model.model_fields[name].description
                click.echo(f"{variable_names(flat)[0]} = {value!r}\n    {description}")


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for the sample photos, the store and the sheet.",
)
@click.option("--count", type=int, default=8, show_default=True, help="Sample products to draw.")
@_platforms_option
def demo(out_dir: Path, count: int, platforms: str | None) -> None:
    """Draw a sample catalog, run it with the local backend, write an HTML contact sheet."""
    from product_images.demo import make_sample_catalog, write_contact_sheet
    from product_images.manifest import Manifest
    from product_images.store import open_store

    settings = _settings(
        store=str(out_dir / "store"),
        engine="inline",
        backend="local",  # the demo is offline by design, whatever keys are set
        platforms=_platform_list(platforms) or ["amazon", "shopify", "instagram"],
    )
    catalog = make_sample_catalog(out_dir / "samples", count)
    click.echo(f"drew {count} sample products into {catalog.parent}")
    summary = _guarded(lambda: _run_catalog(str(catalog), settings))
    for line in summary.lines():
        click.echo(line)
    store = open_store(settings.store.url)
    manifests = [
        Manifest.model_validate_json(store.get(r.manifest_key))
        for r in summary.results
        if r.manifest_key
    ]
    sheet = write_contact_sheet(store, manifests, out_dir / "index.html")
    click.echo(f"contact sheet: {sheet.resolve()}  (open it in a browser)")
    sys.exit(1 if summary.failed else 0)


@main.command()
@_store_option
@click.option("--apply", is_flag=True, help="Delete the orphans (default: only list them).")
@click.option(
    "--grace",
    type=float,
    help="Leave orphans younger than this many seconds (default: setting gc_grace_seconds).",
)
def gc(store: str | None, apply: bool, grace: float | None) -> None:
    """Find objects of crashed or superseded runs that no manifest lists; a dry run by default."""
    from product_images.gc import collect_garbage
    from product_images.store import open_store

    settings = _settings(store=store)
    grace = settings.store.gc_grace_seconds if grace is None else grace
    report = _guarded(lambda: collect_garbage(open_store(settings.store.url), grace, apply))
    for info in report.orphans:
        click.echo(f"{'removed' if apply else 'orphan'}\t{info.size}\t{info.key}")
    for key in report.unreadable_manifests:
        click.echo(f"skipped (unreadable manifest): {key}", err=True)
    verb = "removed" if apply else "found (dry run: --apply deletes them)"
    click.echo(
        f"{len(report.orphans)} orphan(s), {report.bytes} bytes {verb}; "
        f"{report.kept_young} younger than {grace:g}s kept",
        err=True,
    )


@main.command()
@_store_option
def verify(store: str | None) -> None:
    """Check that every manifest's objects exist and match their checksums (exit 1 if not)."""
    from product_images.gc import verify_published
    from product_images.store import open_store

    settings = _settings(store=store)
    problems = _guarded(lambda: verify_published(open_store(settings.store.url)))
    for problem in problems:
        click.echo(problem)
    click.echo(f"{len(problems)} problem(s) in {settings.store.url}", err=True)
    sys.exit(1 if problems else 0)


main.add_command(serve)
main.add_command(deploy)
main.add_command(local_s3)
main.add_command(upload)
