"""Bounded reading of what a request carries: JSON fields, an uploaded image, an uploaded WAV.

Every limit here is a 4xx with a one-line message, never an exception that reaches the user.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from deepnets import DeepnetsError

MAX_BODY_BYTES = 8 * 1024 * 1024  # any request body
MAX_IMAGE_SIDE = 4096  # pixels, either side of an uploaded image
MAX_WAV_SECONDS = 30.0


class TooLarge(DeepnetsError):
    """A request over a size limit (HTTP 413)."""


class Named(io.BytesIO):
    """Uploaded bytes that call themselves by what they are in error messages."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.label = name

    def __str__(self) -> str:
        return self.label


@dataclass
class Inputs:
    """What a panel action reads: the JSON body's fields or an upload and its form fields."""

    fields: dict[str, Any] = field(default_factory=dict)
    upload: bytes | None = None

    @classmethod
    def from_json(cls, body: bytes) -> Inputs:
        if not body.strip():
            return cls({})
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise DeepnetsError(f"malformed JSON: {str(err).splitlines()[0][:120]}") from None
        if not isinstance(value, dict):
            raise DeepnetsError("the JSON body must be an object of named fields")
        return cls(value)

    def text(self, name: str, max_chars: int, default: str | None = None) -> str:
        value = self.fields.get(name, default)
        if not isinstance(value, str):
            raise DeepnetsError(f"{name} must be a string")
        if len(value) > max_chars:
            raise TooLarge(f"{name} holds {len(value)} characters; at most {max_chars}")
        return value

    def number(self, name: str, default: float, low: float, high: float, integer=False) -> Any:
        value = self.fields.get(name, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise DeepnetsError(f"{name} must be a number, got {value[:40]!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise DeepnetsError(f"{name} must be a number")
        if integer and value != int(value):
            raise DeepnetsError(f"{name} must be a whole number, got {value}")
        if not low <= value <= high:
            raise DeepnetsError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")
        return int(value) if integer else float(value)

    def file(self, what: str) -> Named:
        if not self.upload:
            raise DeepnetsError(f"send {what} as the multipart field 'file'")
        return Named(self.upload, f"the uploaded {what}")

    def image(self) -> Named:
        """The upload, checked to be a PNG/JPEG/... of at most MAX_IMAGE_SIDE pixels a side
        before any pixel is decoded."""
        from PIL import Image, UnidentifiedImageError

        upload = self.file("image")
        try:
            with Image.open(upload) as opened:
                width, height = opened.size
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            raise DeepnetsError("the upload is not an image (PNG, JPEG, GIF or BMP)") from None
        if max(width, height) > MAX_IMAGE_SIDE:
            raise TooLarge(f"the image is {width}x{height} pixels; at most {MAX_IMAGE_SIDE} a side")
        if min(width, height) < 1:
            raise DeepnetsError("the image is empty")
        upload.seek(0)
        return upload
