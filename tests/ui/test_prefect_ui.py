"""A product made from the Prefect UI, in a real browser.

Headless Debian Chromium, driven by Playwright, opens the `process-product` deployment of a
real `prefect server start` that `product-images serve` serves, fills the Run form, submits
it, and, once the run has completed, finds the outputs in the bucket and opens their contact
sheet, whose images must all load.

Screenshots of each step go to test-artifacts/ui/ (git-ignored). To refresh the committed set
in docs/screenshots/, run with UPDATE_DOCS_SCREENSHOTS=1.

Skips, with the reason, when Chromium or Playwright is missing: `scripts/install-chromium`
(run by scripts/test) installs Debian's `chromium` when run as root with apt-get, and
Playwright comes with the dev extra.
Playwright's own browser download (`playwright install`) is never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from product_images.demo import write_contact_sheet
from product_images.manifest import Manifest, manifest_key
from product_images.store import S3Store
from product_images.testing.fixtures.images import draw_product
from product_images.testing.seaweedfs import SeaweedServer
from product_images.thumbnails import THUMBNAIL_SIDE

#: Debian's `chromium` package; CHROMIUM overrides it (as it does for scripts/install-chromium).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: For a root, GPU-less, offline machine: without the networking flags Chromium keeps trying
#: to reach Google's hosts, which the machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _why_not() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"no Chromium at {CHROMIUM}: install Debian's `chromium` package "
            "(scripts/install-chromium does when run as root with apt-get; see its warning) "
            "or set CHROMIUM"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[dev]'"
    return None


if (_REASON := _why_not()) is not None:
    pytest.skip(_REASON, allow_module_level=True)

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

pytestmark = [pytest.mark.ui, pytest.mark.s3]

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SKU = "UI-1"
PLATFORMS = ["amazon", "shopify"]
RUN_TIMEOUT = 120  # seconds from submit to a final state
UI_TIMEOUT = 30_000  # ms for the UI to show what the API already says (it polls)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT)
    yield context.new_page()
    context.close()


class Shots:
    """Numbered screenshots of each step into test-artifacts/ui/; one of the failing page."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, name: str, *, full_page: bool = False) -> None:
        path = self.folder / name
        # animations="disabled" ends the UI's fade-ins: no half-transparent pages
        self.page.screenshot(path=path, full_page=full_page, animations="disabled")
        self.taken.append(path)


@pytest.fixture
def shots(page: Page, ui_artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Shots]:
    """Screenshots; copied to docs/screenshots/ after a passing run with
    UPDATE_DOCS_SCREENSHOTS=1."""
    taken = Shots(page, ui_artifacts)
    yield taken
    report = getattr(request.node, "rep_call", None)
    passed = report is not None and report.passed
    if not passed:
        with contextlib.suppress(Exception):
            page.screenshot(path=ui_artifacts / "99-failure.png", full_page=True)
    elif os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for path in taken.taken:
            shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)


#: From a field's <label> up to its form property (label, description, inputs). The labels'
#: `for` point at no element id, so Playwright's get_by_label cannot be used.
_PROPERTY = "xpath=ancestor::*[contains(concat(' ', @class, ' '), ' schema-form-property ')][1]"


def _form_field(page: Page, label: str) -> Locator:
    """The schema-form property whose label is `label` (optionally "(Optional)")."""
    text = re.compile(rf"^\s*{re.escape(label)}( \(Optional\))?\s*$")
    return page.locator("label").filter(has_text=text).locator(_PROPERTY)


def _submit(page: Page, attempts: int = 3) -> str:
    """Click Submit; returns the id of the flow run the UI created.

    A busy SQLite database makes the server answer 503 ("Service Unavailable", Prefect's
    retry-me status, which its Python client retries and the UI does not); then, like a
    person seeing the error toast, click Submit again.
    """
    for attempt in range(1, attempts + 1):
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/create_flow_run")
        ) as created:
            page.get_by_role("button", name="Submit").click()
        response = created.value
        if response.ok:
            run_id: str = response.json()["id"]
            return run_id
        if response.status != 503 or attempt == attempts:
            pytest.fail(f"create_flow_run answered {response.status}: {response.text()}")
        time.sleep(attempt)
    raise AssertionError("unreachable")


