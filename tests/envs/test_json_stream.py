"""The streaming JSON-list reader gives what `json.load` gives, whatever the chunk size,
and its errors name the line or byte as `json.load`'s would."""

from __future__ import annotations

import json

import pytest

import envs.json_stream as js
from envs import CatalogError
from envs.json_stream import iter_json_array

from tests.conftest import FIXTURES

ROOT = "expected a JSON list of products"


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 22])
def test_elements_equal_json_load_at_any_chunk_size(monkeypatch, tmp_path, chunk):
    monkeypatch.setattr(js, "CHUNK_BYTES", chunk)
    for name in ("items_shuffle_fixture.json", "reviews.json"):
        path = FIXTURES / name
        assert list(iter_json_array(path, ROOT)) == json.loads(path.read_text())
    odd = [12345, -0.5e-3, "caf\u00e9 \u203a \U0001f600", True, None, [], {}, {"a": [1, {"b": "\u00e9"}]}, 7]
    path = tmp_path / "odd.json"
    path.write_text("\n  " + json.dumps(odd, ensure_ascii=False, indent=1) + "\n\n", encoding="utf-8")
    assert list(iter_json_array(path, ROOT)) == odd  # numbers and multi-byte characters cut by chunks
    path.write_text(" [ ] ")
    assert list(iter_json_array(path, ROOT)) == []


@pytest.mark.parametrize("chunk", [5, 1 << 22])
def test_errors_name_the_line_or_byte(monkeypatch, tmp_path, chunk):
    monkeypatch.setattr(js, "CHUNK_BYTES", chunk)
    path = tmp_path / "p.json"

    def error(text: str | bytes) -> str:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(CatalogError) as e:
            list(iter_json_array(path, ROOT))
        return str(e.value).removeprefix(f"{path}: ")

    lines = "[\n" + ",\n".join(['{"asin": "B%d"}' % i for i in range(40)]) + ',\n{"asin": oops}\n]'
    assert error(lines) == "record at line 42: field '<json>': Expecting value"
    assert error('[{"a": 1}\n{"b": 2}]') == "record at line 2: field '<json>': Expecting ',' delimiter"
    assert error('[{"a": 1}] x') == "record at line 1: field '<json>': Extra data"
    assert error("[{") == "record at line 1: field '<json>': Expecting property name enclosed in double quotes"
    assert error("") == "record at line 1: field '<json>': Expecting value"
    assert error('{"a": [1]}') == f"record <file>: field '<root>': {ROOT}"
    assert error(b'[{"asin": "' + b"x" * 30 + b'\xff"}]') == "record at byte 41: field '<encoding>': not UTF-8 text"
    assert error(b'["\xc3\xa9", "\xc3') == "record at byte 8: field '<encoding>': not UTF-8 text"  # cut at the end
