"""Text normalisation shared by the reward and the pages.

WebShop compares options after mapping each one to the first base colour word it
contains (so "navy blue" becomes "blue", and "dark navy" becomes "dark": the first
match in the list's order wins, which is why the order below is WebShop's own). The
list is WebShop's colour vocabulary (MIT), kept in its order.
"""

from __future__ import annotations

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

COLOR_SET: tuple[str, ...] = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure",
    "banana", "beige", "black", "blue", "blush", "bordeaux", "bronze",
    "brown", "burgundy", "camel", "camo", "caramel", "champagne",
    "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee",
    "cognac", "copper", "coral", "cranberry", "cream", "crystal", "dark",
    "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite",
    "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo",
    "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac",
    "lime", "magenta", "maroon", "mauve", "merlot", "midnight", "mint", "mocha",
    "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive",
    "orange", "peach", "pewter", "pink", "plum", "purple", "rainbow", "red",
    "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull",
    "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal",
    "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
)



def normalize_color(value: str) -> str:
    """Return the first base colour (in WebShop's list order) found as a substring
    of `value`, else `value` unchanged."""
    for color in COLOR_SET:
        if color in value:
            return color
    return value


def fuzz_process(text: str) -> str:
    """The preprocessing WebShop's `thefuzz` applies before a ratio: drop non-ASCII
    characters (`force_ascii`), then replace every non-alphanumeric character by a
    space, lower-case and strip (`full_process`).

    `rapidfuzz` 3 applies no processor unless one is given, so the reward passes
    this one explicitly to stay equal to WebShop's scores.
    """
    return default_process(text.encode("ascii", "ignore").decode("ascii"))


def token_set_score(a: str, b: str) -> int:
    """`thefuzz.fuzz.token_set_ratio(a, b)`: rapidfuzz's ratio on processed
    strings, rounded to an int the way thefuzz rounds it."""
    return int(round(fuzz.token_set_ratio(a, b, processor=fuzz_process)))


def option_display(value: str) -> str:
    """WebShop's loading rule for option values: strip, '/' shown as ' | ',
    lower-cased."""
    return value.strip().replace("/", " | ").lower()
