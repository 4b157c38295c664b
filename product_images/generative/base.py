"""The interface every image-generation client implements, and the records it reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "Attempt",
    "AttemptHooks",
    "GenerationRequest",
    "GenerationResult",
    "ImageGenerator",
    "ImageInput",
    "Usage",
]


@dataclass(frozen=True)
class ImageInput:
    """One input image: the product photo first, then optional reference images."""

    data: bytes
    mime_type: str  # image/png, image/jpeg or image/webp


@dataclass(frozen=True)
class GenerationRequest:
    """Text and images in, one image out."""

    prompt: str
    images: tuple[ImageInput, ...]
    aspect_ratio: str = "1:1"  # "1:1", "4:5", "9:16", ...
    image_size: str | None = None  # "512", "1K", "2K", "4K" on models that take it


@dataclass(frozen=True)
class Usage:
    """Tokens the API reported (usageMetadata / usage)."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class Attempt:
    """One HTTP call to the API, successful or not: what the cost ledger records."""

    backend: str
    model: str
    outcome: str  # "ok", or the reason of the error class (rate_limited, no_image, ...)
    http_status: int | None
    usage: Usage
    seconds: float
    message: str = ""  # never contains the API key


@dataclass(frozen=True)
class GenerationResult:
    """The image the API returned, with what it cost to get it."""

    image: bytes
    mime_type: str
    model: str
    usage: Usage
    attempts: int
    text: str = ""  # any text parts the model returned alongside the image


@dataclass
class AttemptHooks:
    """Called around every HTTP attempt, retries included.

    `before` may raise BudgetExceededError to stop a paid call from being made;
    `after` receives each Attempt (the ledger writes it).
    """

    before: Callable[[], None] = lambda: None
    after: Callable[[Attempt], None] = field(default=lambda attempt: None)


class ImageGenerator(ABC):
    """A generative image API client."""

    #: "gemini" or "openai"
    name: str
    #: The model id requests go to.
    model: str

    @abstractmethod
    def generate(
        self, request: GenerationRequest, hooks: AttemptHooks | None = None
    ) -> GenerationResult:
        """One image for `request`, retrying retryable failures; raises GenerationError."""

    def check_available(self) -> None:  # noqa: B027 - optional: clients without a breaker
        """Raise BackendUnavailableError when calls would be refused right now."""

    def share_rate(self, listener: Callable[[float], None]) -> None:  # noqa: B027 - optional
        """Call `listener(requests per second)` whenever the adaptive request rate changes."""

    def close(self) -> None:  # noqa: B027 - optional for implementations without resources
        """Release connections."""
