"""Deployments, the upload sensor and upload idempotency, against the session's Prefect API.

The last test serves the deployments in a subprocess (`python -m cli.serve`) and follows a
photo from the bucket to a finished flow run: upload -> sensor -> event -> automation -> run.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter
from prefect.events.schemas.events import ReceivedEvent
from prefect.settings import PREFECT_API_URL, PREFECT_RUNNER_POLL_FREQUENCY, temporary_settings

from product_images.cli.ownership import release_from_pools
from product_images.cli.serve import POLL_SECONDS, _poll_seconds, deploy, serve
from product_images.errors import InvalidSkuError
from product_images.flows.deployments import HIDDEN_REQUEST_FIELDS, deployments, refresh_catalog
from product_images.flows.process_product import process_product
from product_images.flows.upload_sensor import (
    UPLOAD_EVENT,
    emit_upload_events,
    sense_once,
    sense_uploads,
    watched_location,
)
from product_images.manifest import Manifest
from product_images.request import ProductRequest, check_sku
from product_images.settings import Settings
from product_images.specs import load_specs
from product_images.store import LocalStore, S3Store
from product_images.testing.seaweedfs import SeaweedServer
from product_images.uploads import CURSOR_KEY, UploadMarker, processed_key

ROOT = Path(__file__).resolve().parents[2]
NAMES = {
    "process-product": "process-product",
    "catalog-refresh": "refresh-catalog",
    "upload-sensor": "sense-uploads",
}
T = TypeVar("T")


def _eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture
def client() -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as prefect_client:
        yield prefect_client


def _events_for(client: SyncPrefectClient, skus: list[str]) -> list[ReceivedEvent]:
    page = client.read_events(
        EventFilter(
            event=EventNameFilter(name=[UPLOAD_EVENT]),
            any_resource=EventAnyResourceFilter(id=[f"product.{sku}" for sku in skus]),
        ),
        limit=50,
    )
    return list(page.events)


# -- what the deployments are ---------------------------------------------------------------


def test_deployments_are_built_from_the_settings() -> None:
    settings = Settings(
        refresh_cron="30 4 * * 1-5",
        refresh_timezone="Europe/Berlin",
        refresh_catalog="s3://shop/catalog.csv",
        worker_sensor_interval_seconds=45,
    )
    built = {d.name: d for d in deployments(settings)}

    # serve looks for uploads in-process: no sensor deployment, no flow run per look
    assert {name: d.flow_name for name, d in built.items()} == {
        name: flow for name, flow in NAMES.items() if name != "upload-sensor"
    }
    [cron] = built["catalog-refresh"].schedules
    assert (cron.schedule.cron, cron.schedule.timezone) == ("30 4 * * 1-5", "Europe/Berlin")
    assert built["catalog-refresh"].parameters == {"catalog": "s3://shop/catalog.csv"}
    assert built["process-product"].schedules == []
    for deployment in built.values():
        assert deployment.work_pool_name is None and deployment.work_queue_name is None

    for_workers = {d.name: d for d in deployments(settings, work_pool=True)}
    assert {name: d.flow_name for name, d in for_workers.items()} == NAMES
    [interval] = for_workers["upload-sensor"].schedules
    assert interval.schedule.interval == timedelta(seconds=45)

    [trigger] = built["process-product"].triggers
    assert trigger.expect == {UPLOAD_EVENT}
    assert trigger.match.root == {"prefect.resource.id": "product.*"}
    assert trigger.parameters is not None
    assert trigger.parameters["request"]["source"] == "{{ event.payload.source }}"


def test_the_run_form_is_the_pydantic_model() -> None:
    [product] = [d for d in deployments(Settings()) if d.name == "process-product"]
    schema = product._parameter_openapi_schema.model_dump(exclude_unset=True)

    assert schema["properties"]["request"]["$ref"] == "#/definitions/ProductRequest"
    form = schema["definitions"]["ProductRequest"]
    assert set(form["properties"]) == set(ProductRequest.model_fields) - {"run_id"}
    assert HIDDEN_REQUEST_FIELDS == ("run_id",)
    assert {"sku", "source", "platforms", "variants", "backend", "brand_style", "force"} <= set(
        form["properties"]
    )
    for name, field in form["properties"].items():
        assert field.get("description"), f"{name} has no description"
    assert form["required"] == ["sku", "source"]


def _form() -> dict[str, Any]:
    [product] = [d for d in deployments(Settings()) if d.name == "process-product"]
    return product._parameter_openapi_schema.model_dump(exclude_unset=True)


def test_the_run_form_hides_internal_parameters_and_none_toggles() -> None:
    schema = _form()
    assert set(schema["properties"]) == {"request"}  # idempotency_key, store: set by triggers
    for name, field in schema["definitions"]["ProductRequest"]["properties"].items():
        assert "anyOf" not in field, f"{name} would show Prefect's 'is type None' toggle"
    form = schema["definitions"]["ProductRequest"]["properties"]
    for name in ("variants", "backend", "budget_usd"):
        assert "default" not in form[name]  # left empty: not sent, the model's None applies
    assert ProductRequest(sku="S", source="s.jpg").backend is None


def test_the_run_form_offers_the_known_marketplaces() -> None:
    platforms = _form()["definitions"]["ProductRequest"]["properties"]["platforms"]
    assert platforms["type"] == "array" and platforms["uniqueItems"] is True
    assert platforms["items"]["enum"] == sorted(load_specs(Settings().spec_dirs()))
    assert {"amazon", "shopify", "tiktok-shop"} <= set(platforms["items"]["enum"])


@pytest.mark.parametrize(
    ("sku", "valid"),
    [
        ("SKU-1", True),
        ("a.b_c-9", True),
        ("../etc", False),
        ("a..b", False),
        ("-x", False),
        ("a/b", False),
        ("x" * 129, False),
        ("ok\n", False),
    ],
)
def test_the_run_form_checks_the_sku_with_the_cli_rule(sku: str, valid: bool) -> None:
    # What the UI and the server check (JSON Schema), and what the flow and the CLI check
    # (check_sku: a typed error for that product; see test_process_product).
    schema = _form()
    request = {"sku": sku, "source": "s3://b/p.jpg"}
    errors = list(Draft202012Validator(schema).iter_errors({"request": request}))
    assert (not errors) is valid
    if valid:
        assert check_sku(sku) == sku
    else:
        with pytest.raises(InvalidSkuError):
            check_sku(sku)


def test_a_trigger_still_passes_the_hidden_parameters() -> None:
    # The form hides them; JSON Schema lets unlisted properties through, and the flow has them.
    schema = _form()
    run = {"request": {"sku": "S", "source": "s.jpg"}, "idempotency_key": "S/etag-1", "store": "x"}
    assert not list(Draft202012Validator(schema).iter_errors(run))
    assert schema.get("additionalProperties", True) is not False


def test_work_pool_deployments_use_priority_queues() -> None:
    built = {d.name: d for d in deployments(Settings(work_pool="images"), work_pool=True)}
    assert {d.work_pool_name for d in built.values()} == {"images"}
    assert built["process-product"].work_queue_name == "uploads"
    assert built["upload-sensor"].work_queue_name == "uploads"
    assert built["catalog-refresh"].work_queue_name == "refresh"


def test_variants_are_typed_on_the_form() -> None:
    assert ProductRequest(sku="S", source="s.jpg", variants=["white"]).variants == ["white"]
    with pytest.raises(ValueError):
        ProductRequest(sku="S", source="s.jpg", variants=["sepia"])


def test_prefect_yaml_mirrors_the_deployments() -> None:
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    settings = Settings()
    built = {d.name: d for d in deployments(settings, work_pool=True)}
    entries = {entry["name"]: entry for entry in document["deployments"]}

    assert set(entries) == set(built)
    flows = {
        "process-product": process_product,
        "catalog-refresh": refresh_catalog,
        "upload-sensor": sense_uploads,
    }
    for name, entry in entries.items():
        module, _, attribute = entry["entrypoint"].partition(":")
        # the installed package, not a checkout path
        assert module.startswith("product_images.flows.")
        assert getattr(importlib.import_module(module), attribute) is flows[name]
        assert entry["work_pool"]["name"] == settings.serving.work_pool
        assert entry["work_pool"]["work_queue_name"] == built[name].work_queue_name

    [cron] = entries["catalog-refresh"]["schedules"]
    assert (cron["cron"], cron["timezone"]) == (
        settings.serving.refresh_cron,
        settings.serving.refresh_timezone,
    )
    [interval] = entries["upload-sensor"]["schedules"]
    assert interval["interval"] == settings.serving.worker_sensor_interval_seconds
    assert document["pull"] == []  # nothing of the deploying machine baked in
    [trigger] = entries["process-product"]["triggers"]
    expected = built["process-product"].triggers[0]
    assert set(trigger["expect"]) == expected.expect
    assert trigger["match"] == expected.match.root
    assert trigger["parameters"] == expected.parameters


# -- registered with the API ----------------------------------------------------------------


@pytest.fixture
def registered(client: SyncPrefectClient) -> Iterator[dict[str, uuid.UUID]]:
    """The deployments applied as `serve` applies them; deleted afterwards."""
    settings = Settings(refresh_cron="15 2 * * *", refresh_timezone="America/New_York")
    ids = {d.name: d.apply() for d in deployments(settings)}
    yield ids
    for deployment_id in ids.values():  # nothing may react to later tests' events
        with contextlib.suppress(Exception):
            client.delete_resource_owned_automations(f"prefect.deployment.{deployment_id}")
            client.delete_deployment(deployment_id)


def test_registered_deployments_read_back(
    client: SyncPrefectClient, registered: dict[str, uuid.UUID]
) -> None:
    refresh = client.read_deployment(registered["catalog-refresh"])
    [schedule] = refresh.schedules
    assert schedule.schedule.cron == "15 2 * * *"  # type: ignore[union-attr]
    assert schedule.schedule.timezone == "America/New_York"  # type: ignore[union-attr]

    product = client.read_deployment_by_name("process-product/process-product")
    assert product.id == registered["process-product"]
    form = product.parameter_openapi_schema["definitions"]["ProductRequest"]  # type: ignore[index]
    assert form["properties"]["sku"]["description"].startswith("Stock keeping unit")
    assert product.entrypoint == "product_images.flows.process_product.process_product"

    automations = client.read_automations_by_name("process-product-on-upload")
    assert len(automations) == 1
    [action] = automations[0].actions
    assert action.deployment_id == product.id  # type: ignore[union-attr]


@pytest.fixture
def process_pool(client: SyncPrefectClient) -> Iterator[str]:
    """The `process` pool with the queues prefect.yaml's comments create; removed afterwards."""
    client.create_work_pool(WorkPoolCreate(name="process", type="process"), overwrite=True)
    client.create_work_queue("uploads", priority=1, work_pool_name="process")
    client.create_work_queue("refresh", priority=10, work_pool_name="process")
    yield "process"
    for name in NAMES.values():
        with contextlib.suppress(Exception):
            client.delete_flow(client.read_flow_by_name(name).id)  # and its deployments
    client.delete_work_pool("process")


