"""GeminiClient end to end against the stand-in server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import base64
import io
import logging
import socket

import httpx
import pytest
from PIL import Image

from product_images.errors import (
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ContentBlockedError,
    GenerationError,
    GenerationTimeoutError,
    ModelNotFoundError,
    NoImageError,
    RateLimitedError,
    SettingsError,
    UpstreamServerError,
)
from product_images.generative.base import (
    Attempt,
    AttemptHooks,
    GenerationRequest,
    ImageInput,
)
from product_images.generative.clients import make_generator
from product_images.generative.gemini import GeminiClient, takes_image_size
from product_images.generative.gemini_errors import GEMINI
from product_images.generative.http_errors import Caller, transport_error
from product_images.generative.redact import Scrubber
from product_images.settings import Settings
from product_images.testing.standin import StandinServer, output_size

KEY = "AIzaSy-TEST-SECRET-Zq7Vb3Nc9Lx1"
MODEL = "gemini-3.1-flash-image"
PROMPT = "Place the product in a soft studio scene on a wooden table"


def _png(size: tuple[int, int] = (96, 120)) -> bytes:
    image = Image.new("RGB", size, (235, 235, 232))
    image.paste((180, 40, 40), (24, 30, 72, 96))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


PHOTO = _png()
REQUEST = GenerationRequest(
    prompt=PROMPT, images=(ImageInput(PHOTO, "image/png"),), aspect_ratio="4:5"
)


class FixedRandom:
    """rng.random() always 0.5: equal jitter gives exactly 3/4 of the ceiling."""

    def random(self) -> float:
        return 0.5


class Recorder:
    """Hooks that record every call, and a sleep that records instead of sleeping."""

    def __init__(self) -> None:
        self.before_calls = 0
        self.attempts: list[Attempt] = []
        self.sleeps: list[float] = []

    def hooks(self) -> AttemptHooks:
        def before() -> None:
            self.before_calls += 1

        return AttemptHooks(before=before, after=self.attempts.append)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    @property
    def outcomes(self) -> list[str]:
        return [attempt.outcome for attempt in self.attempts]


@pytest.fixture(scope="module")
def server():
    with StandinServer(api_key=KEY, hang_seconds=3.0) as standin:
        yield standin


@pytest.fixture
def standin(server):
    server.reset()
    server.latency = 0.0
    return server


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def make_client(standin, recorder):
    clients: list[GeminiClient] = []

    def make(**options) -> GeminiClient:
        settings = {
            "model": MODEL,
            "base_url": standin.url,
            "image_size": "1K",
            "max_attempts": 4,
            "base_delay": 0.01,
            "max_delay": 5.0,
            "read_timeout": 20.0,
            "sleep": recorder.sleep,
            "rng": FixedRandom(),
            **options,
        }
        client = GeminiClient(settings.pop("api_key", KEY), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# --------------------------------------------------------------------------- success


def test_a_scene_request_returns_the_image_its_usage_and_text(standin, make_client, recorder):
    result = make_client().generate(REQUEST, recorder.hooks())

    assert result.mime_type == "image/png"
    assert _size(result.image) == output_size(MODEL, "4:5", "1K")
    assert result.model == MODEL and result.attempts == 1
    assert "studio scene" in result.text
    usage = result.usage
    assert usage.prompt_tokens >= 258  # one input image
    assert usage.output_tokens >= 1120  # one 1K image from 3.1 Flash Image
    assert usage.total_tokens == usage.prompt_tokens + usage.output_tokens
    assert recorder.before_calls == 1
    [attempt] = recorder.attempts
    assert (attempt.backend, attempt.model, attempt.outcome) == ("gemini", MODEL, "ok")
    assert attempt.http_status == 200 and attempt.usage == usage and attempt.message == ""
    assert recorder.sleeps == []


def test_the_request_body_follows_the_documented_shape(standin, make_client):
    make_client().generate(REQUEST)

    [sent] = standin.requests
    assert sent.method == "POST"
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert "authorization" not in sent.headers
    assert sent.query == {}  # never ?key=: URLs end up in logs
    assert sent.json == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": PROMPT},
                    {
                        "inline_data": {
                            "mime_type": "image/png",
                            "data": base64.b64encode(PHOTO).decode(),
                        }
                    },
                ],
            }
        ],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "4:5", "imageSize": "1K"},
        },
    }


@pytest.mark.parametrize(
    ("model", "image_size", "sent"),
    [
        ("gemini-3.1-flash-image", "512", "512"),
        ("gemini-3-pro-image", "1K", "1K"),
        ("gemini-3-pro-image-preview", "1K", "1K"),
        ("gemini-2.5-flash-image", "2K", None),
        ("gemini-2.5-flash-image", None, None),
    ],
)
def test_image_size_is_sent_to_gemini_3_models_only(standin, make_client, model, image_size, sent):
    result = make_client(model=model, image_size=image_size).generate(REQUEST)

    image_config = standin.requests[-1].json["generationConfig"]["imageConfig"]
    assert image_config.get("imageSize") == sent
    assert image_config["aspectRatio"] == "4:5"
    assert _size(result.image) == output_size(model, "4:5", sent)


def test_the_request_image_size_overrides_the_client_default(standin, make_client):
    request = GenerationRequest(PROMPT, REQUEST.images, aspect_ratio="1:1", image_size="512")
    make_client(image_size="2K").generate(request)
    assert standin.requests[-1].json["generationConfig"]["imageConfig"] == {
        "aspectRatio": "1:1",
        "imageSize": "512",
    }


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-3.1-flash-image", True),
        ("gemini-3-pro-image-preview", True),
        ("models/gemini-3.1-flash-lite-image", True),
        ("gemini-2.5-flash-image", False),
        ("gemini-2.5-flash-image-preview", False),
        ("nano-banana-2", False),
    ],
)
def test_takes_image_size(model, expected):
    assert takes_image_size(model) is expected


def test_bearer_auth_sends_authorization_and_not_the_google_header(standin, make_client):
    make_client(auth="bearer").generate(REQUEST)
    headers = standin.requests[-1].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert "x-goog-api-key" not in headers


@pytest.mark.parametrize("fault", ["snake-case", "text-first", "thought-images"])
def test_answer_variants_are_parsed(standin, make_client, fault):
    standin.script(fault)
    result = make_client().generate(REQUEST)

    # The final image, at full size: not the half-size interim "thought" image.
    assert _size(result.image) == output_size(MODEL, "4:5", "1K")
    assert "studio scene" in result.text
    assert "Composing" not in result.text  # thought text is not the model's answer
    if fault == "thought-images":
        assert result.usage.output_tokens >= 1120 + 400  # thinking tokens are billed


def test_a_wrong_aspect_answer_is_returned_as_is_for_the_pipeline_to_check(standin, make_client):
    # Relays that drop aspectRatio answer 1:1; checking dimensions is the pipeline's job.
    standin.script("wrong-aspect")
    result = make_client().generate(REQUEST)
    assert _size(result.image) == output_size(MODEL, "1:1", "1K")


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("429", "rate_limited"),
        ("500", "upstream_error"),
        ("503", "upstream_error"),
        ("504", "upstream_error"),
        ("malformed", "no_image"),
        ("text-only", "no_image"),
        ("no-candidates", "no_image"),
    ],
)
def test_a_retryable_failure_then_ok_succeeds_on_the_second_attempt(
    standin, make_client, recorder, fault, reason
):
    standin.script(fault, "ok")
    result = make_client().generate(REQUEST, recorder.hooks())

    assert result.attempts == 2
    assert recorder.outcomes == [reason, "ok"]
    assert recorder.before_calls == 2
    assert standin.calls == 2
    assert len(recorder.sleeps) == 1


def test_503_then_ok_records_both_attempts(standin, make_client, recorder):
    standin.script("503", "ok")
    result = make_client().generate(REQUEST, recorder.hooks())

    assert result.attempts == 2
    assert recorder.outcomes == ["upstream_error", "ok"]
    first, second = recorder.attempts
    assert first.http_status == 503 and "UNAVAILABLE" in first.message
    assert second.http_status == 200 and second.usage == result.usage


def test_429_without_retry_info_waits_the_backoff(standin, make_client, recorder):
    standin.script("429", "ok")
    make_client(base_delay=0.4).generate(REQUEST)
    assert recorder.sleeps == [pytest.approx(0.3)]  # ceiling 0.4, equal jitter at 0.5


def test_429_with_retry_info_waits_the_server_hint(standin, make_client, recorder):
    standin.script("429-retryinfo:0.2s", "ok")
    result = make_client(base_delay=0.01).generate(REQUEST, recorder.hooks())
    assert recorder.sleeps == [pytest.approx(0.2)]
    assert result.attempts == 2 and recorder.outcomes == ["rate_limited", "ok"]


def test_the_retry_info_hint_is_on_the_error(standin, make_client):
    standin.script("429-retryinfo:1.5s")
    with pytest.raises(RateLimitedError) as caught:
        make_client(max_attempts=1).generate(REQUEST)
    assert caught.value.retry_after == pytest.approx(1.5)
    assert caught.value.status == 429


def test_a_long_server_hint_is_capped_at_the_max_delay(standin, make_client, recorder):
    standin.script("429-retryinfo:30s", "ok")
    make_client(max_delay=0.5).generate(REQUEST)
    assert recorder.sleeps == [pytest.approx(0.5)]


def test_exhausted_attempts_reraise_the_last_retryable_error(standin, make_client, recorder):
    standin.script("500", "429", "503")
    with pytest.raises(UpstreamServerError) as caught:
        make_client(max_attempts=3, base_delay=0.2).generate(REQUEST, recorder.hooks())

    assert caught.value.status == 503
    assert standin.calls == 3
    assert recorder.outcomes == ["upstream_error", "rate_limited", "upstream_error"]
    assert recorder.sleeps == [pytest.approx(0.15), pytest.approx(0.3)]  # doubling backoff


def test_no_image_is_retried_then_succeeds(standin, make_client, recorder):
    standin.script("text-only", "text-only", "ok")
    result = make_client().generate(REQUEST, recorder.hooks())
    assert result.attempts == 3
    assert recorder.outcomes == ["no_image", "no_image", "ok"]
    assert "I can't produce an image" in recorder.attempts[0].message
    assert recorder.attempts[0].usage.prompt_tokens > 0  # a text-only answer is still billed


def test_an_answer_that_never_has_an_image_ends_in_no_image_error(standin, make_client):
    standin.script("text-only", "no-candidates")
    with pytest.raises(NoImageError, match="no candidates") as caught:
        make_client(max_attempts=2).generate(REQUEST)
    assert caught.value.status == 200 and standin.calls == 2


# --------------------------------------------------------------------------- permanent errors


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("safety", ContentBlockedError, "IMAGE_SAFETY"),
        ("blocked-prompt", ContentBlockedError, "blockReason=SAFETY"),
        ("400", BadRequestError, "invalid argument"),
        ("403", AuthenticationError, "GEMINI_API_KEY"),
        ("404", ModelNotFoundError, "GEMINI_MODEL"),
    ],
)
def test_permanent_failures_are_not_retried(standin, make_client, recorder, fault, error, words):
    standin.script(fault, "ok")
    with pytest.raises(error) as caught:
        make_client().generate(REQUEST, recorder.hooks())

    assert words in str(caught.value)
    assert standin.calls == 1
    assert recorder.sleeps == []
    assert recorder.outcomes == [error.reason]


def test_an_unknown_model_names_the_setting_to_change(standin, make_client):
    with pytest.raises(ModelNotFoundError) as caught:
        make_client(model="gemini-2.0-flash-exp-image").generate(REQUEST)
    message = str(caught.value)
    assert message.startswith("Gemini gemini-2.0-flash-exp-image: model not found (HTTP 404")
    assert message.endswith(
        "): set GEMINI_MODEL (or PRODUCT_IMAGES_GEMINI_MODEL) to an image model, e.g. "
        f"gemini-3-pro-image; if the id is right, check GEMINI_BASE_URL={standin.url}"
    )
    assert caught.value.status == 404
    assert standin.calls == 1


def test_a_404_lists_the_current_models_of_the_catalogue(standin, monkeypatch):
    monkeypatch.delenv("GEMINI_MODEL", raising=False)
    settings = Settings(
        GEMINI_API_KEY=KEY, GEMINI_BASE_URL=standin.url, GEMINI_MODEL="gemini-9-image"
    )
    with make_generator(settings, "gemini") as client, pytest.raises(ModelNotFoundError) as caught:
        client.generate(REQUEST)
    assert (
        "to a current image model: gemini-3-pro-image, gemini-nano-banana-2.1, "
        "gemini-3.1-flash-lite-image; if the id is right" in str(caught.value)
    )


def test_a_wrong_key_says_to_check_gemini_api_key(standin, make_client):
    with pytest.raises(AuthenticationError) as caught:
        make_client(api_key="AIzaSy-WRONG-SECRET-kk3Jd8s0").generate(REQUEST)
    assert "GEMINI_API_KEY" in str(caught.value)
    assert "API key not valid" in str(caught.value)
    assert standin.calls == 1


def test_an_unsupported_image_size_names_the_setting(standin, make_client):
    with pytest.raises(BadRequestError) as caught:
        make_client(model="gemini-3-pro-image", image_size="512").generate(REQUEST)
    assert "PRODUCT_IMAGES_GEMINI_IMAGE_SIZE" in str(caught.value)


def test_an_unsupported_aspect_ratio_names_the_ratio(standin, make_client):
    request = GenerationRequest(PROMPT, REQUEST.images, aspect_ratio="1:8")
    with pytest.raises(BadRequestError) as caught:
        make_client(model="gemini-3-pro-image").generate(request)
    assert "aspect ratio" in str(caught.value) and "1:8" in str(caught.value)


# --------------------------------------------------------------------------- timeouts, budget


def test_a_hung_server_gives_a_timeout_quickly(standin, make_client, recorder):
    standin.script("timeout")
    with pytest.raises(GenerationTimeoutError):
        make_client(read_timeout=0.3, max_attempts=1).generate(REQUEST, recorder.hooks())
    [sent] = standin.requests  # one attempt, never answered: the client gave up before
    assert sent.status is None  # the stand-in's answer after its 3 s hang
    assert recorder.outcomes == ["timeout"]


def test_a_timeout_is_retried(standin, make_client, recorder):
    make_client().generate(REQUEST)  # the stand-in renders the answer once; then it is cached
    standin.script("timeout", "ok")
    result = make_client(read_timeout=0.3).generate(REQUEST, recorder.hooks())
    assert result.attempts == 2 and recorder.outcomes == ["timeout", "ok"]


def test_a_refused_connection_is_an_upstream_error(make_client, recorder):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UpstreamServerError):
        make_client(base_url=f"http://127.0.0.1:{port}", max_attempts=2).generate(
            REQUEST, recorder.hooks()
        )
    assert recorder.outcomes == ["upstream_error", "upstream_error"]


def test_budget_refusal_before_the_first_attempt_sends_nothing(standin, make_client):
    after: list[Attempt] = []

    def before() -> None:
        raise BudgetExceededError("run budget of $1.00 reached")

    with pytest.raises(BudgetExceededError, match="run budget"):
        make_client().generate(REQUEST, AttemptHooks(before=before, after=after.append))
    assert standin.calls == 0 and after == []


def test_budget_refusal_between_retries_stops_the_retries(standin, make_client):
    standin.script("503", "ok")
    calls: list[int] = []

    def before() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise BudgetExceededError("run budget reached")

    with pytest.raises(BudgetExceededError):
        make_client().generate(REQUEST, AttemptHooks(before=before))
    assert standin.calls == 1


# --------------------------------------------------------------------------- secrets


def test_the_key_appears_in_no_error_message_repr_or_log(standin, make_client, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    faults = ["429-retryinfo:0.01s", "500", "400", "403", "404", "malformed", "text-only"]
    faults += ["safety", "blocked-prompt", "timeout"]
    for fault in faults:
        standin.script(fault)
        with pytest.raises(GenerationError) as caught:
            make_client(max_attempts=1, read_timeout=0.3).generate(REQUEST, recorder.hooks())
        errors.append(caught.value)
    for auth in ("header", "bearer"):
        with pytest.raises(AuthenticationError) as caught:
            make_client(api_key=KEY[::-1], auth=auth).generate(REQUEST, recorder.hooks())
        errors.append(caught.value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}", max_attempts=2)
    with pytest.raises(UpstreamServerError) as caught:
        client.generate(REQUEST, recorder.hooks())
    errors.append(caught.value)

    assert len(recorder.attempts) == len(errors) + 1
    for secret in (KEY, KEY[::-1]):
        for error in errors:
            assert secret not in str(error) and secret not in repr(error)
            assert error.__cause__ is None and error.__context__ is None  # no httpx request
        for attempt in recorder.attempts:
            assert secret not in attempt.message and secret not in repr(attempt)
        assert secret not in caplog.text
        assert secret not in repr(client)


def test_messages_built_from_server_text_are_scrubbed():
    scrub = Scrubber([KEY, None, "abc"])
    assert scrub(f"bad key {KEY} in ?key={KEY}") == "bad key *** in ?key=***"
    assert scrub("abc stays: too short to be a key") == "abc stays: too short to be a key"
    caller = Caller(GEMINI, MODEL, "https://relay.example", "", scrub)
    error = transport_error(httpx.ConnectError(f"proxy refused {KEY}"), caller)
    assert isinstance(error, UpstreamServerError) and KEY not in str(error)
    timeout = transport_error(httpx.ReadTimeout("timed out"), caller)
    assert isinstance(timeout, GenerationTimeoutError)


@pytest.mark.parametrize("key", ["", "   ", "key with space", "key\nnewline", "clé-non-ascii"])
def test_unusable_keys_are_refused_without_echoing_them(key):
    with pytest.raises(SettingsError) as caught:
        GeminiClient(key)
    assert not key.strip() or key not in str(caught.value)


# --------------------------------------------------------------------------- settings


def test_make_generator_builds_a_working_gemini_client(standin, monkeypatch):
    for name in ("GEMINI_API_KEY", "GEMINI_MODEL", "GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        GEMINI_API_KEY=KEY,
        GEMINI_BASE_URL=standin.url,
        gemini_auth="bearer",
        gemini_image_size="512",
        max_attempts=2,
    )
    client = make_generator(settings, "gemini")
    try:
        assert isinstance(client, GeminiClient)
        # The catalogue's default; it has no 512, so the next size up is sent.
        assert (client.name, client.model) == ("gemini", "gemini-3-pro-image")
        assert client.image_size == "1K"
        result = client.generate(REQUEST)
    finally:
        client.close()
    assert _size(result.image) == output_size("gemini-3-pro-image", "4:5", "1K")
    assert standin.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_make_generator_without_a_key_is_a_settings_error(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("PRODUCT_IMAGES_GEMINI_API_KEY", raising=False)
    with pytest.raises(SettingsError, match="GEMINI_API_KEY"):
        make_generator(Settings(), "gemini")
    with pytest.raises(SettingsError, match="local"):
        make_generator(Settings(GEMINI_API_KEY=KEY), "local")


# --------------------------------------------------------------------------- retry helpers
