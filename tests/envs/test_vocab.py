"""The generator's vocabulary file: loaded as typed tuples, checked with errors that
name the file and the entry."""

import copy
import json

import pytest

from envs import vocab
from envs.vocab import DATA_FILE, VocabError, load_vocabulary


@pytest.fixture()
def raw():
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def write(tmp_path, data):
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def broken(tmp_path, data, match):
    path = write(tmp_path, data)
    with pytest.raises(VocabError, match=match) as info:
        load_vocabulary(path)
    assert str(info.value).startswith(f"{path}: ")
    return str(info.value)


def test_shipped_file_loads_into_the_module_names():
    loaded = load_vocabulary()
    assert vocab.CATEGORIES == ("beauty", "electronics", "fashion", "food", "furniture")
    assert vocab.PRODUCT_TYPES == loaded.product_types
    assert {t["category"] for t in vocab.PRODUCT_TYPES} == set(vocab.CATEGORIES)
    shampoo = next(t for t in vocab.PRODUCT_TYPES if t["query"] == "shampoo")
    assert shampoo["price"] == (6.0, 40.0)
    assert isinstance(shampoo["attributes"], tuple) and isinstance(shampoo["options"], dict)
    assert list(shampoo["options"]) == ["scent", "size"]  # the file's order is kept
    assert shampoo["options"]["size"][0] == "3.4 fl oz"
    assert vocab.BRANDS["beauty"][:2] == ("Velloria", "Solvane")
    assert vocab.OPTION_PHRASES["color"][0] == "in {value}"
    assert vocab.VocabError is VocabError and issubclass(VocabError, ValueError)


def test_round_trip_of_the_shipped_data_is_accepted(tmp_path, raw):
    assert load_vocabulary(write(tmp_path, raw)) == load_vocabulary()


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(VocabError, match=r"nope\.json: cannot read"):
        load_vocabulary(tmp_path / "nope.json")
    path = tmp_path / "vocab.json"
    path.write_text('{"categories": [', encoding="utf-8")
    with pytest.raises(VocabError, match=r"vocab\.json: not valid JSON: .*line 1"):
        load_vocabulary(path)


def test_missing_and_unknown_top_level_keys(tmp_path, raw):
    raw["brand"] = raw.pop("brands")
    broken(tmp_path, raw, r"top level: missing keys \['brands'\], unknown keys \['brand'\]")


def test_wrong_types_name_the_entry(tmp_path, raw):
    data = copy.deepcopy(raw)
    data["review_titles"] = "Great value"
    broken(tmp_path, data, r"review_titles: expected a list of strings, got 'Great value'")
    data = copy.deepcopy(raw)
    data["product_types"][0]["attributes"] = "sulfate free"
    broken(tmp_path, data, r"product_types\[0\] \('shampoo'\) 'attributes': expected a list of strings")
    data = copy.deepcopy(raw)
    data["product_types"][1]["price"] = [6, 38]
    broken(tmp_path, data, r"product_types\[1\] \('conditioner'\) 'price': expected \[low, high\]")
    data = copy.deepcopy(raw)
    data["brands"]["food"] = ["Harvest Hollow", 7]
    broken(tmp_path, data, r"brands\['food'\]: expected a list of strings")


def test_product_type_keys(tmp_path, raw):
    del raw["product_types"][2]["uses"]
    broken(tmp_path, raw, r"product_types\[2\] \('hair extensions'\): keys \[.*\], expected \[")


def test_rule_breaks_name_type_and_key(tmp_path, raw):
    data = copy.deepcopy(raw)
    attrs = data["product_types"][0]["attributes"]
    attrs.append("free")  # inside "sulfate free"
    broken(tmp_path, data, r"\('shampoo'\) 'attributes': 'free' is duplicated in or a substring "
                           r"of 'sulfate free'")
    data = copy.deepcopy(raw)
    data["product_types"][0]["options"]["flavour"] = ["a", "b", "c", "d", "e", "f"]
    broken(tmp_path, data, r"\('shampoo'\) 'options': group 'flavour' has no option_phrases entry")
    data = copy.deepcopy(raw)
    data["product_types"][0]["price"] = [40.0, 6.0]
    broken(tmp_path, data, r"\('shampoo'\) 'price': \[40\.0, 6\.0\] is not 3 <= low < high <= 600")
    data = copy.deepcopy(raw)
    data["product_types"][1]["query"] = "shampoo"
    broken(tmp_path, data, r"product_types\[1\] \('shampoo'\) 'query': not unique")


def test_brand_and_template_rules(tmp_path, raw):
    data = copy.deepcopy(raw)
    data["brands"]["food"].append(data["brands"]["beauty"][0])
    broken(tmp_path, data, r"brands\['food'\]: 'Velloria' appears twice")
    data = copy.deepcopy(raw)
    data["instruction_templates"][0] = "i am looking for {noun} {options}"
    broken(tmp_path, data, r"instruction_templates: 'i am looking for \{noun\} \{options\}' needs "
                           r"lower case and each of")
    data = copy.deepcopy(raw)
    data["description_templates"][0] = "The {brand} {noun"
    broken(tmp_path, data, r"description_templates: unclosed '\{'")
    data = copy.deepcopy(raw)
    data["categories"] = data["categories"][:4]
    broken(tmp_path, data, r"categories: \['beauty', .*\], expected \[")
