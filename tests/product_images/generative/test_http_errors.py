"""The one HTTP error mapping: every status gives the same typed error from both APIs.

End to end through the real clients against the stand-in server on 127.0.0.1 (which injects
the statuses), plus each provider's own error shapes read from real httpx responses.
"""

from __future__ import annotations

import io
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from PIL import Image

from product_images.errors import (
    AuthenticationError,
    BadRequestError,
    ContentBlockedError,
    GenerationError,
    GenerationTimeoutError,
    ModelNotFoundError,
    NoImageError,
    PermanentGenerationError,
    RateLimitedError,
    RetryableGenerationError,
    UpstreamServerError,
)
from product_images.generative.base import GenerationRequest, ImageInput
from product_images.generative.batch_api import GeminiBatchClient
from product_images.generative.gemini import GeminiClient
from product_images.generative.gemini_errors import GEMINI, failure_from_rpc_status
from product_images.generative.http import HttpImageGenerator
from product_images.generative.http_errors import (
    STATUS_TABLE,
    Caller,
    error_for,
    error_from_response,
    parse_retry_after,
    parse_retry_delay,
    rule_for,
)
from product_images.generative.openai_errors import OPENAI
from product_images.generative.openai_images import OpenAIImagesClient
from product_images.generative.redact import Scrubber
from product_images.testing.standin import StandinServer

KEY = "sk-TEST-SECRET-shared-Hq3Lm8Zr2"
MODELS = {"gemini": "gemini-3.1-flash-image", "openai": "gpt-image-1"}
PROVIDERS = {"gemini": GEMINI, "openai": OPENAI}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 80), (200, 60, 60)).save(buffer, "PNG")
    return buffer.getvalue()


REQUEST = GenerationRequest("a product on white", (ImageInput(_png(), "image/png"),), "4:5")

#: What each injected fault must give, whichever API answered it. Written out, not derived
#: from the table under test.
SAME_ERROR: dict[str, type[GenerationError]] = {
    "http:301": BadRequestError,
    "http:307": BadRequestError,
    "400": BadRequestError,
    "http:400": BadRequestError,
    "http:401": AuthenticationError,
    "http:402": PermanentGenerationError,
    "403": AuthenticationError,
    "http:403": AuthenticationError,
    "404": ModelNotFoundError,
    "http:404": ModelNotFoundError,
    "http:408": GenerationTimeoutError,
    "http:409": BadRequestError,
    "http:418": BadRequestError,
    "429": RateLimitedError,
    "http:429": RateLimitedError,
    "http:499": UpstreamServerError,
    "500": UpstreamServerError,
    "http:500": UpstreamServerError,
    "http:501": UpstreamServerError,
    "http:502": UpstreamServerError,
    "503": UpstreamServerError,
    "http:503": UpstreamServerError,
    "504": UpstreamServerError,
    "http:504": UpstreamServerError,
    "http:599": UpstreamServerError,
    "malformed": NoImageError,
    "text-only": NoImageError,
    "no-candidates": NoImageError,
    "safety": ContentBlockedError,
    "blocked-prompt": ContentBlockedError,
    "timeout": GenerationTimeoutError,
}

#: The statuses the backoff loop tries again: these and every 5xx (the rest fail at once).
RETRIED = {408, 429, 499, 500, 502, 503, 504}


@pytest.fixture(scope="module")
def server():
    with StandinServer(api_key=KEY, hang_seconds=2.0, batch_seconds=0.05) as standin:
        yield standin


@pytest.fixture
def standin(server):
    server.reset()
    return server


