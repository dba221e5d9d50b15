"""Search-query candidates against hand-written expectations."""

from __future__ import annotations

import re
import time

import pytest

from policies.search_queries import (
    MAX_INSTRUCTION_CHARS,
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


# The patterns before whitespace was collapsed (quadratic on long whitespace runs, exact on
# normal text): the reference the linear versions must reproduce on real instructions.
_OLD_PRICE = re.compile(r",?\s*(?:and\s+)?(?:with\s+a\s+)?price\s+(?:lower|less)\s+than\s+\$?\s*[\d,]+(?:\.\d+)?"
                        r"\s*(?:dollars?)?", re.IGNORECASE)
_OLD_INSTRUCTION = re.compile(r"instruction:\s*(?:\[sep\])?\s*(.*?)\s*(?:\[sep\]|\[button\]|\n|$)",
                              re.IGNORECASE | re.DOTALL)


def _old_strip(text: str) -> str:
    return re.sub(r"\s+", " ", _OLD_PRICE.sub("", text)).strip().rstrip(" ,.;:!?").strip()


def _old_instruction(state: str) -> str | None:
    m = _OLD_INSTRUCTION.search(state)
    return m.group(1).strip() if m and m.group(1).strip() else None


def test_catalog_instructions_and_pages_give_what_the_old_patterns_gave():
    from envs.env import WebShopEnv
    from envs.generate import default_catalog

    catalog = default_catalog()
    env = WebShopEnv(catalog=catalog)
    for split in ("test", "eval", "train"):
        for goal_id in list(catalog.splits[split])[:40]:
            text = catalog.goals[goal_id].instruction_text
            assert strip_price_clause(text) == _old_strip(text)
            assert strip_price_clause(text.upper()) == _old_strip(text.upper())
            assert _old_strip(text).lower() in {q.lower() for q in search_queries(text)}
            obs, _ = env.reset(options={"goal_id": goal_id})
            assert instruction_from_state(obs) == _old_instruction(obs) == text
    for state in ["Instruction: [SEP] a  red\that [SEP] x", "instruction:\n[sep] mug\n more", "INSTRUCTION: shoes",
                  "Instruction: [SEP] [SEP] x", "no label here", "Instruction:   tea [button] Search"]:
        old = _old_instruction(state)
        assert instruction_from_state(state) == (re.sub(r"\s+", " ", old) if old else None), state


@pytest.mark.parametrize("text", [
    "Instruction: [SEP] i want" + " " * 20_000 + "shoes, and" + " " * 20_000 + "price lower than 4 [SEP] Search",
    "Instruction:" + " " * 20_000, "i want a hat," + " \t\n" * 7_000 + "x", "price " * 5_000,
])
def test_long_whitespace_is_linear_and_capped(text):
    start = time.perf_counter()
    extracted = instruction_from_state(text)
    queries = search_queries(text)
    keyword_query(text), strip_price_clause(text)
    assert time.perf_counter() - start < 1.0
    assert all(len(q) <= MAX_INSTRUCTION_CHARS and "  " not in q for q in queries)
    assert extracted is None or (len(extracted) <= MAX_INSTRUCTION_CHARS and "  " not in extracted)
    if text.startswith("Instruction: [SEP] i want"):
        assert extracted == "i want shoes, and price lower than 4"
        assert search_queries(extracted) == ["i want shoes, and price lower than 4", "i want shoes", "shoes"]
