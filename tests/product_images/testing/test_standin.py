"""The Gemini + OpenAI image API stand-in, exercised with raw httpx (not our clients)."""

from __future__ import annotations

import base64
import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from product_images.testing import standin as standin_module
from product_images.testing.fixtures.images import draw_product
from product_images.testing.standin import (
    CLI_KEEP_REQUESTS,
    StandinServer,
    _parser,
    output_size,
    set_image_cache_limit,
)

FLASH = "gemini-3.1-flash-image"
PRO = "gemini-3-pro-image"
NANO = "gemini-2.5-flash-image"


def photo_bytes(size: tuple[int, int] = (600, 400), fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    draw_product(size=size)[0].save(buffer, fmt)
    return buffer.getvalue()


PHOTO = photo_bytes()
PHOTO_B64 = base64.b64encode(PHOTO).decode()


def gemini_body(
    prompt: str = "Put this product in a bright kitchen scene",
    *,
    aspect: str | None = "1:1",
    image_size: str | None = None,
    snake: bool = False,
    image: str = PHOTO_B64,
    mime: str = "image/jpeg",
) -> dict[str, Any]:
    image_config: dict[str, str] = {}
    if aspect is not None:
        image_config["aspectRatio"] = aspect
    if image_size is not None:
        image_config["imageSize"] = image_size
    if snake:
        inline = {"inline_data": {"mime_type": mime, "data": image}}
        config = {
            "response_modalities": ["TEXT", "IMAGE"],
            "image_config": {
                {"aspectRatio": "aspect_ratio", "imageSize": "image_size"}[k]: v
                for k, v in image_config.items()
            },
        }
        return {
            "contents": [{"role": "user", "parts": [{"text": prompt}, inline]}],
            "generation_config": config,
        }
    return {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": prompt}, {"inlineData": {"mimeType": mime, "data": image}}],
            }
        ],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config},
    }


_client: list[httpx.Client] = []


@pytest.fixture(scope="module", autouse=True)
def _http() -> Iterator[None]:
    """One pooled client for the module: a fresh httpx client per call costs ~20 ms."""
    with httpx.Client(timeout=20.0) as client:
        _client.append(client)
        yield
        _client.clear()


def post(url: str, **kwargs: Any) -> httpx.Response:
    return _client[0].post(url, **kwargs)


@pytest.fixture
def server() -> Iterator[StandinServer]:
    with StandinServer(hang_seconds=30.0) as standin:
        yield standin


