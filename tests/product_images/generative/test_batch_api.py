"""GeminiBatchClient end to end against the stand-in server's Batch API (real HTTP on
127.0.0.1): submission, polling with backoff, per-request outcomes, job failures and splitting."""

from __future__ import annotations

import copy
import io
import json
import logging
import socket
import time

import pytest
from PIL import Image

from product_images.errors import (
    AuthenticationError,
    BadRequestError,
    BatchJobError,
    ContentBlockedError,
    GenerationError,
    ModelNotFoundError,
    NoImageError,
    RateLimitedError,
    RetryableGenerationError,
    SettingsError,
    UpstreamServerError,
)
from product_images.generative.base import GenerationRequest, GenerationResult, ImageInput
from product_images.generative.batch_api import (
    GeminiBatchClient,
    inlined_responses,
    status_from_operation,
)
from product_images.generative.gemini import build_request_body
from product_images.testing.standin import StandinServer, output_size

KEY = "AIzaSy-BATCH-SECRET-Qw4Er5Ty6Ui7"
MODEL = "gemini-3.1-flash-image"


def _png(size: tuple[int, int] = (96, 120)) -> bytes:
    image = Image.new("RGB", size, (235, 235, 232))
    image.paste((180, 40, 40), (24, 30, 72, 96))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


PHOTO = _png()


def request(prompt: str = "Put the product on a pure white background", aspect: str = "1:1"):
    return GenerationRequest(prompt, (ImageInput(PHOTO, "image/png"),), aspect_ratio=aspect)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


class Sleeps:
    """A sleep that records each wait (and really waits: the stand-in's jobs run on the
    wall clock)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


class FakeTime:
    """A clock that only moves when the client sleeps: timeouts without waiting for them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def server():
    with StandinServer(api_key=KEY, batch_seconds=0.1) as standin:
        yield standin


