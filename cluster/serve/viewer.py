"""The episode viewer: one episode rendered server-side as a plain HTML page.

Rendered on the server (no script), so it shows the same in any browser, in a
headless screenshot and in `curl`. Every text from the catalog, the request or
the policy is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template

TEMPLATE = Template((Path(__file__).parent / "static" / "viewer.html").read_text())
SEP = " [SEP] "
REWARD_PARTS = [("r_type", "type match", None), ("r_att", "attributes", "w_att"),
                ("r_option", "options", "w_option"), ("r_price", "price", "w_price")]


def _num(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.3f}" if isinstance(v, float) else escape(str(v))


def _breakdown(info: dict | None) -> str:
    if not info:
        return "<p>no purchase: no reward breakdown</p>"
    rows = "".join(f"<tr><th>{label}</th><td>{_num(info.get(key))}</td>"
                   f"<td>{'weight ' + _num(info.get(w)) if w else ''}</td></tr>"
                   for key, label, w in REWARD_PARTS)
    extra = (f"<tr><th>attributes matched</th><td>{_num(info.get('num_attr_matches'))}</td><td></td></tr>"
             f"<tr><th>options matched</th><td>{_num(info.get('num_option_matches'))}</td><td></td></tr>"
             f"<tr><th>title noun overlap</th><td>{_num(info.get('title_score'))}</td><td></td></tr>")
    return f'<table class="breakdown">{rows}{extra}</table>'


def _step(n: int, step: dict) -> str:
    rows = []
    for i, c in enumerate(step["candidates"]):
        chosen = ' class="chosen"' if i == step["chosen"] else ""
        width = max(0.0, min(100.0, 100.0 * c["prob"]))
        rows.append(f'<tr{chosen}><td>{100 * c["prob"]:5.1f}%</td>'
                    f'<td><div class="bar"><div style="width:{width:.1f}%"></div></div></td>'
                    f'<td class="text">{escape(c["text"])}</td></tr>')
    page = escape(step["observation"].replace(SEP, "\n"))
    reward = f" &middot; reward {step['reward']:.3f}" if step.get("reward") else ""
    return (f'<div class="step" id="step-{n}"><h2>step {n} &middot; {escape(step["page"])} page'
            f' &middot; policy v{step["policy_version"]}{reward}</h2>'
            f'<pre class="page">{page}</pre>'
            f'<table class="cand">{"".join(rows)}</table>'
            f'<p>chosen: <span class="action">{escape(step["action"])}</span>'
            f' (log-prob {step["logp"]:.3f}, value {step["value"]:.3f})</p></div>')


def render_episode(ep: dict) -> str:
    """The summary (instruction, reward, breakdown) and one card per step."""
    zero = " zero" if ep["reward"] <= 0 else ""
    graded = ("graded on type and price only (free instruction)" if ep["graded"] == "free"
              else f"goal {ep['goal_id']}")
    ending = "bought" if ep["terminated"] else "truncated without buying"
    summary = (f'<div class="summary"><div><div class="instruction">{escape(ep["instruction"])}</div>'
               f'<div class="meta">{graded} &middot; {ep["num_steps"]} steps &middot; {ending}</div></div>'
               f'<div><div class="reward{zero}">{ep["reward"]:.3f}</div>reward</div>'
               f'<div>{_breakdown(ep.get("reward_info"))}</div></div>')
    return summary + "".join(_step(i + 1, s) for i, s in enumerate(ep["steps"]))


def render_page(ep: dict | None, info: dict, num_goals: int, error: str | None = None) -> str:
    """The whole page: header, goal form, then the episode (or an error / a hint)."""
    if error:
        body = f'<div class="error">{escape(error)}</div>'
    elif ep is None:
        body = "<p>Choose a goal id or type an instruction, then run an episode.</p>"
    else:
        body = render_episode(ep)
    goal_value = "" if ep is None or ep["goal_id"] is None else str(ep["goal_id"])
    instr_value = escape(ep["instruction"]) if ep is not None and ep["goal_id"] is None else ""
    return TEMPLATE.substitute(version=info["version"], checkpoint=escape(info["checkpoint"]),
                               last_goal=max(num_goals - 1, 0), goal_value=goal_value,
                               instruction_value=instr_value, body=body)
