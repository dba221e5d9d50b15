"""Search candidates: `search[...]` strings made from a shopping instruction.

The env accepts free text in `search[...]`, so the policy needs a short list of
candidate queries to choose from. Three rule-based variants, deduplicated:

1. the instruction itself (WebShop's rule baseline searched with it);
2. the instruction without its price clause (", and price lower than 40.00
   dollars"), which only adds noise to a keyword search;
3. a keyword query: no price clause, no request filler ("i am looking for",
   "i need", "can you find me", ...) and no stop-words - the form of most of
   the 1,506 human queries in WebShop's goal_query_map.json
   ("i want a solid wood table in dark cognac brown color" -> "wood table dark
   cognac brown").

Every function here takes text from the network when Serve calls it, so each is
linear in its input: whitespace runs are collapsed to one space and the text is
capped at `MAX_INSTRUCTION_CHARS` before a pattern with whitespace quantifiers runs
(on a normal instruction neither step changes the output; the tests check the
generated catalog's goals against the earlier patterns).
"""

from __future__ import annotations

import re

MAX_INSTRUCTION_CHARS = 2_000  # longer than any WebShop instruction (the longest is a few hundred)
_SPACES = re.compile(r"\s+")
_PRICE_CLAUSE = re.compile(
    r",?\s*(?:and\s+)?(?:with\s+a\s+)?price\s+(?:lower|less)\s+than\s+\$?\s*[\d,]+(?:\.\d+)?\s*(?:dollars?)?",
    re.IGNORECASE,
)
# Request openers, longest first so "i am looking for" wins over "i am".
_FILLER = sorted(
    (f.strip() for f in """i am looking for|im looking for|i'm looking for|i am searching for|im searching for|
    i'm searching for|i am shopping for|i am interested in buying|im interested in buying|
    i am interested in|im interested in|i would like to buy|i would like to get|i would like|
    id like to buy|id like to get|i'd like to buy|i'd like|id like|i need to buy|i need to find|
    i want to buy|i want to find|i want to get|i need|i want|can you find me|can you get me|
    could you find me|find me|get me|show me|help me find|looking for|searching for|
    search for|please|buy me""".replace("\n", "").split("|")
    ),
    key=len,
    reverse=True,
)
_FILLER_RE = re.compile(r"\b(?:" + "|".join(re.escape(f) for f in _FILLER) + r")\b")
STOP_WORDS = frozenset(
    """a an the and or of for with that is are be it its in on to my me some
    which who this these those there also too very just so than then from by as
    at into about something one ones any can could would should will i im i'm
    you your we our us they them their has have had do does was were been get
    got buy want need like""".split()
)


def normalize_instruction(text: str, max_chars: int = MAX_INSTRUCTION_CHARS) -> str:
    """Whitespace runs as one space, ends stripped, at most `max_chars` characters."""
    return _SPACES.sub(" ", text).strip()[:max_chars]


def strip_price_clause(instruction: str) -> str:
    """The instruction without "..., and price lower than X dollars".

    Matched on the normalized text: with single spaces the pattern's whitespace quantifiers cannot
    retry a long run, and `_clean` collapses the spaces of the result anyway."""
    return _clean(_PRICE_CLAUSE.sub("", normalize_instruction(instruction)))


def keyword_query(instruction: str) -> str:
    """Price clause, request filler and stop-words removed; attributes kept."""
    text = strip_price_clause(instruction).lower()
    text = _FILLER_RE.sub(" ", text)
    tokens = re.findall(r"[a-z0-9][a-z0-9.\-/&']*", text)
    kept = [t.strip(".'") for t in tokens if t.strip(".'") not in STOP_WORDS]
    return " ".join(t for t in kept if t)


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(" ,.;:!?").strip()


def search_queries(instruction: str) -> list[str]:
    """Distinct query texts: instruction, without price, keywords (empty ones dropped)."""
    instruction = normalize_instruction(instruction)
    variants = [_clean(instruction), strip_price_clause(instruction), keyword_query(instruction)]
    seen: dict[str, None] = {}
    for v in variants:
        if v and v.lower() not in {s.lower() for s in seen}:
            seen[v] = None
    return list(seen)


def search_candidates(instruction: str) -> list[str]:
    """`search[...]` action strings for `search_queries(instruction)`."""
    return [f"search[{q}]" for q in search_queries(instruction)]


_INSTRUCTION_LABEL = re.compile(r"instruction:", re.IGNORECASE)
_INSTRUCTION_LEAD = re.compile(r"\s*(?:\[sep\])?\s*", re.IGNORECASE)
_INSTRUCTION_END = re.compile(r"\[sep\]|\[button\]|\n", re.IGNORECASE)


def instruction_from_state(state: str, max_chars: int = MAX_INSTRUCTION_CHARS) -> str | None:
    """The instruction of a WebShop page text ("... Instruction: [SEP] <it> [SEP] ..."):
    the text after the first "Instruction:" (and an optional "[SEP]") up to the next
    "[SEP]", "[button]" or line end, stripped, normalized (`normalize_instruction`).

    Three linear scans instead of one pattern with a lazy group before a whitespace quantifier, which
    retried every whitespace run once per character (quadratic)."""
    label = _INSTRUCTION_LABEL.search(state)
    if label is None:
        return None
    start = _INSTRUCTION_LEAD.match(state, label.end()).end()
    end = _INSTRUCTION_END.search(state, start)
    text = normalize_instruction(state[start:end.start() if end else len(state)], max_chars)
    return text or None
