"""Finding the nouns of a product title without a part-of-speech model.

WebShop's type reward keeps the tokens that spaCy's `en_core_web_sm` tags NOUN or
PROPN in the purchased and the goal product titles, and scores their overlap. No
spaCy model can be downloaded here, so this module approximates that tagger with
rules that follow how the tagger behaves on product titles:

1. Titles are tokenised like spaCy does for this purpose: runs of letters and
   digits, with hyphens, slashes, commas, brackets and other punctuation splitting
   tokens ("Non-Slip" -> "Non", "Slip"; "12/Pack" -> "12", "Pack").
2. Pure numbers ("7.5", "12") are NUM, not nouns; tokens mixing letters and
   digits ("Traveltime529", "12oz", "1080p") are kept, since the tagger reads them
   as proper nouns.
3. Closed-class words — determiners, prepositions, conjunctions, pronouns,
   auxiliaries, particles ("a", "the", "for", "with", "and", "of", "to", "it",
   "is") — are never nouns, whatever their case.
4. In Title Case text spaCy's small model tags almost every other capitalised word
   PROPN (brands, "Mule", "Shoes", "Leather"); that is why a capitalised token is a
   noun here.
5. Lower-case tokens are nouns unless they look like adjectives, adverbs or verb
   forms: a small list of common title adjectives ("free", "easy", "new",
   "large", "waterproof", ...) and the suffixes "-ly", "-ed", "-ing" (but not
   "-ing" nouns such as "clothing", "bedding", "lighting", "ring", "string").

The result is lower-cased, in title order, with repeats kept (WebShop divides by
the length of the goal's list, repeats included).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.'][A-Za-z0-9]+)*")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")

FUNCTION_WORDS = frozenset(
    """a an the this that these those each every any some all both either neither no
    for with without and or nor but of to in on at by from into onto over under up down
    out off about above below between through during before after against among per
    via as than like near inside outside upon within across along around behind beyond
    i you he she it we they me him her us them my your his its our their mine yours
    is are was were be been being am do does did has have had will would shall should
    can could may might must not so too very just also only then there here when
    where which who whom whose what why how if while because s t""".split()
)

TITLE_ADJECTIVES = frozenset(
    """free easy new large small big little long short high low best great good perfect
    soft hard heavy light lightweight thin thick wide narrow deep fresh natural organic
    pure premium extra super ultra mini portable waterproof durable comfortable
    adjustable compatible reusable washable breathable stretchy elastic casual classic
    modern vintage cute fashion stylish elegant sturdy strong safe healthy gentle
    sensitive daily quick fast slim full half multi non anti real original genuine
    professional electric digital smart wireless automatic compact foldable
    rechargeable cordless stainless solid clear dry wet hot cold warm cool sweet
    spicy salty sour delicious tasty crunchy chewy creamy raw whole certified
    vegan keto dark bright""".split()
)

_ING_NOUNS = frozenset(
    """clothing bedding lighting ring string king spring ceiling wedding building
    packing seasoning frosting icing topping filling stuffing dressing pudding
    stocking earring sling swing wing thing sterling""".split()
)


def title_tokens(text: str) -> list[str]:
    """Split a title into word tokens (punctuation and hyphens split)."""
    return _TOKEN.findall(text)


def is_noun(token: str) -> bool:
    """Whether `token` (as it appears in the title) counts as NOUN/PROPN."""
    low = token.lower()
    if _NUMBER.match(low) or low in FUNCTION_WORDS:
        return False
    if token[0].isupper():
        return True
    if len(low) < 2:  # "x" in "12 x 16" is a symbol, not a noun
        return False
    if low in TITLE_ADJECTIVES:
        return False
    if low.endswith(("ly", "ed")) and len(low) > 4:
        return False
    if low.endswith("ing") and len(low) > 5 and low not in _ING_NOUNS:
        return False
    return True


def title_nouns(text: str) -> list[str]:
    """Lower-cased nouns of a title, in order, repeats kept (see module doc)."""
    return [t.lower() for t in title_tokens(text) if is_noun(t)]
