"""The pages of WebShop's site as text, and what can be clicked on each.

WebShop renders HTML pages and its `text` observation mode keeps the visible text
nodes joined by " [SEP] "; `text_rich` marks buttons as "[button] x [button_]" and
chosen options as "[clicked button] x [clicked button_]". This module builds the
same texts directly from the page's parts (no HTML round trip), which is what
makes an env step cheap. Each page is a list of `Segment`s: its text and whether
it is a clickable (and, if so, its click name, lower-cased as WebShop does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from envs.products import Product

SEP = " [SEP] "
PRODUCT_WINDOW = 10
BACK_TO_SEARCH = "back to search"
NEXT_PAGE = "next >"
PREV_PAGE = "< prev"
BUY_NOW = "buy now"
SUB_PAGES = ("Description", "Features", "Reviews", "Attributes")


@dataclass(frozen=True, slots=True)
class Segment:
    """One visible text of a page. `click` is its click name when clickable;
    `kind` is "text", "button", "product" or "option"."""

    text: str
    kind: str = "text"
    click: str | None = None
    chosen: bool = False


def _button(label: str) -> Segment:
    return Segment(label, "button", label.lower())


def _instruction(instruction: str) -> list[Segment]:
    return [Segment("Instruction:"), Segment(instruction)]


def search_page(instruction: str) -> list[Segment]:
    # The "Search" button submits the search bar; WebShop does not accept click[search].
    return [Segment("WebShop"), *_instruction(instruction), Segment("Search", "button")]


def results_page(
    instruction: str, products: Sequence[Product], page: int, total: int, visited: set[str]
) -> list[Segment]:
    segs = [*_instruction(instruction), _button("Back to Search"),
            Segment(f"Page {page} (Total results: {total})")]
    if page > 1:
        segs.append(_button("< Prev"))
    segs.append(_button("Next >"))
    for p in products:
        segs.append(Segment(p.asin, "product", p.asin.lower(), chosen=p.asin in visited))
        segs.append(Segment(p.title))
        segs.append(Segment(p.price_tag))
    return segs


def item_page(
    instruction: str, product: Product, chosen: dict[str, str], show_attrs: bool
) -> list[Segment]:
    segs = [*_instruction(instruction), _button("Back to Search"), _button("< Prev")]
    for group, values in product.options.items():
        segs.append(Segment(group))
        for v in values:
            segs.append(Segment(v, "option", v, chosen=chosen.get(group) == v))
    segs += [
        Segment(product.title),
        Segment(f"Price: {product.price_tag}"),
        Segment(f"Rating: {product.rating}"),
        _button("Description"),
        _button("Features"),
        _button("Reviews"),
    ]
    if show_attrs:
        segs.append(_button("Attributes"))
    segs.append(_button("Buy Now"))
    return segs


def sub_page(instruction: str, product: Product, name: str) -> list[Segment]:
    segs = [*_instruction(instruction), _button("Back to Search"), _button("< Prev")]
    if name == "Description":
        segs.append(Segment(product.description))
    elif name == "Features":
        segs += [Segment(b) for b in product.bullet_points]
    elif name == "Reviews":
        for r in product.reviews:
            segs += [Segment(f'"{r["title"]}"'), Segment(str(r["score"])), Segment(r["body"])]
    elif name == "Attributes":
        segs += [Segment(a) for a in product.attributes]
    return [s for s in segs if s.text]


def done_page(reward: float) -> list[Segment]:
    return [
        Segment("Thank you for shopping with us!"),
        Segment("Your score (min 0.0, max 1.0)"),
        Segment(str(reward)),
    ]


def as_text(segments: Sequence[Segment]) -> str:
    """WebShop's `text` mode."""
    return SEP.join(s.text for s in segments)


def as_text_rich(segments: Sequence[Segment]) -> str:
    """WebShop's `text_rich` mode: one line per text, buttons marked."""
    lines, clicked = [], []
    for s in segments:
        if s.kind == "text":
            lines.append(s.text)
        elif s.chosen and s.kind == "option":
            lines.append(f"  [clicked button] {s.text} [clicked button_]")
            clicked.append(f"You have clicked {s.text}.")
        elif s.kind == "option":
            lines.append(f"  [button] {s.text} [button_]")
        elif s.chosen:
            lines.append(f"\n[clicked button] {s.text} [clicked button_]")
        else:
            lines.append(f"[button] {s.text} [button_]")
    return "\n".join(reversed(clicked) if clicked else []) + ("\n" if clicked else "") + "\n".join(lines) + "\n"


def clickables(segments: Sequence[Segment]) -> dict[str, Segment]:
    """Click name -> segment; later segments win, as in WebShop's dict."""
    return {s.click: s for s in segments if s.click is not None}
