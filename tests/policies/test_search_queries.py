"""Search-query candidates against hand-written expectations."""

from __future__ import annotations

import pytest

from policies.search_queries import (
    instruction_from_state,
    keyword_query,
    search_candidates,
    search_queries,
    strip_price_clause,
)

INSTR = "i am looking for a gluten free and sugar free protein bar, and price lower than 40.00 dollars"


def test_three_variants():
    assert search_candidates(INSTR) == [
        "search[i am looking for a gluten free and sugar free protein bar, and price lower than 40.00 dollars]",
        "search[i am looking for a gluten free and sugar free protein bar]",
        "search[gluten free sugar free protein bar]",
    ]


@pytest.mark.parametrize(
    "instruction, expected",
    [
        ("i need a long clip-in hair extension which is natural looking, and price lower than 40.00 dollars",
         "long clip-in hair extension natural looking"),
        ("i want a solid wood table in dark cognac brown color for my living room",
         "solid wood table dark cognac brown color living room"),
        ("id like to buy a small white jumpsuit with a relaxed fit", "small white jumpsuit relaxed fit"),
        ("can you find me a shelf stable potato side dish?", "shelf stable potato side dish"),
        ("i am searching for 2 packs of gluten free chewy chocolate chip granola bars",
         "2 packs gluten free chewy chocolate chip granola bars"),
        ("Find me men's size 10.5 running shoes, and price lower than 60.00 dollars",
         "men's size 10.5 running shoes"),
    ],
)
def test_keyword_query(instruction, expected):
    assert keyword_query(instruction) == expected


def test_strip_price_clause():
    assert strip_price_clause("a red hat, and price lower than 1,200.50 dollars") == "a red hat"
    assert strip_price_clause("a red hat") == "a red hat"


def test_duplicates_are_dropped():
    assert search_queries("wireless mouse") == ["wireless mouse"]
    assert search_queries("i need a wireless mouse") == ["i need a wireless mouse", "wireless mouse"]


def test_instruction_from_state():
    text = "WebShop [SEP] Instruction: [SEP] i need a red shirt [SEP] Search"
    rich = "Amazon Shopping Game\nInstruction: \ni need a red shirt\n[button] Search [button_]"
    assert instruction_from_state(text) == instruction_from_state(rich) == "i need a red shirt"
    assert instruction_from_state("Thank you for shopping with us!") is None