def test_prefect_deploy_registers_prefect_yaml(
    client: SyncPrefectClient, process_pool: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    queues = {}
    for deployment, flow_name in NAMES.items():
        registered = client.read_deployment_by_name(f"{flow_name}/{deployment}")
        assert registered.work_pool_name == process_pool
        queues[deployment] = registered.work_queue_name
    assert queues == {
        "process-product": "uploads",
        "catalog-refresh": "refresh",
        "upload-sensor": "uploads",
    }
    uploads = client.read_work_queue_by_name("uploads", work_pool_name=process_pool)
    refresh = client.read_work_queue_by_name("refresh", work_pool_name=process_pool)
    assert uploads.priority < refresh.priority
    [automation] = client.read_automations_by_name("process-product-on-upload")
    product = client.read_deployment_by_name("process-product/process-product")
    assert automation.actions[0].deployment_id == product.id  # type: ignore[union-attr]
    client.delete_resource_owned_automations(f"prefect.deployment.{product.id}")


@pytest.fixture
def installed_package(tmp_path: Path) -> Path:
    """This project built as a wheel and installed (not editable) into a folder of its own."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("product_images-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    return site


def test_a_worker_runs_a_deployment_from_an_installed_package(
    client: SyncPrefectClient,
    process_pool: str,
    photo: Path,
    tmp_path: Path,
    installed_package: Path,
) -> None:
    # The worker runs in another folder, with the wheel's copy of the code first on its path
    # (the editable install's finder comes after it): no checkout, no deploying machine's path.
    [product, *_] = deployments(Settings(), work_pool=True)
    deployment_id = product.apply()
    store = tmp_path / "out"
    parameters = {"request": {"sku": "W-1", "source": str(photo), "platforms": ["amazon"]}}
    run = client.create_flow_run_from_deployment(
        deployment_id, parameters=parameters | {"store": str(store)}
    )
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(installed_package),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    where = subprocess.run(
        [sys.executable, "-c", "import product_images.flows.deployments as d; print(d.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed_package)), where.stdout
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", process_pool, "--run-once"],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = worker.communicate(timeout=180)
    finally:
        worker.kill()
    state = client.read_flow_run(run.id).state
    assert state is not None and state.is_completed(), output[-3000:]
    manifest = Manifest.model_validate_json((store / "W-1" / "manifest.json").read_text())
    assert {o.slot for o in manifest.outputs} == {"main", "scene", "detail"}
    registered = client.read_deployment(deployment_id)
    assert registered.path is None and not registered.pull_steps  # nothing machine-bound


# -- the sensor -----------------------------------------------------------------------------


@pytest.mark.s3
def test_sensor_emits_one_event_per_new_upload(
    s3_env: SeaweedServer, s3_store: S3Store, client: SyncPrefectClient
) -> None:
    skus = [f"EV-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    s3_store.put(f"incoming/{skus[0]}.jpg", b"first photo", "image/jpeg")
    s3_store.put(f"incoming/{skus[1]}/front.png", b"second photo", "image/png")
    s3_store.put("incoming/README.txt", b"not a photo")
    url = f"s3://{s3_store.bucket}"

    first = sense_uploads(store=url)

    assert sorted(u.sku for u in first) == sorted(skus)
    events = _eventually(
        lambda: (found := _events_for(client, skus)) and len(found) == 2 and found,
        timeout=30,
        what="two product.uploaded events",
    )
    by_sku = {e.payload["sku"]: e for e in events}
    assert set(by_sku) == set(skus)
    event = by_sku[skus[0]]
    assert event.resource.id == f"product.{skus[0]}"
    assert event.payload["source"] == f"{url}/incoming/{skus[0]}.jpg"
    assert event.payload["store"] == url
    assert event.payload["etag"] and event.payload["idempotency_key"].endswith(
        event.payload["etag"]
    )
    assert any(r.role == "flow-run" for r in event.related)  # linked to the sensor's run
    assert s3_store.exists(CURSOR_KEY)

    assert sense_uploads(store=url) == []  # nothing new: no event
    s3_store.put(f"incoming/{skus[0]}/back.jpg", b"another photo", "image/jpeg")
    [later] = sense_uploads(store=url)
    assert later.key == f"incoming/{skus[0]}/back.jpg"


def test_a_repeated_emission_has_the_same_event_id(
    tmp_path: Path, client: SyncPrefectClient
) -> None:
    """Same id: the server's trigger engine acts once on an event id it has seen."""
    store = LocalStore(tmp_path / "store")
    sku = f"RE-{uuid.uuid4().hex[:8]}"
    store.put(f"incoming/{sku}.jpg", b"photo")
    [upload] = sense_uploads(store=str(tmp_path / "store"))
    [again] = emit_upload_events(store.url, [upload])  # a crash before the cursor was saved
    found = _eventually(lambda: _events_for(client, [sku]), timeout=30, what="the event")
    assert [e.id for e in found] == [again.id]


# -- idempotency of the triggered flow ------------------------------------------------------


def test_the_same_upload_is_made_once(photo: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "out")
    request = ProductRequest(sku="ONCE-1", source=str(photo), platforms=["amazon"])
    key = "ONCE-1/etag-0123"

    first = process_product(request, idempotency_key=key, store=store)
    second = process_product(request, idempotency_key=key, store=store)

    assert (first.status, second.status) == ("done", "unchanged")
    assert second.reason == "already_processed"
    out = LocalStore(tmp_path / "out")
    marker = UploadMarker.model_validate_json(out.get(processed_key(key)))
    assert marker.state == "done" and marker.run_id
    assert Manifest.model_validate_json(out.get("ONCE-1/manifest.json")).sku == "ONCE-1"
    # Without an idempotency key (the Run form) the marker is not consulted.
    forced = request.model_copy(update={"force": True})
    assert process_product(forced, store=store).status == "done"


def test_a_failed_upload_can_be_tried_again(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    store = str(tmp_path / "out")
    request = ProductRequest(sku="FAIL-1", source=str(bad), platforms=["amazon"])
    with pytest.raises(Exception, match="bad"):
        process_product(request, idempotency_key="FAIL-1/etag-1", store=store)
    assert not LocalStore(tmp_path / "out").exists(processed_key("FAIL-1/etag-1"))


def test_refresh_without_a_catalog_remakes_every_product(photo: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "out")
    process_product(
        ProductRequest(sku="REF-1", source=str(photo), platforms=["amazon"]), store=store
    )

    assert [(r.sku, r.status) for r in refresh_catalog(store=store).results] == [
        ("REF-1", "unchanged")
    ]
    assert [(r.sku, r.status) for r in refresh_catalog(store=store, force=True).results] == [
        ("REF-1", "done")
    ]


# -- the serve command ----------------------------------------------------------------------


def test_serve_needs_a_server() -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(serve, [])
    assert result.exit_code == 1
    assert "prefect server start" in result.output
    assert "export PREFECT_API_URL=http://127.0.0.1:4200/api" in result.output


def test_serve_polls_often_unless_told_otherwise() -> None:
    assert _poll_seconds() == POLL_SECONDS == 1.0
    with temporary_settings(updates={PREFECT_RUNNER_POLL_FREQUENCY: 7}):
        assert _poll_seconds() == 7


def _runs_of(client: SyncPrefectClient, deployment: str, sku: str) -> list[FlowRun]:
    try:
        deployment_id = client.read_deployment_by_name(deployment).id
    except Exception:
        return []
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    )
    return [r for r in runs if r.parameters.get("request", {}).get("sku") == sku]


@pytest.fixture
def served(tmp_path: Path, s3_env: SeaweedServer, s3_store: S3Store) -> Iterator[S3Store]:
    """`python -m cli.serve` against this session's API and bucket; stopped afterwards."""
    env: dict[str, Any] = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PRODUCT_IMAGES_STORE": f"s3://{s3_store.bucket}",
        "PRODUCT_IMAGES_PLATFORMS": '["amazon"]',
        "PRODUCT_IMAGES_BACKEND": "local",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "product_images.cli.serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield s3_store
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        print((tmp_path / "serve.log").read_text(errors="replace")[-4000:])


def _served(client: SyncPrefectClient, name: str) -> uuid.UUID | None:
    """The deployment's id once `serve` registered it and is polling for its runs."""
    try:
        deployment = client.read_deployment_by_name(name)
    except Exception:
        return None
    return deployment.id if deployment.status and deployment.status.value == "READY" else None


def test_an_upload_becomes_a_finished_flow_run(
    served: S3Store, photo: Path, client: SyncPrefectClient
) -> None:
    """upload -> serve's watcher -> event -> automation -> process-product run, all served."""
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    _eventually(
        lambda: _served(client, "process-product/process-product"), timeout=45, what="serve"
    )
    served.put(f"incoming/{sku}.jpg", photo.read_bytes(), "image/jpeg")

    def finished() -> list[FlowRun]:
        runs = _runs_of(client, "process-product/process-product", sku)
        failed = [r for r in runs if r.state and r.state.is_final() and not r.state.is_completed()]
        assert not failed, f"run failed: {failed[0].state}"
        return [r for r in runs if r.state and r.state.is_completed()]

    [run] = _eventually(finished, timeout=60, what="the upload's flow run to complete")
    assert Manifest.model_validate_json(served.get(f"{sku}/manifest.json")).sku == sku
    [artifact] = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
    )
    assert artifact.key == f"product-{sku.lower()}" and "_thumbs/" in str(artifact.data)
    key = run.parameters["idempotency_key"]
    marker = UploadMarker.model_validate_json(served.get(processed_key(key)))
    assert (marker.state, marker.run_id) == ("done", str(run.id))

    assert "upload" in run.tags  # run in serve's own process, no process started for it

    # The same upload announced as an event too (a worker's sensor, or sent by hand): the
    # trigger starts a run that finds the marker and makes nothing.
    repeat = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": UPLOAD_EVENT,
        "resource": {"prefect.resource.id": f"product.{sku}"},
        "payload": {
            "sku": sku,
            "source": run.parameters["request"]["source"],
            "idempotency_key": key,
            "store": run.parameters["store"],
        },
    }
    client.request("POST", "/events", json=[repeat])
    runs = _eventually(
        lambda: (done := finished()) and len(done) == 2 and done,
        timeout=60,
        what="the repeated upload's run",
    )
    assert len(runs) == 2
    assert UploadMarker.model_validate_json(served.get(processed_key(key))).run_id == str(run.id)


