"""Gemini Batch API: many generateContent requests in one job, at half the price.

    POST {base_url}/v1beta/models/{model}:batchGenerateContent   -> Operation "batches/<id>"
    GET  {base_url}/v1beta/batches/<id>                           -> Operation, metadata.state
    POST {base_url}/v1beta/batches/<id>:cancel                    (on timeout, best effort)

Inline requests only: each job's body is
``{"batch": {"display_name": ..., "input_config": {"requests": {"requests": [{"request":
<the generateContent body GeminiClient sends>, "metadata": {"key": <caller's key>}}, ...]}}}}``,
and `run` splits the requests over several jobs when one body would pass `max_payload_bytes`
(the API caps an inline batch at 20 MB). Results come back inline in the finished Operation:
``response.inlinedResponses.inlinedResponses`` (the real API's nesting; a plain list under
``response.inlinedResponses``, the ``metadata.output`` mirror and a bare GenerateContentBatch
resource are read too), each entry with the request's metadata and either a
GenerateContentResponse or a google.rpc.Status ``error``. Entries are matched to keys by
``metadata.key``, or by position (the API keeps the request order) when the keys are missing.

Every answer is parsed exactly as GeminiClient parses a synchronous one (the same code: this
client is a GeminiClient), and every per-request error maps to the same typed error as the HTTP
status it stands for. A job that ends FAILED, CANCELLED or EXPIRED, or is not done within
`timeout`, raises BatchJobError (retryable): send its requests through `generate` instead.
The API key never appears in a message, a repr or a log line.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from product_images.errors import (
    BatchJobError,
    GenerationError,
    NoImageError,
    RetryableGenerationError,
    SettingsError,
    UpstreamServerError,
)
from product_images.generative.backoff import AttemptInfo
from product_images.generative.base import GenerationRequest, GenerationResult
from product_images.generative.gemini import (
    GeminiClient,
    build_request_body,
    parse_usage,
)
from product_images.generative.gemini_errors import failure_from_rpc_status
from product_images.generative.http_errors import (
    error_for,
    error_from_response,
    error_message,
    read_json,
)

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "TERMINAL_STATES",
    "BatchJobStatus",
    "BatchOutcome",
    "GeminiBatchClient",
    "inlined_responses",
    "status_from_operation",
]

log = logging.getLogger(__name__)

PENDING = "BATCH_STATE_PENDING"
RUNNING = "BATCH_STATE_RUNNING"
SUCCEEDED = "BATCH_STATE_SUCCEEDED"
FAILED = "BATCH_STATE_FAILED"
CANCELLED = "BATCH_STATE_CANCELLED"
EXPIRED = "BATCH_STATE_EXPIRED"
UNSPECIFIED = "BATCH_STATE_UNSPECIFIED"
TERMINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})

#: Under the API's 20 MB inline cap, with room for the JSON around the requests.
DEFAULT_MAX_PAYLOAD_BYTES = 18 * 1024 * 1024

#: What one key of `run` comes back as.
BatchOutcome = GenerationResult | GenerationError

#: SDK spellings (JOB_STATE_*, Vertex) of the REST states.
_STATE_ALIASES = {
    "QUEUED": "PENDING",
    "PARTIALLY_SUCCEEDED": "SUCCEEDED",
    "CANCELLING": "RUNNING",
    "PAUSED": "RUNNING",
    "UPDATING": "RUNNING",
}

_JOB_NAME = re.compile(r"^(?:batches/)?([A-Za-z0-9][A-Za-z0-9._~-]*)$")


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class BatchJobStatus:
    """A batch job as one poll saw it."""

    name: str  # "batches/<id>"
    state: str  # BATCH_STATE_* (SDK spellings normalised)
    request_count: int = 0
    succeeded_count: int = 0
    failed_count: int = 0
    pending_count: int = 0
    error: str = ""  # the job's own error message, if it has one (scrubbed)
    #: The Operation as received: its results are what `GeminiBatchClient.results` reads.
    operation: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True in a terminal state: SUCCEEDED, FAILED, CANCELLED or EXPIRED."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED


def _get(mapping: Any, camel: str, snake: str) -> Any:
    """A field under its camelCase or snake_case name; None when `mapping` is not a mapping."""
    if not isinstance(mapping, Mapping):
        return None
    value = mapping.get(camel)
    return mapping.get(snake) if value is None else value


def _count(value: Any) -> int:
    try:
        return max(int(value), 0)  # int64 counts are JSON strings
    except (TypeError, ValueError):
        return 0


def _normalise_state(value: Any) -> str:
    text = str(value or "").strip().upper()
    for prefix in ("BATCH_STATE_", "JOB_STATE_"):
        text = text.removeprefix(prefix)
    text = _STATE_ALIASES.get(text, text)
    return f"BATCH_STATE_{text}" if text else UNSPECIFIED


def status_from_operation(
    operation: Mapping[str, Any], job: str = "", scrub: Callable[[str], str] = str
) -> BatchJobStatus:
    """The BatchJobStatus of a batches.get (or create) answer.

    Reads a long-running Operation (``metadata`` = GenerateContentBatch, ``done``,
    ``response`` / ``error``) and also a bare GenerateContentBatch resource. A ``done``
    Operation whose state is missing or not terminal counts as FAILED when it has an ``error``
    and SUCCEEDED otherwise.
    """
    metadata = operation.get("metadata")
    batch: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else operation
    state = _normalise_state(batch.get("state") or operation.get("state"))
    error = operation.get("error")
    if operation.get("done") is True and state not in TERMINAL_STATES:
        state = FAILED if isinstance(error, Mapping) else SUCCEEDED
    stats = _get(batch, "batchStats", "batch_stats") or _get(operation, "batchStats", "batch_stats")
    name = operation.get("name") or batch.get("name") or job
    message = ""
    if isinstance(error, Mapping) and error.get("message"):
        message = scrub(error_message(str(error["message"]), 300))
    return BatchJobStatus(
        name=str(name),
        state=state,
        request_count=_count(_get(stats, "requestCount", "request_count")),
        succeeded_count=_count(_get(stats, "successfulRequestCount", "successful_request_count")),
        failed_count=_count(_get(stats, "failedRequestCount", "failed_request_count")),
        pending_count=_count(_get(stats, "pendingRequestCount", "pending_request_count")),
        error=message,
        operation=operation,
    )


def inlined_responses(operation: Mapping[str, Any]) -> list[Any] | None:
    """The inline results of a finished job, in request order; None when it has none.

    Looked for in ``response`` (the Operation's result), then in the GenerateContentBatch's
    ``output`` (``metadata.output``, or ``output`` / ``dest`` of a bare resource), each either
    nested (``inlinedResponses: {inlinedResponses: [...]}``, the real API) or a plain list.
    """
    metadata = operation.get("metadata")
    holders = [
        operation.get("response"),
        _get(metadata, "output", "output"),
        operation.get("output"),
        operation.get("dest"),
    ]
    for holder in holders:
        inlined = _get(holder, "inlinedResponses", "inlined_responses")
        if isinstance(inlined, Mapping):
            inlined = _get(inlined, "inlinedResponses", "inlined_responses")
        if isinstance(inlined, list):
            return inlined
    return None


# --------------------------------------------------------------------------- client


class GeminiBatchClient(GeminiClient):
    """GeminiClient plus the Batch API: `run` for many requests at half price, `generate`
    (inherited) for the synchronous fallback."""

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        poll_initial: float = 10.0,
        poll_max: float = 300.0,
        timeout: float = 24 * 3600.0,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        clock: Callable[[], float] = time.monotonic,
        **client_options: Any,
    ) -> None:
        """`poll_initial` is the first wait between polls, doubled after each poll up to
        `poll_max`; `timeout` (seconds) bounds a whole `run`, submission included; `clock` is
        injectable for tests. `client_options` are GeminiClient's (model, base_url, auth,
        image_size, timeouts, proxy, retry policy, transport, sleep, rng)."""
        super().__init__(api_key, **client_options)
        if not poll_initial > 0 or not poll_max >= poll_initial:
            raise SettingsError(
                f"batch polling needs 0 < poll_initial <= poll_max, got {poll_initial} and "
                f"{poll_max}"
            )
        if not timeout > 0:
            raise SettingsError(f"the batch timeout must be positive, got {timeout}")
        if max_payload_bytes <= 0:
            raise SettingsError(f"max_payload_bytes must be positive, got {max_payload_bytes}")
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.timeout = timeout
        self.max_payload_bytes = max_payload_bytes
        self._clock = clock
        self.batch_url = (
            f"{self.base_url}/v1beta/models/{quote(self.model, safe='')}:batchGenerateContent"
        )

    def __repr__(self) -> str:
        return (
            f"GeminiBatchClient(model={self.model!r}, base_url={self.base_url!r}, "
            f"auth={self.auth!r})"
        )

    # ------------------------------------------------------------------ run

    def run(
        self, requests: Mapping[str, GenerationRequest], *, display_name: str = "product-images"
    ) -> dict[str, BatchOutcome]:
        """One outcome per key: the GenerationResult, or the typed GenerationError of that
        request (ContentBlockedError, NoImageError, RateLimitedError, ...).

        Submits one job per ~`max_payload_bytes` of requests, polls them all with capped
        exponential backoff until each is done, and maps the answers back to the keys.
        Raises BatchJobError when a job ends FAILED, CANCELLED or EXPIRED or when `timeout`
        passes (unfinished jobs are then cancelled): its `unfinished` keys should be sent
        through `generate`, its `results` are what the other jobs returned. Submission
        failures raise the typed errors GeminiClient raises, after the same retries (jobs
        already submitted for this run are cancelled first).
        """
        if not requests:
            return {}
        started = self._clock()
        chunks = self._chunks(self._entries(requests))
        jobs: dict[str, list[str]] = {}
        for number, chunk in enumerate(chunks, 1):
            label = display_name if len(chunks) == 1 else f"{display_name} {number}/{len(chunks)}"
            try:
                name = self._submit(chunk, label)
            except GenerationError:
                self._cancel_quietly(jobs)
                raise
            jobs[name] = [key for key, _ in chunk]
        log.info(
            "Gemini batch %s: %d requests in %d job(s): %s",
            self.model,
            len(requests),
            len(jobs),
            ", ".join(jobs),
        )
        outcomes = self._wait(jobs, started)
        return {key: outcomes[key] for key in requests}

    def _wait(self, jobs: dict[str, list[str]], started: float) -> dict[str, BatchOutcome]:
        """Poll every job until done or the deadline; the outcomes, or BatchJobError."""
        outcomes: dict[str, BatchOutcome] = {}
        failed: dict[str, BatchJobStatus] = {}  # by the name we polled
        pending = dict(jobs)
        deadline = started + self.timeout
        delay = self.poll_initial
        while pending and (left := deadline - self._clock()) > 0:
            self._sleep(min(delay, left))
            delay = min(delay * 2, self.poll_max)
            for name in list(pending):
                try:
                    status = self.poll(name)
                except BatchJobError as exc:  # the job is gone
                    failed[name] = BatchJobStatus(name, exc.state or FAILED, error="HTTP 404")
                    del pending[name]
                    continue
                except RetryableGenerationError as exc:  # poll again later, until the deadline
                    log.warning("Gemini batch %s: polling failed, will retry: %s", name, exc)
                    continue
                if not status.done:
                    continue
                del pending[name]
                if status.succeeded and inlined_responses(status.operation) is not None:
                    outcomes.update(self.results(status, jobs[name]))
                else:
                    failed[name] = status
        if not pending and not failed:
            return outcomes
        if pending:
            self._cancel_quietly(pending)
        unfinished = [
            key for name, keys in jobs.items() if name in pending or name in failed for key in keys
        ]
        raise BatchJobError(
            self._failure_message(failed, pending, len(unfinished)),
            jobs=[*failed, *pending],
            state=next(iter(failed.values())).state if failed else "TIMEOUT",
            results=outcomes,
            unfinished=unfinished,
        )

    def _failure_message(
        self, failed: Mapping[str, BatchJobStatus], pending: Mapping[str, list[str]], count: int
    ) -> str:
        parts = []
        for name, status in failed.items():
            state = status.state.removeprefix("BATCH_STATE_")
            if status.succeeded:
                state += " without inline results"
            parts.append(
                f"job {name} ended {state}" + (f" ({status.error})" if status.error else "")
            )
        if pending:
            parts.append(
                f"job(s) {', '.join(pending)} not done after {self.timeout:g}s (cancelled)"
            )
        return self._scrub(
            f"Gemini batch {self.model}: {'; '.join(parts)}: send its {count} request(s) "
            "synchronously"
        )

    # ------------------------------------------------------------------ submit

    def submit(
        self, requests: Mapping[str, GenerationRequest], *, display_name: str = "product-images"
    ) -> str:
        """Submit `requests` as one job; its name ("batches/<id>").

        Raises ValueError when more than one request would pass `max_payload_bytes` (`run`
        splits them), and the typed errors of GeminiClient when the API refuses the job.
        """
        entries = self._entries(requests)
        if len(entries) > 1 and sum(len(e) for _, e in entries) > self.max_payload_bytes:
            raise ValueError(
                f"{len(entries)} requests make more than {self.max_payload_bytes} bytes: too "
                "large for one inline batch; use run(), which splits them over several jobs"
            )
        return self._submit(entries, display_name)

    def _entries(self, requests: Mapping[str, GenerationRequest]) -> list[tuple[str, str]]:
        """(key, InlinedRequest as JSON) per request, in order."""
        if not requests:
            raise ValueError("a batch needs at least one request")
        entries = []
        for key, request in requests.items():
            if not isinstance(key, str) or not key.strip():
                raise ValueError(f"batch keys must be non-empty strings, got {key!r}")
            body = build_request_body(request, self.model, self.image_size, self.sends_image_size)
            entries.append((key, json.dumps({"request": body, "metadata": {"key": key}})))
        return entries

    def _chunks(self, entries: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
        """Consecutive runs of entries of at most `max_payload_bytes` each (a single entry
        larger than that goes alone: the API, not us, decides whether it fits)."""
        chunks: list[list[tuple[str, str]]] = []
        size = 0
        for entry in entries:
            length = len(entry[1]) + 1  # ASCII JSON: characters are bytes; +1 for the comma
            if not chunks or size + length > self.max_payload_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(entry)
            size += length
        return chunks

    def _submit(self, entries: list[tuple[str, str]], display_name: str) -> str:
        requests = ", ".join(entry for _, entry in entries)
        body = (
            f'{{"batch": {{"display_name": {json.dumps(display_name)}, '
            f'"input_config": {{"requests": {{"requests": [{requests}]}}}}}}}}'
        ).encode()

        def attempt(info: AttemptInfo) -> str:
            payload = self._call("POST", self.batch_url, info, body)
            if payload is None:
                raise UpstreamServerError(
                    f"Gemini {self.model}: the batch create answer was not a JSON object",
                    status=200,
                )
            name = payload.get("name") or _get(payload.get("metadata"), "name", "name")
            if not isinstance(name, str) or _JOB_NAME.match(name) is None:
                raise UpstreamServerError(
                    f"Gemini {self.model}: the batch create answer named no job "
                    f"({self._scrub(error_message(json.dumps(payload), 200))})",
                    status=200,
                )
            return name if name.startswith("batches/") else f"batches/{name}"

        name, _ = self._with_backoff(attempt, None)
        return name

    # ------------------------------------------------------------------ poll and cancel

    def poll(self, job: str) -> BatchJobStatus:
        """The job's current status (one GET, with GeminiClient's retries); BatchJobError
        when the job does not exist (any more)."""
        name = self._job_name(job)
        url = f"{self.base_url}/v1beta/{name}"

        def attempt(info: AttemptInfo) -> Mapping[str, Any] | None:
            return self._call("GET", url, info, missing_ok=True)

        payload, _ = self._with_backoff(attempt, None)
        if payload is None:
            raise BatchJobError(
                f"Gemini batch job {name} was not found (HTTP 404): send its requests "
                "synchronously",
                jobs=[name],
                state="NOT_FOUND",
                status=404,
            )
        return status_from_operation(payload, name, self._scrub)

    def cancel(self, job: str) -> None:
        """Ask the API to cancel the job (one attempt; typed errors as GeminiClient's)."""
        name = self._job_name(job)
        self._call("POST", f"{self.base_url}/v1beta/{name}:cancel", AttemptInfo(), b"{}")

    def _cancel_quietly(self, jobs: Mapping[str, object]) -> None:
        for name in jobs:
            try:
                self.cancel(name)
            except GenerationError as exc:
                log.warning("Gemini batch %s: cancelling failed: %s", name, exc)

    @staticmethod
    def _job_name(job: str) -> str:
        match = _JOB_NAME.match(job.strip()) if isinstance(job, str) else None
        if match is None:
            raise ValueError(f"not a batch job name: {job!r} (expected batches/<id>)")
        return f"batches/{match.group(1)}"

    def _call(
        self,
        method: str,
        url: str,
        info: AttemptInfo,
        body: bytes | None = None,
        *,
        missing_ok: bool = False,
    ) -> Mapping[str, Any] | None:
        """One request; the JSON object answered (None for a non-object 2xx, or a 404 when
        `missing_ok`), else the typed error of the shared mapping."""
        ok = (404,) if missing_ok else ()
        response = self._send(info, method, url, ok, content=body, headers=self._headers())
        payload = read_json(response) if response.is_success else None
        if not isinstance(payload, Mapping):
            return None
        if isinstance(payload.get("error"), Mapping) and "name" not in payload:
            raise error_from_response(response, self._caller(), payload)  # wrapped in a 200
        return payload

    # ------------------------------------------------------------------ results

    def results(self, status: BatchJobStatus, keys: Sequence[str]) -> dict[str, BatchOutcome]:
        """The outcome per key of a finished job submitted with `keys` (in submission order).

        Entries are matched by ``metadata.key`` when every entry carries one of `keys`, else
        by position. A key without an entry gets NoImageError.
        """
        items = inlined_responses(status.operation) or []
        wanted = set(keys)
        tagged = [_get(_get(item, "metadata", "metadata"), "key", "key") for item in items]
        by_key = len(set(tagged)) == len(tagged) and all(key in wanted for key in tagged)
        matched = tagged if by_key else list(keys[: len(items)])
        outcomes: dict[str, BatchOutcome] = {}
        for key, item in zip(matched, items, strict=False):
            outcomes[key] = self._outcome(item)
        for key in keys:
            if key not in outcomes:
                outcomes[key] = NoImageError(
                    f"Gemini {self.model}: batch job {status.name} returned no answer for "
                    "this request",
                    status=200,
                )
        return outcomes

    def _outcome(self, item: Any) -> BatchOutcome:
        """One InlinedResponse -> its result, or the error a synchronous call would raise."""
        error = _get(item, "error", "error")
        if isinstance(error, Mapping):
            return self._status_error(error)
        response = _get(item, "response", "response")
        if not isinstance(response, Mapping):
            return NoImageError(
                f"Gemini {self.model}: a batch entry had neither a response nor an error",
                status=200,
            )
        if isinstance(response.get("error"), Mapping) and "candidates" not in response:
            return self._status_error(response["error"])
        try:
            answer = self._parse_answer(response)
        except GenerationError as exc:
            return exc
        return GenerationResult(
            image=answer.image,
            mime_type=answer.mime_type,
            model=self.model,
            usage=parse_usage(response),
            attempts=1,
            text=answer.text,
        )

    def _status_error(self, status: Mapping[str, Any]) -> GenerationError:
        """A per-request google.rpc.Status -> the error its HTTP equivalent maps to."""
        return error_for(failure_from_rpc_status(status), self._caller())