def gemini(
    server: StandinServer,
    body: Any,
    model: str = FLASH,
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> httpx.Response:
    sent = {"x-goog-api-key": server.api_key} if headers is None else headers
    url = f"{server.url}/v1beta/models/{model}:generateContent"
    if isinstance(body, bytes):
        return post(url, content=body, headers=sent, timeout=timeout)
    return post(url, json=body, headers=sent, timeout=timeout)


def image_parts(answer: dict[str, Any]) -> list[dict[str, Any]]:
    parts = answer["candidates"][0]["content"]["parts"]
    return [p for p in parts if "inlineData" in p or "inline_data" in p]


def decode(part: dict[str, Any]) -> Image.Image:
    blob = part.get("inlineData") or part["inline_data"]
    image = Image.open(io.BytesIO(base64.b64decode(blob["data"])))
    image.load()
    return image


def final_image(answer: dict[str, Any]) -> Image.Image:
    return decode([p for p in image_parts(answer) if not p.get("thought")][-1])


def rpc(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    return error


def detail_types(error: dict[str, Any]) -> list[str]:
    return [d["@type"].rsplit(".", 1)[-1] for d in error.get("details", [])]


# --------------------------------------------------------------------------- Gemini: success


@pytest.mark.parametrize(
    ("model", "aspect", "image_size", "expected", "tokens"),
    [
        (NANO, "4:5", None, (896, 1152), 1290),
        (PRO, "16:9", "2K", (2752, 1536), 1120),
        ("gemini-3-pro-image-preview", "1:1", "1K", (1024, 1024), 1120),
        (FLASH, "1:8", "1K", (384, 3072), 1120),
        ("gemini-3.1-flash-image-preview", "1:1", "512", (512, 512), 747),
        (FLASH, "3:4", None, (896, 1200), 1120),
    ],
)
def test_gemini_answers_a_png_of_the_official_size(
    server: StandinServer,
    model: str,
    aspect: str,
    image_size: str | None,
    expected: tuple[int, int],
    tokens: int,
) -> None:
    response = gemini(server, gemini_body(aspect=aspect, image_size=image_size), model)

    assert response.status_code == 200, response.text
    answer = response.json()
    candidate = answer["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    [part] = image_parts(answer)
    assert part["inlineData"]["mimeType"] == "image/png"
    image = decode(part)
    assert (image.format, image.size) == ("PNG", expected)
    assert output_size(model, aspect, image_size) == expected
    assert any("text" in p for p in candidate["content"]["parts"])
    usage = answer["usageMetadata"]
    assert usage["promptTokenCount"] >= 258
    assert {"modality": "IMAGE", "tokenCount": tokens} in usage["candidatesTokensDetails"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert answer["modelVersion"] == model
    assert answer["responseId"]


def test_both_key_spellings_give_the_same_image(server: StandinServer) -> None:
    camel = gemini(server, gemini_body(aspect="16:9", image_size="1K"))
    snake = gemini(server, gemini_body(aspect="16:9", image_size="1K", snake=True))

    assert camel.status_code == snake.status_code == 200, snake.text
    assert final_image(camel.json()).tobytes() == final_image(snake.json()).tobytes()
    assert final_image(snake.json()).size == (1376, 768)


def test_no_aspect_ratio_follows_the_input_shape(server: StandinServer) -> None:
    response = gemini(server, gemini_body(aspect=None), NANO)  # the photo is 600x400: 3:2

    assert final_image(response.json()).size == (1248, 832)


def test_image_only_modality_has_no_text_part(server: StandinServer) -> None:
    body = gemini_body()
    body["generationConfig"]["responseModalities"] = ["Image"]  # mixed case, as in the docs

    parts = gemini(server, body).json()["candidates"][0]["content"]["parts"]

    assert [list(p) for p in parts] == [["inlineData", "thoughtSignature"]]


def test_the_image_is_derived_from_the_input(server: StandinServer) -> None:
    white = final_image(gemini(server, gemini_body("On a pure white background")).json())
    scene = final_image(gemini(server, gemini_body("A cosy kitchen counter")).json())
    detail = final_image(gemini(server, gemini_body("A close-up of the texture")).json())

    assert white.convert("RGB").getpixel((2, 2)) == (255, 255, 255)
    assert scene.convert("RGB").getpixel((2, 2)) != (255, 255, 255)
    for image in (white, scene, detail):  # the red product sits in the middle of each
        rgb = np.asarray(image.convert("RGB"))
        red, green, blue = (int(v) for v in rgb[image.height // 2, image.width // 2])
        assert red > 120 > green and blue < 120
    pixels = np.asarray(detail.convert("RGB"), np.int32)
    red_share = np.mean((pixels[..., 0] > 120) & (pixels[..., 1] < 120))
    assert red_share > 0.9  # the detail crop fills the frame with the product


# --------------------------------------------------------------------------- Gemini: auth


def test_gemini_auth_accepts_header_bearer_and_query(server: StandinServer) -> None:
    body = gemini_body(image_size="512")
    url = f"{server.url}/v1beta/models/{FLASH}:generateContent"

    assert gemini(server, body).status_code == 200
    assert (
        gemini(server, body, headers={"Authorization": f"Bearer {server.api_key}"}).status_code
        == 200
    )
    assert post(url, params={"key": server.api_key}, json=body).status_code == 200


def test_gemini_missing_key_is_permission_denied(server: StandinServer) -> None:
    response = gemini(server, gemini_body(), headers={})

    assert response.status_code == 403
    assert rpc(response)["status"] == "PERMISSION_DENIED"


def test_gemini_wrong_key_is_api_key_invalid(server: StandinServer) -> None:
    response = gemini(server, gemini_body(), headers={"x-goog-api-key": "nope"})

    assert response.status_code == 400
    error = rpc(response)
    assert error["status"] == "INVALID_ARGUMENT"
    [info] = [d for d in error["details"] if d["@type"].endswith("ErrorInfo")]
    assert info["reason"] == "API_KEY_INVALID"
    assert "nope" not in response.text


# --------------------------------------------------------------------------- Gemini: validation


@pytest.mark.parametrize(
    ("model", "body", "words"),
    [
        (FLASH, gemini_body(image="not base64 !!"), "Base64"),
        (FLASH, gemini_body(image=base64.b64encode(b"not an image").decode()), "input image"),
        (FLASH, gemini_body(mime="image/gif"), "Unsupported MIME type: image/gif"),
        (NANO, gemini_body(image_size="1K"), "imageSize"),
        (FLASH, gemini_body(aspect="7:3"), "aspect ratio"),
        (PRO, gemini_body(aspect="1:8"), "aspect ratio"),
        (PRO, gemini_body(image_size="512"), "imageSize"),
        (FLASH, gemini_body(image_size="1k"), "imageSize"),
        (FLASH, {"contents": []}, "contents"),
        (FLASH, {"contents": [{"role": "user", "parts": []}]}, "parts"),
        (FLASH, {"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "role"),
        (FLASH, {"contents": [{"parts": [{}]}]}, "oneof"),
        (FLASH, {"contents": [{"parts": [{"text": "x", "inlineData": {}}]}]}, "oneof"),
        (FLASH, {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"foo": 1}}, "foo"),
        (
            FLASH,
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"responseModalities": ["AUDIO"]},
            },
            "AUDIO",
        ),
    ],
)
def test_gemini_rejects_invalid_requests(
    server: StandinServer, model: str, body: dict[str, Any], words: str
) -> None:
    response = gemini(server, body, model)

    assert response.status_code == 400, response.text
    error = rpc(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert words in error["message"]


def test_gemini_rejects_invalid_json(server: StandinServer) -> None:
    response = gemini(server, b'{"contents": [')

    assert response.status_code == 400
    assert rpc(response)["status"] == "INVALID_ARGUMENT"


def test_the_field_is_named_in_a_bad_request_detail(server: StandinServer) -> None:
    error = rpc(gemini(server, gemini_body(image_size="1K"), NANO))

    [bad] = [d for d in error["details"] if d["@type"].endswith("BadRequest")]
    assert bad["fieldViolations"][0]["field"] == "generation_config.image_config.image_size"


@pytest.mark.parametrize("model", ["gemini-9-ultra-image", "gpt-image-1"])
def test_gemini_unknown_model_is_not_found(server: StandinServer, model: str) -> None:
    response = gemini(server, gemini_body(), model)

    assert response.status_code == 404
    error = rpc(response)
    assert error["status"] == "NOT_FOUND"
    assert error["message"].startswith(f"models/{model} is not found for API version v1beta")


# --------------------------------------------------------------------------- Gemini: faults


@pytest.mark.parametrize(
    ("fault", "status", "rpc_status"),
    [
        ("429", 429, "RESOURCE_EXHAUSTED"),
        ("429-retryinfo", 429, "RESOURCE_EXHAUSTED"),
        ("500", 500, "INTERNAL"),
        ("503", 503, "UNAVAILABLE"),
        ("504", 504, "DEADLINE_EXCEEDED"),
        ("400", 400, "INVALID_ARGUMENT"),
        ("403", 403, "PERMISSION_DENIED"),
        ("404", 404, "NOT_FOUND"),
    ],
)
def test_gemini_error_faults(
    server: StandinServer, fault: str, status: int, rpc_status: str
) -> None:
    server.script(fault)

    response = gemini(server, gemini_body())

    assert response.status_code == status
    error = rpc(response)
    assert error["status"] == rpc_status
    types = detail_types(error)
    if fault.startswith("429"):
        assert types[:2] == ["QuotaFailure", "Help"]
    assert ("RetryInfo" in types) == (fault == "429-retryinfo")
    assert server.requests[-1].fault == fault


def test_retry_delay_can_be_scripted(server: StandinServer) -> None:
    server.script("429-retryinfo", "429-retryinfo:0.2s")

    first, second = (rpc(gemini(server, gemini_body())) for _ in range(2))

    delays = [[d["retryDelay"] for d in e["details"] if "retryDelay" in d] for e in (first, second)]
    assert delays == [["1s"], ["0.2s"]]


def test_malformed_is_a_200_with_invalid_json(server: StandinServer) -> None:
    server.script("malformed")

    response = gemini(server, gemini_body())

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_answers_without_an_image(server: StandinServer) -> None:
    server.script("text-only", "no-candidates", "safety", "blocked-prompt")

    text_only, empty, safety, blocked = (gemini(server, gemini_body()).json() for _ in range(4))

    [candidate] = text_only["candidates"]
    assert candidate["finishReason"] == "STOP"
    assert [list(p) for p in candidate["content"]["parts"]] == [["text"]]
    assert empty["candidates"] == []
    assert safety["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert "content" not in safety["candidates"][0]
    assert blocked["promptFeedback"]["blockReason"] == "SAFETY"
    assert "candidates" not in blocked
    for answer in (text_only, empty, safety, blocked):
        assert answer["usageMetadata"]["promptTokenCount"] > 0


def test_wrong_aspect_ignores_the_requested_ratio(server: StandinServer) -> None:
    server.script("wrong-aspect", "wrong-aspect")

    square = final_image(gemini(server, gemini_body(aspect="1:1", image_size="1K")).json())
    portrait = final_image(gemini(server, gemini_body(aspect="4:5", image_size="1K")).json())

    assert square.size == (1376, 768)
    assert portrait.size == (1024, 1024)


def test_shape_faults(server: StandinServer) -> None:
    server.script("snake-case", "text-first", "thought-images")

    snake, text_first, thinking = (
        gemini(server, gemini_body(aspect="4:5", image_size="1K"), PRO).json() for _ in range(3)
    )

    snake_parts = snake["candidates"][0]["content"]["parts"]
    assert any(p.get("inline_data", {}).get("mime_type") == "image/png" for p in snake_parts)
    assert not any("inlineData" in p for p in snake_parts)
    assert "text" in text_first["candidates"][0]["content"]["parts"][0]
    images = image_parts(thinking)
    assert [bool(p.get("thought")) for p in images] == [True, False]
    assert decode(images[0]).size != (928, 1152)
    assert final_image(thinking).size == (928, 1152)
    for answer in (snake, text_first):
        assert final_image(answer).size == (928, 1152)


# --------------------------------------------------------------------------- OpenAI


def openai(
    server: StandinServer,
    fields: dict[str, str] | None = None,
    images: list[tuple[str, Any]] | None = None,
    key: str | None = None,
) -> httpx.Response:
    data = {"model": "gpt-image-1", "prompt": "Put it on white", "size": "1536x1024"}
    data.update(fields or {})
    files = images if images is not None else [("image", ("photo.jpg", PHOTO, "image/jpeg"))]
    headers = {"Authorization": f"Bearer {key or server.api_key}"} if key != "" else {}
    return post(f"{server.url}/v1/images/edits", data=data, files=files, headers=headers)


def openai_image(answer: dict[str, Any], index: int = 0) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(answer["data"][index]["b64_json"])))
    image.load()
    return image


@pytest.mark.parametrize("size", ["1024x1024", "1536x1024", "1024x1536"])
def test_openai_edit_returns_the_requested_size(server: StandinServer, size: str) -> None:
    response = openai(server, {"size": size, "quality": "low"})

    assert response.status_code == 200, response.text
    answer = response.json()
    image = openai_image(answer)
    assert image.format == "PNG"
    assert "x".join(map(str, image.size)) == size
    usage = answer["usage"]
    assert usage["input_tokens_details"]["text_tokens"] > 0
    assert usage["input_tokens_details"]["image_tokens"] > 0
    assert usage["input_tokens"] == sum(usage["input_tokens_details"].values())
    assert usage["output_tokens"] in (272, 400, 408)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert isinstance(answer["created"], int)


def test_openai_accepts_several_images_n_and_format(server: StandinServer) -> None:
    images = [
        ("image[]", ("a.png", photo_bytes(fmt="PNG"), "image/png")),
        ("image[]", ("b.webp", photo_bytes(fmt="WEBP"), "image/webp")),
    ]

    response = openai(server, {"n": "2", "output_format": "jpeg", "size": "auto"}, images)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["data"]) == 2
    image = openai_image(answer, 1)
    assert (image.format, image.size) == ("JPEG", (1536, 1024))  # auto: the input is landscape


@pytest.mark.parametrize(
    ("fields", "images", "status", "code"),
    [
        ({"size": "512x512"}, None, 400, "invalid_value"),
        ({"quality": "ultra"}, None, 400, "invalid_value"),
        ({"foo": "bar"}, None, 400, "unknown_parameter"),
        ({"model": "gpt-image-9"}, None, 404, "model_not_found"),
        ({"model": FLASH}, None, 404, "model_not_found"),
        (
            {},
            [("image", ("photo", PHOTO, "application/octet-stream"))],
            400,
            "unsupported_file_mimetype",
        ),
        ({}, [("image", ("x.png", b"not a png", "image/png"))], 400, "invalid_image_file"),
        ({}, [("user", (None, b"someone"))], 400, "missing_required_parameter"),
        ({}, [], 400, "invalid_request"),  # no file at all: httpx sends a urlencoded form
    ],
)
def test_openai_rejects_invalid_requests(
    server: StandinServer,
    fields: dict[str, str],
    images: list[tuple[str, Any]] | None,
    status: int,
    code: str,
) -> None:
    response = openai(server, fields, images)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("key", ["", "wrong"])
def test_openai_auth(server: StandinServer, key: str) -> None:
    response = openai(server, key=key)

    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("invalid_api_key", "invalid_request_error")
    assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("429", 429, "rate_limit_exceeded"),
        ("429-retryinfo:2s", 429, "rate_limit_exceeded"),
        ("500", 500, None),
        ("503", 503, None),
        ("400", 400, "invalid_value"),
        ("403", 401, "invalid_api_key"),
        ("404", 404, "model_not_found"),
        ("safety", 400, "moderation_blocked"),
    ],
)
def test_openai_error_faults(
    server: StandinServer, fault: str, status: int, code: str | None
) -> None:
    server.script(fault)

    response = openai(server)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.headers.get("retry-after") == ("2" if fault.endswith("2s") else None)


def test_openai_answers_without_an_image(server: StandinServer) -> None:
    server.script("malformed", "text-only", "no-candidates", "wrong-aspect")

    malformed, text_only, empty, wrong = (openai(server, {"size": "1024x1024"}) for _ in range(4))

    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    assert text_only.json()["data"] == empty.json()["data"] == []
    assert openai_image(wrong.json()).size == (1536, 1024)


# --------------------------------------------------------------------------- timing and scripting


def test_latency_is_added(server: StandinServer) -> None:
    server.latency = 0.3
    started = time.monotonic()

    response = gemini(server, gemini_body(image_size="512"))

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_hang_blocks_neither_other_requests_nor_stop() -> None:
    server = StandinServer(hang_seconds=30.0)
    server.start()
    try:
        server.script("timeout")
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):  # the client gives up; the server notices
            gemini(server, gemini_body(image_size="512"), timeout=0.3)
        assert gemini(server, gemini_body(image_size="512")).status_code == 200

        server.script("timeout")
        outcome: list[BaseException | int] = []

        def hung_call() -> None:
            try:
                outcome.append(
                    gemini(server, gemini_body(image_size="512"), timeout=20).status_code
                )
            except httpx.HTTPError as error:
                outcome.append(error)

        thread = threading.Thread(target=hung_call)
        thread.start()
        time.sleep(0.3)
        assert gemini(server, gemini_body(image_size="512")).status_code == 200
        assert not outcome
    finally:
        stop_started = time.monotonic()
        server.stop()
    thread.join(timeout=5)
    assert time.monotonic() - stop_started < 2
    assert time.monotonic() - started < 5
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError)
    assert [r.fault for r in server.requests] == ["timeout", "ok", "timeout", "ok"]