@pytest.fixture
def standin(server):
    server.reset()
    server.batch_seconds = 0.1
    return server


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def make_client(standin, sleeps):
    clients: list[GeminiBatchClient] = []

    def make(**options) -> GeminiBatchClient:
        settings = {
            "model": MODEL,
            "base_url": standin.url,
            "image_size": "1K",
            "max_attempts": 3,
            "base_delay": 0.01,
            "max_delay": 0.05,
            "read_timeout": 20.0,
            "sleep": sleeps,
            "poll_initial": 0.02,
            "poll_max": 0.05,
            "timeout": 30.0,
            **options,
        }
        client = GeminiBatchClient(settings.pop("api_key", KEY), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def creates(standin: StandinServer):
    return [r for r in standin.requests if r.route == "gemini-batch"]


# --------------------------------------------------------------------------- success


def test_a_batch_of_three_returns_three_images_with_usage(standin, make_client):
    requests = {
        "sku-1/white": request("Put the product on a pure white background", "1:1"),
        "sku-1/scene": request("Place the product in a soft studio scene", "4:5"),
        "sku-2/detail": request("A close-up detail of the label", "16:9"),
    }

    results = make_client().run(requests)

    assert list(results) == list(requests)
    for key, result in results.items():
        assert isinstance(result, GenerationResult), result
        assert size_of(result.image) == output_size(MODEL, requests[key].aspect_ratio, "1K")
        assert result.mime_type == "image/png" and result.model == MODEL
        assert result.attempts == 1 and result.text
        usage = result.usage
        assert usage.prompt_tokens >= 258 and usage.output_tokens >= 1120
        assert usage.total_tokens == usage.prompt_tokens + usage.output_tokens
    assert standin.calls == 3  # the inner requests, not the polls
    [create] = creates(standin)
    assert create.path == f"/v1beta/models/{MODEL}:batchGenerateContent"
    assert create.headers["x-goog-api-key"] == KEY
    batch = create.json["batch"]
    assert batch["display_name"] == "product-images"
    inlined = batch["input_config"]["requests"]["requests"]
    assert [item["metadata"] for item in inlined] == [{"key": key} for key in requests]
    assert [item["request"] for item in inlined] == [
        build_request_body(r, MODEL, "1K") for r in requests.values()
    ]
    polls = [r for r in standin.requests if r.route == "gemini-batch-get"]
    assert polls and all(r.method == "GET" for r in polls)
    [path] = {r.path for r in polls}  # every poll asks for the one job
    assert path.startswith("/v1beta/batches/")


def test_bearer_auth_is_used_for_submission_and_polls(standin, make_client):
    results = make_client(auth="bearer").run({"a": request()})

    assert isinstance(results["a"], GenerationResult)
    assert standin.requests
    for recorded in standin.requests:
        assert recorded.headers["authorization"] == f"Bearer {KEY}"
        assert "x-goog-api-key" not in recorded.headers


def test_an_empty_batch_sends_nothing(standin, make_client):
    assert make_client().run({}) == {}
    assert standin.requests == []


# --------------------------------------------------------------------------- per-request outcomes


EXPECTED = {
    "ok": GenerationResult,
    "safety": ContentBlockedError,
    "blocked-prompt": ContentBlockedError,
    "text-only": NoImageError,
    "no-candidates": NoImageError,
    "malformed": NoImageError,
    "500": UpstreamServerError,
    "503": UpstreamServerError,
    "timeout": UpstreamServerError,  # DEADLINE_EXCEEDED inside the job: maps as HTTP 504
    "429-retryinfo:2s": RateLimitedError,
    "400": BadRequestError,
    "403": AuthenticationError,
    "404": ModelNotFoundError,
    "thought-images": GenerationResult,
    "snake-case": GenerationResult,
    "text-first": GenerationResult,
}


def test_per_request_errors_come_back_typed_while_the_others_succeed(standin, make_client):
    standin.script(*EXPECTED)
    requests = {f"sku-{i}": request() for i in range(len(EXPECTED))}

    results = make_client().run(requests)

    assert [type(outcome) for outcome in results.values()] == list(EXPECTED.values())
    by_fault = dict(zip(EXPECTED, results.values(), strict=True))
    for fault in ("ok", "thought-images", "snake-case", "text-first"):
        result = by_fault[fault]
        assert isinstance(result, GenerationResult)
        assert size_of(result.image) == (1024, 1024)  # the final image, not the thought draft
    rate_limited = by_fault["429-retryinfo:2s"]
    assert isinstance(rate_limited, RateLimitedError) and rate_limited.retry_after == 2.0
    assert {by_fault[f].status for f in ("500", "503", "timeout")} == {500, 503, 504}
    assert (by_fault["400"].status, by_fault["403"].status, by_fault["404"].status) == (
        400,
        403,
        404,
    )
    assert "IMAGE_SAFETY" in str(by_fault["safety"]) and by_fault["safety"].status == 200
    assert "can't produce an image" in str(by_fault["text-only"])
    assert len(creates(standin)) == 1  # one job; nothing sent synchronously
    assert standin.calls == len(EXPECTED)


def test_results_are_matched_by_key_or_else_by_position(standin, make_client):
    client = make_client()
    standin.script("ok", "safety")
    job = client.submit({"a": request(), "b": request()})
    status = client.poll(job)
    while not status.done:
        time.sleep(0.02)
        status = client.poll(job)
    operation = dict(status.operation)
    items = operation["response"]["inlinedResponses"]["inlinedResponses"]
    assert status.succeeded and (status.succeeded_count, status.request_count) == (2, 2)

    def outcomes(payload, keys=("a", "b")):
        return {k: type(v) for k, v in client.results(status_from_operation(payload), keys).items()}

    expected = {"a": GenerationResult, "b": ContentBlockedError}
    assert outcomes(operation) == expected
    assert outcomes(operation, ("b", "a")) == expected  # by metadata.key, not by order
    # A plain list under response.inlinedResponses, and the metadata.output mirror.
    flat = {**operation, "response": {"inlinedResponses": items}}
    assert outcomes(flat) == expected
    mirror = {
        "name": job,
        "done": True,
        "metadata": {
            "state": "JOB_STATE_SUCCEEDED",
            "output": {"inlined_responses": {"inlined_responses": items}},
        },
    }
    assert status_from_operation(mirror).succeeded
    assert outcomes(mirror) == expected
    # Without metadata (the API does not always echo it): by position.
    anonymous = copy.deepcopy(flat)
    for item in anonymous["response"]["inlinedResponses"]:
        del item["metadata"]
    assert outcomes(anonymous) == expected
    assert outcomes(anonymous, ("b", "a")) == {"b": GenerationResult, "a": ContentBlockedError}
    # A key with no entry at all.
    short = {**operation, "response": {"inlinedResponses": items[:1]}}
    assert outcomes(short) == {"a": GenerationResult, "b": NoImageError}
    assert inlined_responses({"name": job, "metadata": {"state": "BATCH_STATE_RUNNING"}}) is None


# --------------------------------------------------------------------------- job failures


@pytest.mark.parametrize(
    ("fault", "state"),
    [
        ("expired", "BATCH_STATE_EXPIRED"),
        ("failed", "BATCH_STATE_FAILED"),
        ("cancelled", "BATCH_STATE_CANCELLED"),
    ],
)
def test_a_job_that_does_not_succeed_raises_batch_job_error(standin, make_client, fault, state):
    standin.set_batch_fault(fault)
    client = make_client()
    requests = {"sku-1/white": request(), "sku-2/white": request()}

    with pytest.raises(BatchJobError) as caught:
        client.run(requests)

    error = caught.value
    assert isinstance(error, RetryableGenerationError) and error.reason == "batch_failed"
    assert error.state == state
    assert len(error.jobs) == 1 and error.jobs[0].startswith("batches/")
    assert error.unfinished == ("sku-1/white", "sku-2/white") and error.results == {}
    assert state.removeprefix("BATCH_STATE_") in str(error) and "synchronously" in str(error)
    # The caller's fallback: the same client, synchronously.
    fallback = {key: client.generate(requests[key]) for key in error.unfinished}
    assert all(isinstance(r, GenerationResult) for r in fallback.values())


def test_a_failed_job_among_several_keeps_the_others_results(standin, make_client):
    standin.script_batch("ok", "failed", "ok")
    size = len(json.dumps({"request": build_request_body(request(), MODEL, "1K")})) + 40
    requests = {f"sku-{i}": request() for i in range(5)}

    with pytest.raises(BatchJobError) as caught:
        make_client(max_payload_bytes=2 * size).run(requests)

    error = caught.value
    assert error.state == "BATCH_STATE_FAILED" and len(error.jobs) == 1
    assert error.unfinished == ("sku-2", "sku-3")
    assert set(error.results) == {"sku-0", "sku-1", "sku-4"}
    assert all(isinstance(r, GenerationResult) for r in error.results.values())


def test_polling_backs_off_exponentially_up_to_the_cap(standin, make_client, sleeps):
    standin.batch_seconds = 0.4

    results = make_client(poll_initial=0.02, poll_max=0.1).run({"a": request()})

    assert isinstance(results["a"], GenerationResult)
    waits = sleeps.waits
    assert waits[:4] == [0.02, 0.04, 0.08, 0.1]
    assert all(w == 0.1 for w in waits[3:]) and len(waits) >= 5
    polls = [r for r in standin.requests if r.route == "gemini-batch-get"]
    assert len(polls) == len(waits)  # one poll after each wait


def test_a_job_not_done_in_time_is_cancelled_and_raises(standin, make_client):
    standin.batch_seconds = 60.0
    fake = FakeTime()
    client = make_client(
        sleep=fake.sleep, clock=fake.clock, poll_initial=1.0, poll_max=4.0, timeout=10.0
    )

    with pytest.raises(BatchJobError) as caught:
        client.run({"a": request(), "b": request()})

    assert fake.waits == [1.0, 2.0, 4.0, 3.0]  # the last wait stops at the deadline
    error = caught.value
    assert error.state == "TIMEOUT" and error.unfinished == ("a", "b")
    assert "not done after 10s" in str(error)
    [cancel] = [r for r in standin.requests if r.route == "gemini-batch-cancel"]
    assert cancel.path == f"/v1beta/{error.jobs[0]}:cancel" and cancel.status == 200
    assert client.poll(error.jobs[0]).state == "BATCH_STATE_CANCELLED"


def test_a_job_that_is_gone_is_a_batch_job_error(standin, make_client):
    client = make_client()
    with pytest.raises(BatchJobError) as caught:
        client.poll("batches/no-such-job")
    assert caught.value.status == 404 and caught.value.state == "NOT_FOUND"
    with pytest.raises(ValueError, match="not a batch job name"):
        client.poll("batches/../models")


# --------------------------------------------------------------------------- submission


def test_a_wrong_key_is_an_authentication_error_and_not_retried(standin, make_client, sleeps):
    with pytest.raises(AuthenticationError) as caught:
        make_client(api_key=KEY[::-1]).run({"a": request()})

    assert caught.value.status == 400 and "GEMINI_API_KEY" in str(caught.value)
    assert len(standin.requests) == 1 and sleeps.waits == []


def test_submission_errors_are_typed_like_generate_content(standin, make_client):
    with pytest.raises(ModelNotFoundError, match="GEMINI_MODEL"):
        make_client(model="gemini-0-nonexistent-image").run({"a": request()})
    with pytest.raises(BadRequestError, match="aspect ratio"):
        make_client().run({"a": request(aspect="7:3")})
    assert [r.status for r in standin.requests] == [404, 400]


def test_a_refused_connection_is_retried_then_typed(make_client, sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(UpstreamServerError, match="connection failed"):
        make_client(base_url=f"http://127.0.0.1:{port}", max_attempts=3).run({"a": request()})

    assert len(sleeps.waits) == 2  # GeminiClient's retry policy: 3 attempts


def test_bad_options_and_keys_are_refused(make_client):
    with pytest.raises(SettingsError):
        make_client(poll_initial=0)
    with pytest.raises(SettingsError):
        make_client(poll_initial=5.0, poll_max=1.0)
    with pytest.raises(SettingsError):
        make_client(timeout=0)
    with pytest.raises(ValueError, match="non-empty"):
        make_client().run({"": request()})


# --------------------------------------------------------------------------- splitting


def test_big_requests_are_split_over_several_jobs(standin, make_client):
    size = len(json.dumps({"request": build_request_body(request(), MODEL, "1K")})) + 40
    client = make_client(max_payload_bytes=2 * size + 10)
    requests = {f"sku-{i}": request() for i in range(5)}

    results = client.run(requests)

    assert list(results) == list(requests)
    assert all(isinstance(r, GenerationResult) for r in results.values())
    jobs = creates(standin)
    assert len(jobs) == 3 and standin.calls == 5
    assert [r.json["batch"]["display_name"] for r in jobs] == [
        "product-images 1/3",
        "product-images 2/3",
        "product-images 3/3",
    ]
    keys = [
        [
            item["metadata"]["key"]
            for item in r.json["batch"]["input_config"]["requests"]["requests"]
        ]
        for r in jobs
    ]
    assert keys == [["sku-0", "sku-1"], ["sku-2", "sku-3"], ["sku-4"]]
    assert all(len(r.body) <= 2 * size + 200 for r in jobs)
    with pytest.raises(ValueError, match="use run"):
        client.submit(requests)


# --------------------------------------------------------------------------- secrets


def test_the_key_appears_in_no_message_repr_or_log(standin, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    standin.script(*EXPECTED)
    outcomes = make_client().run({f"k{i}": request() for i in range(len(EXPECTED))})
    errors += [o for o in outcomes.values() if isinstance(o, GenerationError)]
    for fault in ("expired", "failed"):
        standin.set_batch_fault(fault)
        with pytest.raises(BatchJobError) as caught:
            make_client().run({"a": request()})
        errors.append(caught.value)
    standin.set_batch_fault(None)
    for auth in ("header", "bearer"):
        with pytest.raises(AuthenticationError) as auth_error:
            make_client(api_key=KEY[::-1], auth=auth).run({"a": request()})
        errors.append(auth_error.value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}", max_attempts=2)
    with pytest.raises(UpstreamServerError) as refused:
        client.run({"a": request()})
    errors.append(refused.value)

    assert len(errors) == 12 + 2 + 2 + 1
    for secret in (KEY, KEY[::-1]):
        for error in errors:
            assert secret not in str(error) and secret not in repr(error)
            assert error.__cause__ is None and error.__context__ is None
        assert secret not in caplog.text
        assert secret not in repr(client)
