"""The episode viewer: one episode rendered server-side as a plain HTML page.

Rendered on the server (no script), so it shows the same in any browser, in a
headless screenshot and in `curl`. The page is the Jinja2 template
`static/viewer.html` with autoescaping on, so every text from the catalog, the
request or the policy reaches the page HTML-escaped.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

SEP = " [SEP] "
# (reward_info key, label, key of its weight or None), in the order the page lists them
REWARD_PARTS = [("r_type", "type match", None), ("r_att", "attributes", "w_att"),
                ("r_option", "options", "w_option"), ("r_price", "price", "w_price")]


def _num(v) -> str:
    """A breakdown figure: 3 decimals for floats, yes/no for flags, a dash when missing."""
    if v is None:
        return Markup("&ndash;")
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _bar_width(prob: float) -> float:
    """Width of a probability bar in percent, clipped to [0, 100]."""
    return max(0.0, min(100.0, 100.0 * prob))


def _page_text(observation: str) -> str:
    """The observation with one line per page element."""
    return observation.replace(SEP, "\n")


_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "static"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters.update(num=_num, bar_width=_bar_width, page_text=_page_text)
TEMPLATE = _ENV.get_template("viewer.html")


def render_page(ep: dict | None, info: dict, num_goals: int, error: str | None = None) -> str:
    """The whole page: header, goal form, then the episode (or an error / a hint).

    Args:
        ep: the episode as `/episode` returns it, or None for the form alone.
        info: the backend's version info (`version`, `checkpoint`).
        num_goals: goals in the loaded catalog (the form's goal id range).
        error: a message shown instead of the episode.
    """
    goal_value = "" if ep is None or ep["goal_id"] is None else str(ep["goal_id"])
    instruction_value = ep["instruction"] if ep is not None and ep["goal_id"] is None else ""
    return TEMPLATE.render(ep=None if error else ep, error=error, version=info["version"],
                           checkpoint=info["checkpoint"], last_goal=max(num_goals - 1, 0),
                           goal_value=goal_value, instruction_value=instruction_value,
                           reward_parts=REWARD_PARTS)