@pytest.fixture
def make_client(standin):
    clients: list[HttpImageGenerator] = []

    def make(provider: str, **options) -> HttpImageGenerator:
        cls = GeminiClient if provider == "gemini" else OpenAIImagesClient
        settings = {"model": MODELS[provider], "base_url": standin.url, "max_attempts": 1}
        client = cls(options.pop("api_key", KEY), **{**settings, "read_timeout": 0.5, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _failure(client: HttpImageGenerator) -> GenerationError:
    with pytest.raises(GenerationError) as caught:
        client.generate(REQUEST)
    return caught.value


@pytest.mark.parametrize("provider", ["gemini", "openai"])
@pytest.mark.parametrize(("fault", "expected"), SAME_ERROR.items())
def test_each_fault_gives_the_same_error_from_both_apis(
    standin, make_client, provider, fault, expected
):
    standin.script(fault)
    error = _failure(make_client(provider))

    assert type(error) is expected
    assert KEY not in str(error)
    if fault.startswith("http:"):
        status = int(fault.removeprefix("http:"))
        assert error.status == status
        retried = status in RETRIED or status >= 500
        assert isinstance(error, RetryableGenerationError) == retried


@pytest.mark.parametrize(
    ("provider", "fault", "words"),
    [
        ("gemini", "http:401", "check GEMINI_API_KEY and gemini_auth"),
        ("openai", "http:401", "check OPENAI_API_KEY"),
        ("gemini", "http:404", "set GEMINI_MODEL (or PRODUCT_IMAGES_GEMINI_MODEL) to"),
        ("openai", "http:404", "set OPENAI_MODEL (or PRODUCT_IMAGES_OPENAI_MODEL) to"),
        ("gemini", "http:307", "redirected to https://moved.invalid/v1beta"),
        ("openai", "http:307", "check OPENAI_BASE_URL"),
        ("gemini", "429", "lower PRODUCT_IMAGES_GEMINI_RPM"),
        ("openai", "429", "lower PRODUCT_IMAGES_OPENAI_RPM"),
        ("gemini", "http:402", "add credits or billing"),
        ("openai", "http:402", "add credits or billing"),
        ("gemini", "http:503", "HTTP 503 UNAVAILABLE"),
        ("openai", "http:503", "request id req_"),
    ],
)
def test_the_message_says_what_to_do_in_the_apis_own_words(
    standin, make_client, provider, fault, words
):
    standin.script(fault)
    assert words in str(_failure(make_client(provider)))


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_the_servers_delay_is_on_the_error(standin, make_client, provider):
    standin.script("429-retryinfo:0.2s")  # Gemini: RetryInfo; OpenAI: retry-after-ms
    error = _failure(make_client(provider))
    assert isinstance(error, RateLimitedError) and error.retry_after == pytest.approx(0.2)


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_a_wrong_key_is_an_authentication_error_from_both(make_client, provider):
    error = _failure(make_client(provider, api_key="sk-WRONG-key-00000000"))
    assert isinstance(error, AuthenticationError)  # Gemini says so in a 400, OpenAI in a 401
    assert ("GEMINI_API_KEY" if provider == "gemini" else "OPENAI_API_KEY") in str(error)


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_a_refused_connection_is_an_upstream_error_from_both(make_client, provider):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _failure(make_client(provider, base_url=f"http://127.0.0.1:{port}"))
    assert type(error) is UpstreamServerError and "connection failed" in str(error)


#: The statuses Google's mapping has a gRPC code for (what a Batch API entry carries); 402, 408
#: and 418 have none, so a batch entry cannot say them.
GRPC_STATUSES = (400, 401, 403, 404, 409, 429, 499, 500, 501, 502, 503, 504)


@pytest.mark.parametrize("fault", [f"http:{status}" for status in GRPC_STATUSES])
def test_a_batch_request_fails_as_the_synchronous_call_does(standin, fault):
    standin.script(fault)
    options = {"base_url": standin.url, "model": MODELS["gemini"], "poll_initial": 0.02}
    with GeminiBatchClient(KEY, poll_max=0.05, timeout=30.0, **options) as client:
        outcome = client.run({"one": REQUEST})["one"]
    assert type(outcome) is SAME_ERROR[fault]  # the gRPC code maps back to the same status


# --------------------------------------------------------------------------- the table


def test_the_table_retries_exactly_the_transient_statuses():
    assert {status for status, rule in STATUS_TABLE.items() if rule.retryable} == RETRIED
    assert rule_for(302).error is BadRequestError and not rule_for(302).retryable
    assert rule_for(451).error is BadRequestError
    assert rule_for(507).error is UpstreamServerError and rule_for(507).retryable


def _caller(provider: str) -> Caller:
    scrub = Scrubber([KEY])
    return Caller(PROVIDERS[provider], MODELS[provider], "https://api.example", "m-1", scrub)


WRAPPED = "an error a relay wrapped in a 200: its own code, else its status name, says which"


@pytest.mark.parametrize(
    ("provider", "status", "body", "expected"),
    [
        ("gemini", 200, {"error": {"code": 429, "message": "q"}}, RateLimitedError),
        ("gemini", 200, {"error": {"status": "UNAUTHENTICATED"}}, AuthenticationError),
        ("gemini", 200, [{"error": {"code": 503}}], UpstreamServerError),
        ("gemini", 400, {"error": {"status": "FAILED_PRECONDITION"}}, BadRequestError),
        ("gemini", 502, "<html>Bad gateway</html>", UpstreamServerError),
        ("openai", 429, {"error": {"code": "insufficient_quota"}}, PermanentGenerationError),
        ("openai", 400, {"error": {"type": "content_policy_violation"}}, ContentBlockedError),
        ("openai", 404, {"detail": "Not Found"}, ModelNotFoundError),
        ("openai", 502, b"\xff\xfe not text", UpstreamServerError),
    ],
)
def test_provider_specifics_on_top_of_the_table(provider, status, body, expected):
    if isinstance(body, bytes | str):
        response = httpx.Response(status, content=body)
    else:
        response = httpx.Response(status, json=body)
    payload = body if status == 200 else None  # see WRAPPED
    assert type(error_from_response(response, _caller(provider), payload)) is expected


def test_the_messages_say_what_to_fix():
    size = httpx.Response(400, json={"error": {"message": "imageSize 512 not supported"}})
    assert "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE" in str(error_from_response(size, _caller("gemini")))
    billing = httpx.Response(400, json={"error": {"status": "FAILED_PRECONDITION"}})
    assert "enable billing" in str(error_from_response(billing, _caller("gemini")))
    leaked = httpx.Response(500, json={"error": {"message": f"bad key {KEY}"}})
    assert KEY not in str(error_from_response(leaked, _caller("gemini")))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"code": 8, "message": "quota"}, RateLimitedError),  # gRPC RESOURCE_EXHAUSTED
        ({"code": 16}, AuthenticationError),  # gRPC UNAUTHENTICATED
        ({"code": 4}, UpstreamServerError),  # DEADLINE_EXCEEDED: HTTP 504
        ({"code": 429}, RateLimitedError),  # a relay's HTTP status in a Status
        ({"code": 3, "status": "NOT_FOUND"}, ModelNotFoundError),  # the name wins
        ({}, UpstreamServerError),
    ],
)
def test_a_batch_status_maps_as_its_http_equivalent(status, expected):
    error = error_for(failure_from_rpc_status(status), _caller("gemini"))
    assert type(error) is expected


def test_the_retry_info_delay_wins_over_retry_after():
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": details}}
    response = httpx.Response(429, json=body, headers={"retry-after": "9"})
    error = error_from_response(response, _caller("gemini"))
    assert isinstance(error, RateLimitedError) and error.retry_after == 3.0
    plain = httpx.Response(429, json={"error": {"code": 429}}, headers={"retry-after": "9"})
    assert error_from_response(plain, _caller("gemini")).retry_after == 9.0  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- server hints


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("15s", 15.0),
        ("0.5s", 0.5),
        ("1.200s", 1.2),
        ("0s", 0.0),
        ("58.912345678s", 58.912345678),
        (" 3s ", 3.0),
        ("15", None),
        ("-1s", None),
        ("1.5ms", None),
        ("s", None),
        ("", None),
        ("1e3s", None),
    ],
)
def test_parse_retry_delay(value, seconds):
    parsed = parse_retry_delay(value)
    assert parsed == (None if seconds is None else pytest.approx(seconds))


def test_parse_retry_after_takes_seconds_or_an_http_date():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    for bad in (None, "", "soon", "-3", "nan"):
        assert parse_retry_after(bad) is None