def test_every_sensor_line_names_the_store_and_its_incoming_prefix(
    photo: Path, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    store.put("incoming/L-1.jpg", photo.read_bytes(), "image/jpeg")
    store.put("incoming/notes.txt", b"not a photo", "text/plain")
    logger = logging.getLogger("test-sensor-lines")
    logger.setLevel(logging.INFO)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    announced: list[Any] = []
    try:
        sense_once(store, "incoming/", logger, announce=lambda _, ups: announced.extend(ups))
        sense_once(store, "incoming/", logger, announce=lambda _, ups: announced.extend(ups))
    finally:
        logger.removeHandler(handler)
    watched = watched_location(store.url, "incoming/")
    assert watched == f"{store.url.rstrip('/')}/incoming/"
    assert [u.sku for u in announced] == ["L-1"]  # once: the cursor moved past it
    assert lines[0] == f"ignored {watched}notes.txt: not an image file name"
    assert f"1 new upload(s) under {watched}" in lines
    assert f"0 new upload(s) under {watched}" in lines
    assert all(watched in line for line in lines), lines


def test_serve_and_deploy_refuse_to_take_the_other_ones_deployments(
    client: SyncPrefectClient, process_pool: str
) -> None:
    ids = [d.apply() for d in deployments(Settings(), work_pool=True)]
    try:
        refused = CliRunner().invoke(serve, [])
        assert refused.exit_code == 1
        assert "process-product/process-product: registered for work pool 'process'" in (
            refused.output
        )
        assert "--take-over" in refused.output
        assert CliRunner().invoke(deploy, []).exit_code == 0  # the pool's own: fine
        names = [f"{d.flow_name}/{d.name}" for d in deployments(Settings())]
        assert release_from_pools(names) == names  # what `serve --take-over` does first
        ids = [d.apply() for d in deployments(Settings())]
        assert {client.read_deployment(i).work_pool_name for i in ids} == {None}
        taken = CliRunner().invoke(deploy, [])
        assert taken.exit_code == 1 and "registered for `product-images serve`" in taken.output
    finally:
        for deployment_id in ids:
            with contextlib.suppress(Exception):
                client.delete_resource_owned_automations(f"prefect.deployment.{deployment_id}")