def test_a_product_run_from_the_ui(
    served: dict[str, Any],
    prefect_server: Any,
    page: Page,
    shots: Shots,
    s3_store: S3Store,
    seaweed: SeaweedServer,
    tmp_path: Path,
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    photo = draw_product(size=(900, 700))[0]
    photo_path = tmp_path / "photo.jpg"
    photo.save(photo_path, quality=92)
    s3_store.put(f"photos/{SKU}.jpg", photo_path.read_bytes(), "image/jpeg")
    source = f"s3://{s3_store.bucket}/photos/{SKU}.jpg"

    # 1. The deployment, reached the way a person would: Deployments -> process-product.
    page.goto(f"{prefect_server.url}/deployments")
    page.get_by_role("link", name="process-product", exact=True).click()
    page.wait_for_url(re.compile(rf"/deployments/deployment/{served['id']}"))
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_visible()
    expect(page.get_by_text("process-product").first).to_be_visible()
    expect(page.get_by_text("Ready", exact=True)).to_be_visible()  # serve() is polling
    shots("01-deployment.png")

    # 2. Run -> Custom run: the form rendered from the pydantic parameters.
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("button", name="Custom run").click()
    page.wait_for_url(re.compile(r"/run\b"))
    _form_field(page, "Sku").locator("textarea").fill(SKU)
    _form_field(page, "Source").locator("textarea").fill(source)
    # Platforms: a multiple choice of the known marketplaces, not free text.
    platforms = _form_field(page, "Platforms")
    platforms.locator(".p-select-button").click()  # focuses it; the arrow key opens it
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("option", name="tiktok-shop", exact=True)).to_be_visible()
    for name in PLATFORMS:
        page.get_by_role("option", name=name, exact=True).click()
    shots("02-run-form.png", full_page=True)
    page.get_by_text("Parameters", exact=True).click()  # a click outside closes the list
    expect(page.get_by_role("option", name="tiktok-shop", exact=True)).to_be_hidden()
    for name in PLATFORMS:
        expect(platforms.locator(".p-select-button__value")).to_contain_text(name)
    # Internal parameters are not on the form; a SKU the CLI refuses is refused here too.
    expect(page.get_by_text("Idempotency Key")).to_have_count(0)
    expect(page.get_by_text("Property is type None")).to_have_count(0)

    # 3. Submit; the UI's create_flow_run response names the run it made.
    run_id = _submit(page)
    submitted = time.monotonic()
    timings["to submit"] = submitted - started

    run = prefect_server.wait_for_flow_run(run_id, timeout=RUN_TIMEOUT)
    timings["submit to final state"] = time.monotonic() - submitted
    serve_log = (tmp_path / "serve.log").read_text(errors="replace")[-6000:]
    assert run["state"]["type"] == "COMPLETED", f"{run['state']}\nserve log tail:\n{serve_log}"
    params = run["parameters"]["request"]
    assert (params["sku"], params["source"], params["platforms"]) == (SKU, source, PLATFORMS)

    page.goto(f"{prefect_server.url}/runs/flow-run/{run_id}")
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    expect(page.get_by_text(f"product-{SKU}", exact=True).first).to_be_visible()
    logs_done = page.get_by_text("Finished in state Completed()").first
    expect(logs_done).to_be_visible(timeout=UI_TIMEOUT)  # the logs load after the page
    shots("03-run-completed.png")

    # 4. The outputs are in the bucket, under the store the serve process was given.
    store = S3Store(s3_store.bucket, prefix="out", client=seaweed.client())
    manifest = Manifest.model_validate_json(store.get(manifest_key(SKU)))
    assert {o.platform for o in manifest.outputs} == set(PLATFORMS)
    keys = [m.key for m in manifest.masters] + [o.key for o in manifest.outputs]
    missing = [key for key in keys if not store.exists(key)]
    assert not missing, f"in the manifest but not in the bucket: {missing}"

    # 5. The contact sheet (presigned links into the bucket) in the same browser.
    sheet = write_contact_sheet(
        store, [manifest], tmp_path / "sheet" / "index.html", title=f"{SKU}, run from the UI"
    )
    page.goto(sheet.as_uri())
    images = page.locator("img")
    expected = 1 + len(manifest.masters) + len(manifest.outputs)  # + the source thumbnail
    expect(images).to_have_count(expected)
    for image in images.all():  # they are loading="lazy": scroll each into view
        image.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.images].every(img => img.complete)")
    widths = images.evaluate_all("imgs => imgs.map(img => [img.currentSrc, img.naturalWidth])")
    broken = [src for src, width in widths if not width]
    assert not broken, f"images that did not load: {broken}"
    presigned = [src for src, _ in widths if src.startswith(seaweed.endpoint_url)]
    assert len(presigned) == expected - 1, widths  # all but the copied source thumbnail
    page.evaluate("window.scrollTo(0, 0)")
    shots("04-contact-sheet.png", full_page=True)

    timings["whole test body"] = time.monotonic() - started
    rounded = {step: round(seconds, 1) for step, seconds in timings.items()}
    (shots.folder / "timings.json").write_text(json.dumps(rounded, indent=2) + "\n")
    print("timings (s):", rounded)