def test_a_hang_answers_normally_after_hang_seconds() -> None:
    with StandinServer(hang_seconds=0.3) as server:
        server.script("timeout")
        started = time.monotonic()

        response = gemini(server, gemini_body(image_size="512"))

        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3


def test_script_is_fifo_then_normal(server: StandinServer) -> None:
    server.script("503", "429")
    server.script("ok", "500")

    statuses = [gemini(server, gemini_body(image_size="512")).status_code for _ in range(5)]

    assert statuses == [503, 429, 200, 500, 200]
    assert [r.fault for r in server.requests] == ["503", "429", "ok", "500", "ok"]
    assert server.calls == 5


def test_unknown_faults_and_rates_are_refused(server: StandinServer) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        server.script("418")
    with pytest.raises(ValueError):
        server.set_fault_rates({"429": 0.7, "503": 0.5})


def fault_sequence(server: StandinServer, count: int) -> list[str | None]:
    for _ in range(count):
        gemini(server, gemini_body(image_size="512"))
    return [r.fault for r in server.requests[-count:]]


def test_fault_rates_are_seeded() -> None:
    rates = {"429": 0.3, "503": 0.2, "text-only": 0.1}
    with StandinServer(seed=7) as one, StandinServer(seed=7) as two:
        one.set_fault_rates(rates)
        two.set_fault_rates(rates)
        first, second = fault_sequence(one, 20), fault_sequence(two, 20)
        one.reset()
        one.set_fault_rates(rates)
        again = fault_sequence(one, 20)

    assert first == second == again
    assert {"429", "503", "ok"} <= set(first)


