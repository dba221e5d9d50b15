"""Reading a JSON file whose top level is a list, one element at a time.

WebShop's full product file is a single ~5 GB JSON list; `json.load` would hold all of
it as Python objects (several times its size) before the first product is parsed. This
reader decodes the file in chunks and yields each element as soon as it is complete, so
memory stays at one chunk plus one element. Errors read as `json.load`'s would (a
decoding error names its line, bad UTF-8 names its byte), raised as `CatalogError`.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any, Iterator

from envs.products import CatalogError

CHUNK_BYTES = 1 << 22
MAX_ELEMENT_CHARS = 1 << 26  # an element this long without closing is a broken file
_WHITESPACE = " \t\n\r"
_AFTER_ELEMENT = _WHITESPACE + ",]"  # what may follow an element of the list


class _Reader:
    """A text buffer over the file that knows where it is (line and byte)."""

    def __init__(self, f, path: Path):
        self.f, self.path = f, path
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos = "", 0
        self.bytes_fed = 0
        self.lines_dropped = 0  # newlines in the text already dropped from `buf`
        self.eof = False

    def more(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at the end."""
        if self.eof:
            return False
        raw = self.f.read(CHUNK_BYTES)
        pending = len(self.decoder.getstate()[0])
        try:
            text = self.decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as e:
            at = self.bytes_fed - pending + e.start
            raise CatalogError(self.path, f"at byte {at}", "<encoding>", "not UTF-8 text") from None
        self.bytes_fed += len(raw)
        self.eof = not raw
        self.lines_dropped += self.buf.count("\n", 0, self.pos)
        self.buf, self.pos = self.buf[self.pos:] + text, 0
        return bool(raw)

    def can_grow(self) -> bool:
        """Whether reading on may complete the element at `pos`."""
        return not self.eof and len(self.buf) - self.pos < MAX_ELEMENT_CHARS

    def skip_space(self) -> str:
        """The next non-space character ('' at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def error(self, e: json.JSONDecodeError) -> CatalogError:
        line = self.lines_dropped + self.buf.count("\n", 0, e.pos) + 1
        return CatalogError(self.path, f"at line {line}", "<json>", e.msg)


def iter_json_array(path: str | Path, root_problem: str) -> Iterator[Any]:
    """The elements of the JSON list in `path`, in order.

    Raises CatalogError: the file is not JSON (naming the line), not UTF-8 (naming the
    byte), or its top level is not a list (`root_problem` says what was expected).
    """
    path = Path(path)
    decoder = json.JSONDecoder()
    with open(path, "rb") as f:
        r = _Reader(f, path)
        first = r.skip_space()
        if first != "[":
            _raise_for_non_list(r, decoder, root_problem)
        r.pos += 1
        if r.skip_space() == "]":
            r.pos += 1
            _expect_end(r, decoder)
            return
        while True:
            yield _next_value(r, decoder)
            sep = r.skip_space()
            if sep == ",":
                r.pos += 1
                r.skip_space()
                continue
            if sep == "]":
                r.pos += 1
                _expect_end(r, decoder)
                return
            raise r.error(json.JSONDecodeError("Expecting ',' delimiter", r.buf, r.pos))


def _next_value(r: _Reader, decoder: json.JSONDecoder) -> Any:
    """Decode the value at `r.pos`, reading more of the file while it is incomplete."""
    while True:
        try:
            value, end = decoder.raw_decode(r.buf, r.pos)
        except json.JSONDecodeError as e:
            if r.can_grow():
                r.more()  # the element may continue in the next chunk; then decode again
                continue
            raise r.error(e) from None
        if (end == len(r.buf) or r.buf[end] not in _AFTER_ELEMENT) and r.can_grow():
            r.more()  # a number cut by the chunk's end ("12" of "123", "-0" of "-0.5"): read on
            continue
        r.pos = end
        return value


def _expect_end(r: _Reader, decoder: json.JSONDecoder) -> None:
    if r.skip_space():
        raise r.error(json.JSONDecodeError("Extra data", r.buf, r.pos))


def _raise_for_non_list(r: _Reader, decoder: json.JSONDecoder, root_problem: str) -> None:
    """The top level is not a list: say why as `json.load` then the caller would."""
    if r.skip_space() == "":
        raise r.error(json.JSONDecodeError("Expecting value", r.buf, r.pos))
    _next_value(r, decoder)  # raises for a file that is not JSON at all
    _expect_end(r, decoder)
    raise CatalogError(r.path, "<file>", "<root>", root_problem)
