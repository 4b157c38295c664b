"""OpenAIImagesClient end to end against the stand-in server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import logging
import socket

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
from product_images.generative.base import Attempt, AttemptHooks, GenerationRequest, ImageInput
from product_images.generative.clients import make_generator
from product_images.generative.openai_images import OpenAIImagesClient, size_for_aspect_ratio
from product_images.settings import Settings
from product_images.testing.standin import StandinServer

KEY = "sk-proj-TEST-SECRET-4fQ9wLm2Xc7Rt0"
MODEL = "gpt-image-1"
PROMPT = "Place the product on a pure white background"


def _image(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", size, (235, 235, 232))
    image.paste((40, 90, 180), (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


PHOTO = _image((96, 120))
REFERENCE = _image((80, 80), "JPEG")
REQUEST = GenerationRequest(PROMPT, (ImageInput(PHOTO, "image/png"),), aspect_ratio="4:5")


class FixedRandom:
    def random(self) -> float:
        return 0.5


class Recorder:
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
    clients: list[OpenAIImagesClient] = []

    def make(**options) -> OpenAIImagesClient:
        settings = {
            "model": MODEL,
            "base_url": standin.url,
            "max_attempts": 4,
            "base_delay": 0.01,
            "max_delay": 5.0,
            "read_timeout": 20.0,
            "sleep": recorder.sleep,
            "rng": FixedRandom(),
            **options,
        }
        client = OpenAIImagesClient(settings.pop("api_key", KEY), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _form(sent) -> list[tuple[str, str | None, str, bytes]]:
    """(name, filename, content type, bytes) of each part of a recorded multipart body."""
    head = f"Content-Type: {sent.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + sent.body)
    assert message.is_multipart()
    return [
        (
            part.get_param("name", header="content-disposition"),
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    ]


# --------------------------------------------------------------------------- success


def test_an_edit_returns_the_image_and_its_usage(standin, make_client, recorder):
    result = make_client().generate(REQUEST, recorder.hooks())

    assert result.mime_type == "image/png"
    assert _size(result.image) == (1024, 1536)  # 4:5 is portrait
    assert (result.model, result.attempts, result.text) == (MODEL, 1, "")
    usage = result.usage
    assert usage.prompt_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.output_tokens
    [attempt] = recorder.attempts
    assert (attempt.backend, attempt.outcome, attempt.http_status) == ("openai", "ok", 200)
    assert attempt.usage == usage


def test_the_request_is_multipart_with_bearer_auth(standin, make_client):
    make_client().generate(REQUEST)

    [sent] = standin.requests
    assert (sent.method, sent.path) == ("POST", "/v1/images/edits")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    form = _form(sent)
    fields = {name: data.decode() for name, filename, _, data in form if filename is None}
    assert fields == {"model": MODEL, "prompt": PROMPT, "n": "1", "size": "1024x1536"}
    [image] = [part for part in form if part[1] is not None]
    assert image == ("image", "image0.png", "image/png", PHOTO)


def test_several_images_are_sent_as_repeated_image_brackets(standin, make_client):
    request = GenerationRequest(
        PROMPT, (ImageInput(PHOTO, "image/png"), ImageInput(REFERENCE, "image/jpeg"))
    )
    make_client().generate(request)
    images = [part for part in _form(standin.requests[-1]) if part[1] is not None]
    assert images == [
        ("image[]", "image0.png", "image/png", PHOTO),
        ("image[]", "image1.jpg", "image/jpeg", REFERENCE),
    ]


@pytest.mark.parametrize(
    ("aspect_ratio", "size"),
    [
        ("1:1", "1024x1024"),
        ("16:9", "1536x1024"),
        ("3:2", "1536x1024"),
        ("4:5", "1024x1536"),
        ("9:16", "1024x1536"),
    ],
)
def test_the_size_follows_the_aspect_ratio(standin, make_client, aspect_ratio, size):
    request = GenerationRequest(PROMPT, REQUEST.images, aspect_ratio=aspect_ratio)
    result = make_client().generate(request)
    assert size_for_aspect_ratio(aspect_ratio) == size
    fields = {name: data for name, filename, _, data in _form(standin.requests[-1]) if not filename}
    assert fields["size"].decode() == size
    width, height = (int(side) for side in size.split("x"))
    assert _size(result.image) == (width, height)


@pytest.mark.parametrize("ratio", ["square", "4:0", "a:b", "1:2:3"])
def test_an_invalid_aspect_ratio_is_refused_before_any_request(standin, make_client, ratio):
    with pytest.raises(BadRequestError):
        make_client().generate(GenerationRequest(PROMPT, REQUEST.images, aspect_ratio=ratio))
    assert standin.calls == 0


def test_a_base_url_ending_in_v1_is_accepted(standin, make_client):
    make_client(base_url=f"{standin.url}/v1/").generate(REQUEST)
    assert standin.requests[-1].path == "/v1/images/edits"


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
        ("timeout", "timeout"),
    ],
)
def test_a_retryable_failure_then_ok_succeeds(standin, make_client, recorder, fault, reason):
    options = {}
    if fault == "timeout":
        make_client().generate(REQUEST)  # the stand-in renders the answer once; then it is cached
        options["read_timeout"] = 0.5
    standin.script(fault, "ok")
    result = make_client(**options).generate(REQUEST, recorder.hooks())
    assert result.attempts == 2
    assert recorder.outcomes == [reason, "ok"]
    assert standin.calls == (3 if fault == "timeout" else 2)
    assert standin.requests[-1].status == 200 and len(recorder.sleeps) == 1


def test_429_without_retry_after_waits_the_backoff(standin, make_client, recorder):
    standin.script("429", "ok")
    make_client(base_delay=0.4).generate(REQUEST)
    assert recorder.sleeps == [pytest.approx(0.3)]


def test_429_with_retry_after_waits_the_server_hint(standin, make_client, recorder):
    standin.script("429-retryinfo:0.2s", "ok")
    make_client().generate(REQUEST)
    assert recorder.sleeps == [pytest.approx(0.2)]  # retry-after-ms; retry-after says 1


def test_the_retry_after_hint_is_on_the_error(standin, make_client):
    standin.script("429-retryinfo:2s")
    with pytest.raises(RateLimitedError) as caught:
        make_client(max_attempts=1).generate(REQUEST)
    assert caught.value.retry_after == pytest.approx(2.0)


def test_exhausted_attempts_reraise_the_last_retryable_error(standin, make_client, recorder):
    standin.script("503", "503", "text-only")
    with pytest.raises(NoImageError):
        make_client(max_attempts=3).generate(REQUEST, recorder.hooks())
    assert standin.calls == 3
    assert recorder.outcomes == ["upstream_error", "upstream_error", "no_image"]
    assert len(recorder.sleeps) == 2


# --------------------------------------------------------------------------- permanent errors


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("safety", ContentBlockedError, "moderation_blocked"),
        ("blocked-prompt", ContentBlockedError, "safety system"),
        ("400", BadRequestError, "Invalid value for 'prompt'"),
        ("403", AuthenticationError, "OPENAI_API_KEY"),
        ("404", ModelNotFoundError, "OPENAI_MODEL"),
    ],
)
def test_permanent_failures_are_not_retried(standin, make_client, recorder, fault, error, words):
    standin.script(fault, "ok")
    with pytest.raises(error) as caught:
        make_client().generate(REQUEST, recorder.hooks())
    assert words in str(caught.value)
    assert standin.calls == 1 and recorder.sleeps == []
    assert recorder.outcomes == [error.reason]


def test_an_unknown_model_names_openai_model(standin, make_client):
    with pytest.raises(ModelNotFoundError) as caught:
        make_client(model="gpt-image-9").generate(REQUEST)
    assert str(caught.value).startswith("OpenAI gpt-image-9: model not found (HTTP 404")
    assert "): set OPENAI_MODEL (or PRODUCT_IMAGES_OPENAI_MODEL) to " in str(caught.value)


def test_a_wrong_key_says_to_check_openai_api_key(standin, make_client):
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY") as caught:
        make_client(api_key="sk-WRONG-SECRET-77aa").generate(REQUEST)
    assert caught.value.status == 401 and standin.calls == 1


# --------------------------------------------------------------------------- timeouts, budget


def test_a_hung_server_gives_a_timeout_quickly(standin, make_client):
    standin.script("timeout")
    with pytest.raises(GenerationTimeoutError):
        make_client(read_timeout=0.3, max_attempts=1).generate(REQUEST)
    [sent] = standin.requests  # one attempt, never answered: the client gave up before
    assert sent.status is None  # the stand-in's answer after its 3 s hang


def test_budget_refusal_sends_nothing(standin, make_client):
    def before() -> None:
        raise BudgetExceededError("run budget reached")

    with pytest.raises(BudgetExceededError):
        make_client().generate(REQUEST, AttemptHooks(before=before))
    assert standin.calls == 0


def test_the_key_appears_in_no_error_message_repr_or_log(standin, make_client, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[GenerationError] = []
    for fault in ["429-retryinfo:0.01s", "500", "400", "403", "404", "malformed", "text-only"]:
        standin.script(fault)
        with pytest.raises(GenerationError) as caught:
            make_client(max_attempts=1).generate(REQUEST, recorder.hooks())
        errors.append(caught.value)
    for fault in ["safety", "timeout"]:
        standin.script(fault)
        with pytest.raises(GenerationError) as caught:
            make_client(max_attempts=1, read_timeout=0.3).generate(REQUEST, recorder.hooks())
        errors.append(caught.value)
    with pytest.raises(AuthenticationError) as caught:
        make_client(api_key=KEY[::-1]).generate(REQUEST, recorder.hooks())
    errors.append(caught.value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(UpstreamServerError) as caught:
        client.generate(REQUEST, recorder.hooks())
    errors.append(caught.value)

    assert len(recorder.attempts) == len(errors)
    for secret in (KEY, KEY[::-1]):
        for error in errors:
            assert secret not in str(error) and secret not in repr(error)
            assert error.__cause__ is None and error.__context__ is None
        for attempt in recorder.attempts:
            assert secret not in attempt.message
        assert secret not in caplog.text and secret not in repr(client)


# --------------------------------------------------------------------------- settings


def test_make_generator_builds_a_working_openai_client(standin, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=standin.url, max_attempts=2)
    client = make_generator(settings, "openai")
    try:
        assert isinstance(client, OpenAIImagesClient)
        assert (client.name, client.model) == ("openai", MODEL)
        result = client.generate(REQUEST)
    finally:
        client.close()
    assert _size(result.image) == (1024, 1536)


def test_make_generator_without_an_openai_key_is_a_settings_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("PRODUCT_IMAGES_OPENAI_API_KEY", raising=False)
    with pytest.raises(SettingsError, match="OPENAI_API_KEY"):
        make_generator(Settings(), "openai")