def test_calls_and_reset(server: StandinServer) -> None:
    server.script("503", "503")
    gemini(server, gemini_body(image_size="512"))
    openai(server)
    _client[0].get(f"{server.url}/v1beta/models")  # not a generate request

    assert server.calls == 2
    assert len(server.requests) == 3
    recorded = server.requests[0]
    assert (recorded.method, recorded.route, recorded.status) == ("POST", "gemini", 503)
    assert recorded.headers["x-goog-api-key"] == server.api_key
    assert recorded.json["contents"][0]["parts"][0]["text"]
    assert server.requests[1].json is None and server.requests[1].body

    server.script("500")
    server.set_fault_rates({"429": 1.0})
    server.reset()

    assert server.calls == 0 and server.requests == []
    assert gemini(server, gemini_body(image_size="512")).status_code == 200


def test_a_bound_keeps_only_the_last_requests_and_calls_still_counts_all() -> None:
    with StandinServer(keep_requests=2) as bounded:
        bounded.script("503", "500", "ok")
        for _ in range(3):
            gemini(bounded, gemini_body(image_size="512"))

        assert [r.fault for r in bounded.requests] == ["500", "ok"]
        assert bounded.calls == 3
        bounded.reset()
        assert bounded.calls == 0 and bounded.requests == []


