import json
from pathlib import Path

import pytest

from envs import Catalog, CatalogError
from envs.catalog import split_bounds
from envs.products import PRICE_STEPS

from tests.conftest import FIXTURES


def test_loads_real_format_with_webshop_rules(fixture_catalog):
    cat = fixture_catalog
    # 'nan' asin and the duplicate asin are skipped, order kept
    assert [p.asin for p in cat.products] == ["B07ZJHQ3YT", "B09QKP7XQL", "B08XYZ1234", "B07DEADBEE", "B01GRANOLA"]
    shoes = cat.by_asin["B07ZJHQ3YT"]
    assert shoes.options == {"color": ["taupe", "navy blue | white"], "size": ["7.5 wide", "8", "8.5"]}
    assert shoes.pricing == [45.99, 69.99] and shoes.price_tag == "$45.99 to $69.99"
    assert 45.99 <= shoes.price <= 69.99
    cond = cat.by_asin["B08XYZ1234"]
    assert cond.pricing == [100.0] and cond.price == 100.0  # missing price reads as $100
    assert cat.by_asin["B09QKP7XQL"].bullet_points == ["Sulfate free formula for daily use"]
    assert cat.by_asin["B09QKP7XQL"].rating == "4.5"
    assert cat.by_asin["B09QKP7XQL"].reviews[0] == {"title": "Love it", "score": 5, "body": "My hair feels soft."}
    # attributes from items_ins_v2
    assert cat.by_asin["B07DEADBEE"].attributes == ["solid wood", "living room", "easy assemble", "mid century"]


def test_human_goals_and_price_upper(fixture_catalog):
    goals = fixture_catalog.goals
    # 5 instructions, one without attributes skipped
    assert len(goals) == 4
    assert [g.goal_id for g in goals] == [0, 1, 2, 3]
    for g in goals:
        price = fixture_catalog.by_asin[g.asin].price
        allowed = [p for p in PRICE_STEPS if p > price][:4]
        assert g.price_upper in allowed[1:]  # larger of two draws: never the first step
        assert g.instruction_text.endswith(f", and price lower than {g.price_upper:.2f} dollars")
    shoes = next(g for g in goals if g.asin == "B07ZJHQ3YT")
    assert shoes.goal_options == ("7.5 wide",)
    assert "wide." not in shoes.instruction_text  # trailing '.' stripped before the clause


def test_loading_is_deterministic():
    a, b = Catalog.from_dir(FIXTURES), Catalog.from_dir(FIXTURES)
    assert [g.instruction_text for g in a.goals] == [g.instruction_text for g in b.goals]
    assert [p.price for p in a.products] == [p.price for p in b.products]
    assert a.content_hash == b.content_hash


def test_synthetic_goals_expand_option_combinations():
    cat = Catalog.from_files(FIXTURES / "items_shuffle_fixture.json", FIXTURES / "items_ins_v2_fixture.json")
    shoes = [g for g in cat.goals if g.asin == "B07ZJHQ3YT"]
    assert len(shoes) == 2 * 3  # colour x size
    assert any("with color: taupe, and size: 8.5" in g.instruction_text for g in shoes)


def test_split_bounds():
    b = split_bounds(12087)
    assert (b["test"], b["eval"], b["train"]) == (range(0, 500), range(500, 1500), range(1500, 12087))
    small = split_bounds(60)
    assert len(small["test"]) == 10 and len(small["eval"]) == 20 and len(small["train"]) == 30


def _write(tmp: Path, products, attrs=None):
    (tmp / "items_shuffle.json").write_text(json.dumps(products))
    (tmp / "items_ins_v2.json").write_text(json.dumps(attrs or {}))
    return tmp


GOOD = {"asin": "B000000001", "name": "Thing", "category": "food", "query": "thing",
        "product_category": "A › B", "pricing": "$1.00", "small_description": []}


@pytest.mark.parametrize(
    "bad, field, problem",
    [
        ({"name": 3}, "name", "expected str, got int"),
        ({"pricing": "$abc to $"}, "pricing", "cannot read a price"),
        ({"pricing": 12}, "pricing", "expected a string"),
        ({"small_description": [1, 2]}, "small_description", "list of strings"),
        ({"customization_options": {"Color": [{"img": "x"}]}}, "customization_options.Color[0].value", "missing"),
    ],
)
def test_bad_product_names_file_record_field(tmp_path, bad, field, problem):
    products = [GOOD, {**GOOD, "asin": "B000000002", **bad}]
    _write(tmp_path, products)
    with pytest.raises(CatalogError) as e:
        Catalog.from_dir(tmp_path)
    msg = str(e.value)
    assert "items_shuffle.json" in msg and "record 1" in msg and f"field '{field}'" in msg and problem in msg
    assert e.value.record == 1 and e.value.field_name == field


def test_missing_field_and_bad_json(tmp_path):
    rec = dict(GOOD)
    del rec["category"]
    _write(tmp_path, [rec])
    with pytest.raises(CatalogError, match=r"record 0: field 'category': missing"):
        Catalog.from_dir(tmp_path)
    (tmp_path / "items_shuffle.json").write_text("[{")
    with pytest.raises(CatalogError, match=r"items_shuffle.json: record at line 1"):
        Catalog.from_dir(tmp_path)


def test_bad_human_instruction(tmp_path):
    _write(tmp_path, [GOOD])
    (tmp_path / "items_human_ins.json").write_text(json.dumps(
        {"B000000001": [{"instruction": "x", "instruction_attributes": "oops"}]}))
    with pytest.raises(CatalogError, match=r"items_human_ins.json: record B000000001\[0\]: field 'instruction_attributes'"):
        Catalog.from_dir(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="items_shuffle"):
        Catalog.from_dir(tmp_path)


@pytest.mark.parametrize("value, got", [(["a", "b"], "list"), (7, "int")])
def test_full_description_of_the_wrong_type(tmp_path, value, got):
    _write(tmp_path, [GOOD, {**GOOD, "asin": "B000000002", "full_description": value}])
    with pytest.raises(CatalogError) as e:
        Catalog.from_dir(tmp_path)
    assert str(e.value) == f"{tmp_path / 'items_shuffle.json'}: record 1: field 'full_description': expected str, got {got}"


def test_non_utf8_file_names_file_and_byte(tmp_path):
    _write(tmp_path, [GOOD])
    (tmp_path / "items_shuffle.json").write_bytes(b'[{"asin": "B0\xff"}]')
    with pytest.raises(CatalogError) as e:
        Catalog.from_dir(tmp_path)
    assert str(e.value) == f"{tmp_path / 'items_shuffle.json'}: record at byte 13: field '<encoding>': not UTF-8 text"


def test_empty_product_list_and_no_goals(tmp_path):
    _write(tmp_path, [])
    with pytest.raises(CatalogError, match=r"items_shuffle.json: record <file>: field '<root>': no products"):
        Catalog.from_dir(tmp_path)
    _write(tmp_path, [GOOD], {"B000000001": {"attributes": ["x"]}})  # products, but no instruction
    with pytest.raises(CatalogError, match=r"items_ins_v2.json: record <file>: field 'instruction': no goals for the 1 products"):
        Catalog.from_dir(tmp_path)
