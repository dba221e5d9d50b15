"""WebShop IL files that are not UTF-8 fail with ILFormatError naming file and line."""

import json

import pytest

from policies.il import ILFormatError, read_webshop_il


def test_non_utf8_line_is_named(tmp_path):
    good = json.dumps({"states": ["s"], "available_actions": [["a", "b"]], "action_idxs": [1]})
    path = tmp_path / "il.jsonl"
    path.write_bytes(good.encode() + b"\n\n" + b'{"states": ["\xe9t\xe9"]}\n')
    with pytest.raises(ILFormatError) as e:
        list(read_webshop_il(path))
    assert str(e.value) == f"{path}: line 3: field '<encoding>': not UTF-8 text (byte 13 of the line)"
    path.write_bytes(good.encode() + b"\n")
    assert [s.chosen for s in read_webshop_il(path)] == [1]
