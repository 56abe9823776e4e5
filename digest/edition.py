"""What planning hands to delivery: an edition and its composed digest variants.

Planning (`digest.pipeline`) builds these; the outbox records and sends them. Both import
this module, neither imports the other.
"""

from __future__ import annotations

import itertools
import marshal
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from digest.compose.render import RenderedDigest
from digest.models import Digest
from digest.store import StoredSubscriber

_PACKED = 1024  # readers per compressed chunk


class Readers(Sequence[StoredSubscriber]):
    """An immutable sequence of subscribers, packed: a variant's million readers take about
    20 bytes each (compressed chunks of 1,024), not a million objects. Iterating unpacks one
    chunk at a time; indexing unpacks the chunk that holds the item."""

    __slots__ = ("_chunks", "_count")

    def __init__(self, readers: Iterable[StoredSubscriber] = ()) -> None:
        packer = ReadersBuilder()
        for sub in readers:
            packer.append(sub)
        built = packer.build()
        self._chunks: tuple[bytes | tuple[tuple[object, ...], ...], ...] = built._chunks
        self._count: int = built._count

    @classmethod
    def _of(cls, chunks: tuple[bytes | tuple[tuple[object, ...], ...], ...], count: int) -> Readers:
        made = cls.__new__(cls)
        made._chunks, made._count = chunks, count
        return made

    @classmethod
    def join(cls, parts: Iterable[Readers]) -> Readers:
        """`parts` one after the other."""
        parts = list(parts)
        chunks = tuple(c for p in parts for c in p._chunks)
        return cls._of(chunks, sum(p._count for p in parts))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[StoredSubscriber]:
        for chunk in self._chunks:
            for row in _unpack(chunk):
                yield StoredSubscriber(*row)  # type: ignore[arg-type]

    @overload
    def __getitem__(self, index: int) -> StoredSubscriber: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[StoredSubscriber, ...]: ...

    def __getitem__(self, index: int | slice) -> StoredSubscriber | tuple[StoredSubscriber, ...]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step != 1:
                return tuple(self)[index]
            return tuple(itertools.islice(self, start, max(start, stop)))
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("Readers index out of range")
        for chunk in self._chunks:
            rows = _unpack(chunk)
            if index < len(rows):
                return StoredSubscriber(*rows[index])  # type: ignore[arg-type]
            index -= len(rows)
        raise IndexError("Readers index out of range")  # pragma: no cover

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Readers | tuple | list):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Readers(<{self._count} subscribers>)"


class ReadersBuilder:
    """Collects subscribers into a `Readers`, packing each full chunk as it goes."""

    __slots__ = ("_chunks", "_count", "_open")

    def __init__(self) -> None:
        self._chunks: list[bytes | tuple[tuple[object, ...], ...]] = []
        self._open: list[tuple[object, ...]] = []
        self._count = 0

    def append(self, sub: StoredSubscriber) -> None:
        self._open.append((sub.email, sub.name, tuple(sub.themes), sub.language, sub.status))
        self._count += 1
        if len(self._open) >= _PACKED:
            self._chunks.append(zlib.compress(marshal.dumps(self._open), 1))
            self._open = []

    def __len__(self) -> int:
        return self._count

    def build(self) -> Readers:
        # A last, short chunk stays as it is: small groups cost no packing.
        tail: list[bytes | tuple[tuple[object, ...], ...]] = (
            [tuple(self._open)] if self._open else []
        )
        return Readers._of(tuple(self._chunks + tail), self._count)


def _unpack(chunk: bytes | tuple[tuple[object, ...], ...]) -> Sequence[tuple[object, ...]]:
    if isinstance(chunk, bytes):
        rows: list[tuple[object, ...]] = marshal.loads(zlib.decompress(chunk))
        return rows
    return chunk


@dataclass(frozen=True)
class Variant:
    key: str  # sorted theme keys; "" = everything
    digest: Digest
    rendered: RenderedDigest
    sections: dict[str, list[str]]  # section key -> post keys, as recorded in the store
    recipients: Sequence[StoredSubscriber]  # a `Readers` when planned

    @property
    def language(self) -> str:
        """The language its readers get ("ko" or "en"; "" = the site's)."""
        return self.digest.language


@dataclass(frozen=True)
class Edition:
    id: str
    issue_number: int
    theme: str | None
    variants: tuple[Variant, ...]
    quiet: Sequence[StoredSubscriber] = field(default=())  # nothing new for them

    @property
    def recipients(self) -> int:
        return sum(len(v.recipients) for v in self.variants)
