"""The episode viewer page: the template rendered directly (escaping, structure, figures),
the page served by the API, and a screenshot of it in headless Chromium."""

import fnmatch
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from cluster.serve.api import make_app
from cluster.serve.core import Decision, LocalBackend
from cluster.serve.viewer import render_page
from envs.catalog import Catalog
from envs.generate import GeneratorConfig, write_catalog
from policies.checkpoint import CheckpointMetadata, save_checkpoint
from policies.policy import Policy, PolicyConfig

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars"]
CHOSEN_BAR = (0xE0, 0x7B, 0x00)  # .chosen .bar colour in cluster/serve/static/viewer.html
CHOSEN_ROW = (0xFF, 0xF4, 0xC2)
REWARD_GREEN = (0x0B, 0x6B, 0x3A)


EVIL = "<script>alert('x')</script> \"quoted\" & more"
EVIL_HTML = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &#34;quoted&#34; &amp; more"
INFO = {"version": 3, "checkpoint": "runs/a&b"}


def episode(goal_id=None, reward_info=None, reward=0.0):
    """An episode as `/episode` returns it; every text field carries markup and quotes."""
    step = {"page": "search", "policy_version": 3, "reward": 0.0, "observation": f"WebShop [SEP] {EVIL}",
            "candidates": [{"text": f"search[{EVIL}]", "prob": 0.25}, {"text": "click[buy now]", "prob": 0.75}],
            "chosen": 0, "action": f"search[{EVIL}]", "logp": -1.3863, "value": 0.5}
    last = {**step, "page": "item", "reward": reward, "chosen": 1, "action": "click[buy now]", "logp": -0.2877}
    return {"instruction": EVIL, "goal_id": goal_id, "graded": "free" if goal_id is None else "goal",
            "reward": reward, "terminated": reward_info is not None, "num_steps": 2, "steps": [step, last],
            "reward_info": reward_info}


def test_viewer_escapes_user_text():
    html = render_page(episode(), INFO, num_goals=10)
    assert "<script>" not in html and "\"quoted\"" not in html and "'x'" not in html
    assert f'<div class="instruction">{EVIL_HTML}</div>' in html
    assert f'name="instruction" maxlength="2000" value="{EVIL_HTML}">' in html  # the form keeps the text
    assert f'<td class="text">search[{EVIL_HTML}]</td>' in html  # a candidate action
    assert f'<span class="action">search[{EVIL_HTML}]</span>' in html  # the chosen action
    assert f'<pre class="page">WebShop\n{EVIL_HTML}</pre>' in html  # the observation, one line per element
    assert "runs/a&amp;b" in html
    error = render_page(None, INFO, 10, error=f"goal_id: {EVIL}")
    assert f'<div class="error">goal_id: {EVIL_HTML}</div>' in error and "<script>" not in error


def test_viewer_page_structure_and_figures():
    info = {"r_type": 1.0, "r_att": 0.5, "w_att": 0.25, "r_option": None, "w_option": 0.125, "r_price": True,
            "w_price": 0.2, "num_attr_matches": 2, "num_option_matches": 0, "title_score": 0.33333}
    html = render_page(episode(goal_id=7, reward_info=info, reward=0.75), INFO, num_goals=10)
    assert html.count('class="step"') == 2 and html.count('<tr class="chosen">') == 2
    assert 'id="step-1"' in html and 'id="step-2"' in html
    assert "policy version 3 &middot; runs/a&amp;b &middot; catalog goals 0&ndash;9" in html
    assert 'max="9" value="7"' in html and 'name="instruction" maxlength="2000" value=""' in html
    assert "goal 7 &middot; 2 steps &middot; bought" in html and '<div class="reward">0.750</div>' in html
    assert "step 2 &middot; item page &middot; policy v3 &middot; reward 0.750</h2>" in html
    assert "step 1 &middot; search page &middot; policy v3</h2>" in html  # no reward on a zero step
    for row in ("<th>type match</th><td>1.000</td><td></td>", "<th>attributes</th><td>0.500</td><td>weight 0.250</td>",
                "<th>options</th><td>&ndash;</td><td>weight 0.125</td>", "<th>price</th><td>yes</td>",
                "<th>attributes matched</th><td>2</td>", "<th>title noun overlap</th><td>0.333</td>"):
        assert row in html
    assert "<td> 25.0%</td>" in html and 'style="width:25.0%"' in html and "<td> 75.0%</td>" in html
    assert "(log-prob -1.386, value 0.500)" in html and "(log-prob -0.288, value 0.500)" in html
    free = render_page(episode(), INFO, num_goals=0)
    assert "graded on type and price only (free instruction) &middot; 2 steps &middot; truncated without buying" in free
    assert '<div class="reward zero">0.000</div>' in free and "no purchase: no reward breakdown" in free
    assert "catalog goals 0&ndash;0" in free
    hint = render_page(None, INFO, num_goals=10)
    assert "Choose a goal id" in hint and 'class="step"' not in hint and 'class="summary"' not in hint


