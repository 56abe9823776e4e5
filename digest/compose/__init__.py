"""Compose stage: render a Digest to email HTML and plain text, then personalize per recipient."""

from digest.compose.formatting import format_date, format_reading_time, reading_minutes, wrap
from digest.compose.render import PLACEHOLDERS, RenderedDigest, Renderer, personalize

__all__ = [
    "PLACEHOLDERS",
    "RenderedDigest",
    "Renderer",
    "format_date",
    "format_reading_time",
    "personalize",
    "reading_minutes",
    "wrap",
]