UPLOAD_SKU = "UP-1"


def test_an_uploaded_photo_shows_its_run_with_thumbnails(
    served: dict[str, Any],
    prefect_server: Any,
    page: Page,
    shots: Shots,
    s3_store: S3Store,
    seaweed: SeaweedServer,
    tmp_path: Path,
) -> None:
    """A photo dropped into <store>/incoming/ becomes a run of process-product; its page in
    the UI shows the product artifact, whose thumbnails load from the bucket."""
    photo = draw_product(size=(900, 700), colour=(40, 90, 170))[0]
    buffer = tmp_path / "upload.jpg"
    photo.save(buffer, quality=92)
    s3_store.put(f"out/incoming/{UPLOAD_SKU}.jpg", buffer.read_bytes(), "image/jpeg")

    run = _upload_run(prefect_server, f"product-{UPLOAD_SKU}")
    run = prefect_server.wait_for_flow_run(run["id"], timeout=RUN_TIMEOUT)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["deployment_id"] == served["id"] and "upload" in run["tags"]

    page.goto(f"{prefect_server.url}/runs/flow-run/{run['id']}")
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    page.get_by_text("Artifacts", exact=True).click()
    # the artifact key (lower case), not the run name product-UP-1
    page.get_by_text(f"product-{UPLOAD_SKU.lower()}", exact=True).first.click()
    thumbnails = page.locator("img[src*='_thumbs']")
    manifest = Manifest.model_validate_json(s3_store.get(f"out/{UPLOAD_SKU}/manifest.json"))
    assert {m.variant for m in manifest.masters} == {"white", "scene", "detail"}
    expect(thumbnails).to_have_count(len(manifest.masters))  # every master, takes included
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"img[src*='_thumbs']\")]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    sizes = thumbnails.evaluate_all("imgs => imgs.map(img => [img.naturalWidth, img.src])")
    assert all(0 < width <= THUMBNAIL_SIDE for width, _ in sizes), sizes
    assert all(src.startswith(seaweed.endpoint_url) for _, src in sizes), sizes
    expect(page.get_by_text("checks").first).to_be_visible()  # the outputs table
    shots("05-upload-run-artifact.png", full_page=True)


def _upload_run(server: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    """The flow run called `name` once it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = {"flow_runs": {"name": {"any_": [name]}}, "limit": 1}
        found = server.http.post("/flow_runs/filter", json=body).raise_for_status().json()
        if found:
            run: dict[str, Any] = found[0]
            return run
        time.sleep(0.5)
    pytest.fail(f"no flow run {name} within {timeout:g}s of the upload")