def test_viewer_template_is_package_data():
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[3]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cluster"]
    assert any(fnmatch.fnmatch("serve/static/viewer.html", p) for p in patterns)
    assert (root / "cluster" / "serve" / "static" / "viewer.html").exists()


class ShopperBackend(LocalBackend):
    """The real policy's backend, but its decisions follow WebShop's rule baseline (search,
    open the first hit, buy) so that the page shows a purchase and its reward breakdown."""

    async def act(self, item):
        d = await super().act(item)
        texts = item.candidates
        pick = next((i for i, t in enumerate(texts) if t == "click[buy now]"), None)
        if pick is None:
            pick = next((i for i, t in enumerate(texts) if t.startswith("click[item - ")), 0)
        probs = [0.1 / max(len(texts) - 1, 1)] * len(texts)
        probs[pick] = 0.9 if len(texts) > 1 else 1.0
        return Decision(pick, -0.105, d.value, probs, d.version)


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    import uvicorn

    root = tmp_path_factory.mktemp("viewer")
    ckpt = save_checkpoint(Policy(PolicyConfig(model="tiny")), root / "ckpt", CheckpointMetadata(version=5))
    catalog = Catalog.from_dir(write_catalog(GeneratorConfig(size=150, seed=4), root / "catalog"))
    srv = uvicorn.Server(uvicorn.Config(make_app(ShopperBackend(ckpt, catalog)), host="127.0.0.1", port=0,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}", root
    srv.should_exit = True
    thread.join(timeout=10)


def test_viewer_html_shows_the_episode(viewer):
    url, _ = viewer
    ep = requests.post(url + "/episode", json={"goal_id": 2}, timeout=60).json()
    assert ep["terminated"] and ep["reward_info"] is not None
    page = requests.get(url + "/viewer", params={"goal_id": 2}, timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert ep["instruction"] in html and f"{ep['reward']:.3f}" in html
    assert html.count('class="step"') == ep["num_steps"]
    assert html.count('<tr class="chosen">') == ep["num_steps"]
    for label in ("type match", "attributes", "options", "price"):
        assert f"<th>{label}</th>" in html
    assert "policy version 5" in html and "click[buy now]" in html
    # the form, an unknown goal, and escaping of what the user typed
    assert "run episode" in requests.get(url + "/viewer", timeout=10).text
    missing = requests.get(url + "/viewer", params={"goal_id": 99999}, timeout=10)
    assert missing.status_code == 404 and "not a goal of the loaded catalog" in missing.text
    free = requests.get(url + "/viewer", params={"instruction": "<script>alert(1)</script> mug"}, timeout=60).text
    assert "<script>alert" not in free and "&lt;script&gt;alert(1)&lt;/script&gt; mug" in free


def colour_count(image, rgb, tol=6) -> int:
    return sum(n for n, c in image.getcolors(maxcolors=1 << 20) if all(abs(a - b) <= tol for a, b in zip(c, rgb)))


def test_viewer_screenshot_in_headless_chromium(viewer, tmp_path):
    url, _ = viewer
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (Debian: apt-get install -y chromium)")
    from PIL import Image

    shot = tmp_path / "viewer.png"
    out = subprocess.run([chromium, *CHROMIUM_FLAGS, "--window-size=1280,1400", f"--screenshot={shot}",
                          f"--user-data-dir={tmp_path / 'profile'}", f"{url}/viewer?goal_id=2"],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists(), out.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1400)
    assert len(image.getcolors(maxcolors=1 << 20)) > 200  # text and bars rendered, not a blank page
    assert colour_count(image, CHOSEN_BAR) > 100  # the chosen action's probability bar
    assert colour_count(image, CHOSEN_ROW) > 2_000  # the chosen rows are highlighted
    assert colour_count(image, REWARD_GREEN, tol=30) > 50  # a positive reward, in green
