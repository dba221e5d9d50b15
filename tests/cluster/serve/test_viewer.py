"""The episode viewer page: its HTML, and a screenshot of it in headless Chromium."""

import shutil
import subprocess
import threading
import time

import pytest
import requests

from cluster.serve.api import make_app
from cluster.serve.core import Decision, LocalBackend
from envs.catalog import Catalog
from envs.generate import GeneratorConfig, write_catalog
from policies.checkpoint import CheckpointMetadata, save_checkpoint
from policies.policy import Policy, PolicyConfig

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars"]
CHOSEN_BAR = (0xE0, 0x7B, 0x00)  # .chosen .bar colour in cluster/serve/static/viewer.html
CHOSEN_ROW = (0xFF, 0xF4, 0xC2)
REWARD_GREEN = (0x0B, 0x6B, 0x3A)


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