def test_without_a_bound_every_request_is_kept(server: StandinServer) -> None:
    for _ in range(3):
        gemini(server, gemini_body(image_size="512"))

    assert len(server.requests) == 3 and server.keep_requests is None


@pytest.mark.parametrize(("argv", "kept"), [([], CLI_KEEP_REQUESTS), (["--keep-requests", "0"], 0)])
def test_the_cli_keeps_a_bounded_number_of_requests(argv: list[str], kept: int) -> None:
    assert _parser().parse_args(argv).keep_requests == kept


@pytest.mark.parametrize("option", ["--keep-requests", "--cache-mb"])
@pytest.mark.parametrize("bad", ["-1", "many", "2.5"])
def test_the_cli_refuses_a_bad_bound(option: str, bad: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args([option, bad])


def test_the_cli_keeps_fewer_answers_than_the_default() -> None:
    assert 0 < _parser().parse_args([]).cache_mb * 1024 * 1024 < standin_module._CACHE_BYTES


def test_a_cache_limit_keeps_only_the_most_recent_answer(server: StandinServer) -> None:
    photos = [base64.b64encode(photo_bytes((300 + n, 200))).decode() for n in range(2)]
    try:
        set_image_cache_limit(0)
        for photo in photos:
            assert gemini(server, gemini_body(image=photo, image_size="512")).status_code == 200
        assert len(standin_module._cache) == 1
    finally:
        set_image_cache_limit(standin_module._CACHE_BYTES)


def test_cli_serves_until_stopped() -> None:
    command = [sys.executable, "-m", "product_images.testing.standin", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        response = post(
            f"{url}/v1beta/models/{FLASH}:generateContent",
            json=gemini_body(image_size="512"),
            headers={"x-goog-api-key": "test-key-123"},
        )
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


# --------------------------------------------------------------------------- Gemini: batch jobs


def batch_body(*requests: dict[str, Any], snake: bool = True, name: str = "refresh") -> dict:
    """A batchGenerateContent body with keys k0, k1, ... (either key spelling)."""
    inlined = [{"request": r, "metadata": {"key": f"k{i}"}} for i, r in enumerate(requests)]
    if snake:
        config: dict[str, Any] = {"input_config": {"requests": {"requests": inlined}}}
        return {"batch": {"display_name": name, **config}}
    return {"batch": {"displayName": name, "inputConfig": {"requests": {"requests": inlined}}}}


def create_batch(
    server: StandinServer, body: Any, model: str = FLASH, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {"x-goog-api-key": server.api_key} if headers is None else headers
    return post(f"{server.url}/v1beta/models/{model}:batchGenerateContent", json=body, headers=sent)


def get_batch(
    server: StandinServer, name: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {"x-goog-api-key": server.api_key} if headers is None else headers
    return _client[0].get(f"{server.url}/v1beta/{name}", headers=sent)


def entries(operation: dict[str, Any]) -> list[dict[str, Any]]:
    output = operation["response"]
    assert output["@type"].endswith("GenerateContentBatchOutput")
    inlined: list[dict[str, Any]] = output["inlinedResponses"]["inlinedResponses"]
    return inlined


def test_a_batch_is_pending_then_running_then_succeeded(server: StandinServer) -> None:
    server.batch_seconds = 0.4
    body = batch_body(gemini_body(aspect="4:5", image_size="1K"), gemini_body(aspect="16:9"))

    created = create_batch(server, body)
    started = time.monotonic()

    assert created.status_code == 200, created.text
    operation = created.json()
    name = operation["name"]
    metadata = operation["metadata"]
    assert name.startswith("batches/") and metadata["name"] == name and "done" not in operation
    assert metadata["@type"].endswith("google.ai.generativelanguage.v1beta.GenerateContentBatch")
    assert metadata["state"] == "BATCH_STATE_PENDING"
    assert (metadata["model"], metadata["displayName"]) == (f"models/{FLASH}", "refresh")
    assert metadata["batchStats"] == {"requestCount": "2", "pendingRequestCount": "2"}
    assert metadata["createTime"].endswith("Z")
    assert get_batch(server, name).json()["metadata"]["state"] == "BATCH_STATE_PENDING"
    time.sleep(max(0.0, started + 0.25 - time.monotonic()))
    assert get_batch(server, name).json()["metadata"]["state"] == "BATCH_STATE_RUNNING"
    time.sleep(max(0.0, started + 0.45 - time.monotonic()))
    done = get_batch(server, name).json()
    assert done["done"] is True and done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert done["metadata"]["batchStats"] == {"requestCount": "2", "successfulRequestCount": "2"}
    assert done["metadata"]["endTime"] >= done["metadata"]["createTime"]
    first, second = entries(done)
    assert (first["metadata"], second["metadata"]) == ({"key": "k0"}, {"key": "k1"})
    assert final_image(first["response"]).size == (928, 1152)
    assert final_image(second["response"]).size == (1376, 768)
    usage = first["response"]["usageMetadata"]
    assert {"modality": "IMAGE", "tokenCount": 1120} in usage["candidatesTokensDetails"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


def test_both_batch_key_spellings_are_accepted(server: StandinServer) -> None:
    server.batch_seconds = 0.0
    for snake in (True, False):
        created = create_batch(server, batch_body(gemini_body(image_size="512"), snake=snake))
        assert created.status_code == 200, created.text
        [entry] = entries(get_batch(server, created.json()["name"]).json())
        assert final_image(entry["response"]).size == (512, 512)


def test_batch_faults_apply_to_each_inner_request(server: StandinServer) -> None:
    server.batch_seconds = 0.0
    faults = ["ok", "500", "safety", "text-only", "429-retryinfo:2s", "timeout", "malformed"]
    server.script(*faults)

    created = create_batch(server, batch_body(*[gemini_body(image_size="512")] * len(faults)))
    done = get_batch(server, created.json()["name"]).json()

    ok, internal, safety, text, quota, deadline, malformed = entries(done)
    assert final_image(ok["response"]).size == (512, 512)
    assert internal["error"]["code"] == 13 and "internal error" in internal["error"]["message"]
    assert "status" not in internal["error"]  # a google.rpc.Status: gRPC code, no HTTP status
    assert safety["response"]["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert "text" in text["response"]["candidates"][0]["content"]["parts"][0]
    assert quota["error"]["code"] == 8
    assert "RetryInfo" in detail_types(quota["error"])
    assert deadline["error"]["code"] == 4
    assert set(malformed) == {"metadata"}
    assert done["metadata"]["batchStats"] == {
        "requestCount": "7",
        "successfulRequestCount": "4",
        "failedRequestCount": "3",
    }
    assert [e["metadata"]["key"] for e in entries(done)] == [f"k{i}" for i in range(7)]
    assert server.requests[0].batch_faults == faults and server.requests[0].fault is None


def test_batch_auth_model_and_validation(server: StandinServer) -> None:
    body = batch_body(gemini_body(image_size="512"))
    name = create_batch(server, body).json()["name"]

    missing = create_batch(server, body, headers={})
    wrong = create_batch(server, body, headers={"x-goog-api-key": "wrong-key"})
    assert (missing.status_code, rpc(missing)["status"]) == (403, "PERMISSION_DENIED")
    assert (wrong.status_code, detail_types(rpc(wrong))[0]) == (400, "ErrorInfo")
    assert get_batch(server, name, headers={}).status_code == 403
    assert get_batch(server, name, headers={"x-goog-api-key": "wrong-key"}).status_code == 400
    unknown = create_batch(server, body, model="gemini-9-image")
    assert unknown.status_code == 404 and "batchGenerateContent" in rpc(unknown)["message"]

    bad_inner = gemini_body(image_size="512", aspect="7:3")
    invalid = create_batch(server, batch_body(gemini_body(image_size="512"), bad_inner))
    assert invalid.status_code == 400
    error = rpc(invalid)
    assert error["message"].startswith("batch.input_config.requests.requests[1].request: ")
    field = error["details"][0]["fieldViolations"][0]["field"]
    assert field == (
        "batch.input_config.requests.requests[1].request.generation_config.image_config"
        ".aspect_ratio"
    )
    no_name = {"batch": {"input_config": body["batch"]["input_config"]}}
    from_file = {"batch": {"display_name": "x", "input_config": {"file_name": "files/abc"}}}
    empty = batch_body()
    for bad in (no_name, from_file, empty, {"batch": {**body["batch"], "extra": 1}}, {}):
        assert create_batch(server, bad).status_code == 400, bad
    assert get_batch(server, "batches/unknown").status_code == 404
    # Rejected batches still used up their inner requests' faults, as generate requests do.
    # first, missing, wrong, unknown, invalid (2), no_name, extra; from_file, empty, {}: none
    assert server.calls == 1 + 1 + 1 + 1 + 2 + 1 + 1


def test_batch_job_faults(server: StandinServer) -> None:
    server.batch_seconds = 0.0
    body = batch_body(gemini_body(image_size="512"))
    outcomes = {}
    for fault in ("expired", "failed", "cancelled", None):
        server.set_batch_fault(fault)
        name = create_batch(server, body).json()["name"]
        outcomes[fault] = get_batch(server, name).json()
    server.set_batch_fault("failed")
    server.script_batch("ok", "expired")
    scripted = [get_batch(server, create_batch(server, body).json()["name"]).json() for _ in "123"]

    states = {fault: op["metadata"]["state"] for fault, op in outcomes.items()}
    assert states == {
        "expired": "BATCH_STATE_EXPIRED",
        "failed": "BATCH_STATE_FAILED",
        "cancelled": "BATCH_STATE_CANCELLED",
        None: "BATCH_STATE_SUCCEEDED",
    }
    for fault in ("expired", "failed", "cancelled"):
        assert outcomes[fault]["done"] is True and "response" not in outcomes[fault]
    assert outcomes["failed"]["error"]["code"] == 13
    assert outcomes["cancelled"]["error"]["code"] == 1
    assert [op["metadata"]["state"] for op in scripted] == [
        "BATCH_STATE_SUCCEEDED",
        "BATCH_STATE_EXPIRED",
        "BATCH_STATE_FAILED",
    ]
    with pytest.raises(ValueError, match="unknown batch fault"):
        server.set_batch_fault("lost")
    with pytest.raises(ValueError, match="unknown batch fault"):
        server.script_batch("ok", "lost")


def test_a_batch_can_be_cancelled(server: StandinServer) -> None:
    server.batch_seconds = 60.0
    name = create_batch(server, batch_body(gemini_body(image_size="512"))).json()["name"]
    url = f"{server.url}/v1beta/{name}:cancel"

    cancelled = post(url, headers={"x-goog-api-key": server.api_key})

    assert (cancelled.status_code, cancelled.json()) == (200, {})
    operation = get_batch(server, name).json()
    assert operation["metadata"]["state"] == "BATCH_STATE_CANCELLED" and operation["done"]
    unknown = post(f"{server.url}/v1beta/batches/nope:cancel", headers={"x-goog-api-key": "x"})
    assert unknown.status_code == 400  # the key is checked first
    assert post(url, headers={}).status_code == 403


def test_batch_calls_count_inner_requests_and_reset_forgets_jobs(server: StandinServer) -> None:
    server.batch_seconds = 0.0
    server.set_batch_fault("expired")
    name = create_batch(server, batch_body(*[gemini_body(image_size="512")] * 3)).json()["name"]
    get_batch(server, name)
    gemini(server, gemini_body(image_size="512"))

    assert server.calls == 4  # three inner requests and one generateContent; the poll is free
    assert [r.route for r in server.requests] == ["gemini-batch", "gemini-batch-get", "gemini"]
    assert server.requests[0].json["batch"]["display_name"] == "refresh"
    assert server.requests[1].method == "GET" and server.requests[1].json is None

    server.reset()

    assert server.calls == 0 and get_batch(server, name).status_code == 404
    fresh = create_batch(server, batch_body(gemini_body(image_size="512"))).json()["name"]
    assert get_batch(server, fresh).json()["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
