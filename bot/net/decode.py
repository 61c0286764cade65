"""Decode a response body (Content-Encoding) incrementally, under a cap on the decoded size.

The aiohttp transport hands httpx the raw bytes (``auto_decompress=False``), so decoding is ours. Every
call to zlib asks for at most "what is left under the cap, plus one byte", so a gzip bomb (a few kB
that inflate to gigabytes) costs at most the cap in memory before it is refused.
Codings: ``gzip`` (``x-gzip``) and ``deflate`` (zlib-wrapped or raw, RFC 9110 section 8.4.1); ``br``
is not advertised in Accept-Encoding because no brotli package is a dependency.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

SUPPORTED_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})
# What we send in Accept-Encoding: exactly the codings we can decode.
ACCEPT_ENCODING = "gzip, deflate"
_GZIP_MAGIC = b"\x1f\x8b"
# zlib is asked for at most this much output per call, so one small raw chunk of a bomb never turns
# into one huge allocation.
STEP_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The decoded body exceeded the cap. ``prefix`` holds its first ``cap`` decoded bytes (or fewer)."""

    def __init__(self, cap: int, prefix: bytes) -> None:
        super().__init__(f"the body is larger than {cap} bytes once decoded")
        self.prefix = prefix


class BodyDecodeError(Exception):
    """The body does not decode as its Content-Encoding says, or the coding is not supported."""


class _Inflate:
    """One zlib-family stage that hands out its output in pieces of at most :data:`STEP_BYTES`."""

    def __init__(self, coding: str) -> None:
        self.name = "gzip" if coding in ("gzip", "x-gzip") else "deflate"
        self._obj = self._new()
        # Deflate input kept until the first output proves it zlib-wrapped; if zlib rejects it, it is
        # decoded again as raw deflate (bounded by the caller's raw-size cap).
        self._head: bytearray | None = bytearray() if self.name == "deflate" else None
        self._done = False
        # Bytes after the end of a gzip member, kept until we can tell whether another member follows.
        self._between: bytes | None = None

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self.name == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """Decode ``data``; the output comes in small pieces so a caller can stop at its cap."""
        if self._between is not None:
            data, self._between = self._between + data, None
            if not self._next_member(data):
                return
        if self._head is not None:
            self._head += data
        while not self._done:
            try:
                chunk = self._obj.decompress(data, STEP_BYTES)
            except zlib.error:
                if self._head is None:
                    raise
                # Some servers send raw deflate without the zlib header that RFC 9110 asks for.
                data, self._head = bytes(self._head), None
                self._obj = self._new(raw=True)
                continue
            if chunk:
                self._head = None
                yield chunk
            if self._obj.eof:
                data = self._obj.unused_data
                if self._next_member(data):
                    continue
                break
            data = self._obj.unconsumed_tail
            if not data and len(chunk) < STEP_BYTES:
                break  # all input consumed and no output pending

    def _next_member(self, data: bytes) -> bool:
        """After the end of a stream: True when ``data`` starts another gzip member (RFC 1952 allows
        several), which is then set up. Anything else after the end is ignored, as browsers do."""
        if self.name == "gzip":
            if len(data) < len(_GZIP_MAGIC) and _GZIP_MAGIC.startswith(data):
                self._between = data  # too short to tell yet: wait for the next chunk
                return False
            if data.startswith(_GZIP_MAGIC):
                self._obj = self._new()
                return True
        self._done = True
        return False

    def flush(self) -> bytes:
        return b"" if self._done else self._obj.flush()


class BodyDecoder:
    """Feed raw chunks in, get the decoded body out, at most ``cap`` bytes.

    ``content_encoding`` is the header value (``""`` for none; codings listed in the order they were
    applied). Raises :class:`BodyDecodeError` for an unsupported coding (at construction) or corrupt
    data, and :class:`BodyTooLarge` once the decoded size (or any intermediate stage's) passes ``cap``.
    Memory stays near ``cap`` plus :data:`STEP_BYTES` per stage, whatever the compression ratio.
    """

    def __init__(self, content_encoding: str, cap: int) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        for coding in codings:
            if coding not in SUPPORTED_CODINGS:
                raise BodyDecodeError(f"unsupported Content-Encoding {coding!r}")
        self._stages = [_Inflate(c) for c in reversed(codings)]
        self._cap = cap
        self._out = bytearray()

    @property
    def decoded(self) -> bytes:
        """What has been decoded so far (at most ``cap`` bytes)."""
        return bytes(self._out)

    def feed(self, data: bytes) -> None:
        self._run(data, final=False)

    def finish(self) -> bytes:
        self._run(b"", final=True)
        return bytes(self._out)

    def _run(self, data: bytes, *, final: bool) -> None:
        stream: Iterable[bytes] = (data,)
        last = len(self._stages) - 1
        for index, stage in enumerate(self._stages):
            stream = self._through(stage, stream, final=final, capped=index < last)
        for piece in stream:
            room = self._cap - len(self._out)
            if len(piece) > room:
                self._out += memoryview(piece)[:room]
                raise BodyTooLarge(self._cap, bytes(self._out))
            self._out += piece

    def _through(
        self, stage: _Inflate, stream: Iterable[bytes], *, final: bool, capped: bool
    ) -> Iterator[bytes]:
        """``stream`` decoded by ``stage``, lazily. ``capped``: an intermediate stage, whose own
        output may not pass the cap either (the last stage is capped by :meth:`_run`)."""
        produced = 0
        try:
            for data in stream:
                for piece in stage.pieces(data):
                    produced += len(piece)
                    if capped and produced > self._cap:
                        raise BodyTooLarge(self._cap, bytes(self._out))
                    yield piece
            if final:
                tail = stage.flush()
                if tail:
                    yield tail
        except zlib.error as exc:
            raise BodyDecodeError(f"the body is not valid {stage.name} data ({exc})") from exc
