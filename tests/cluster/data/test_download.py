"""Fetching files from a local HTTP server: resume after a cut transfer, Google Drive's
confirm step, and files that must not be taken for good (checksum, size, structure)."""

import hashlib
import io
import zipfile
from dataclasses import replace

import pytest

from cluster.data.download import FetchError, digests, fetch_all, read_sums
from cluster.data.sources import DataFile
from tests.conftest import FIXTURES

PRODUCTS = (FIXTURES / "items_shuffle_fixture.json").read_bytes()
SHA = hashlib.sha256(PRODUCTS).hexdigest()


def spec(server, path="/items_shuffle_1000.json", **kw) -> DataFile:
    return DataFile(path.lstrip("/"), server.url + path, kw.pop("kind", "products"), **kw)


def test_interrupted_transfer_resumes_from_the_part_file(server, tmp_path):
    server.files["/items_shuffle_1000.json"] = PRODUCTS
    server.cut["/items_shuffle_1000.json"] = 1000  # the first response closes after 1,000 bytes
    plan = [(spec(server, sha256=SHA, size=len(PRODUCTS)), tmp_path)]
    with pytest.raises(FetchError, match=f"stopped after 1,000 of {len(PRODUCTS):,} bytes; run the same command "
                                         f"again to resume"):
        fetch_all(plan, bar=False)
    part = tmp_path / "items_shuffle_1000.json.part"
    assert part.read_bytes() == PRODUCTS[:1000] and not (tmp_path / "items_shuffle_1000.json").exists()

    (got,) = fetch_all(plan, bar=False)
    assert [r[2] for r in server.requests] == [None, "bytes=1000-"]  # the rerun asked for the rest only
    assert got.path.read_bytes() == PRODUCTS and not part.exists()
    assert (got.sha256, got.pinned, got.downloaded) == (SHA, True, True)
    assert read_sums(tmp_path) == {"items_shuffle_1000.json": SHA}
    (again,) = fetch_all(plan, bar=False)  # already there: checked, not downloaded
    assert not again.downloaded and len(server.requests) == 2


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.parametrize("recorded, message", [
    ({"sha256": SHA}, f"checksum mismatch: sha256 [0-9a-f]{{64}}, the project records {SHA}"),
    ({"git_blob": _git_blob(PRODUCTS)}, "checksum mismatch: git object id"),
    ({"size": len(PRODUCTS) + 1}, f"size mismatch: {len(PRODUCTS):,} bytes, the project records"),
])
def test_a_corrupted_file_is_kept_aside_not_in_place(server, tmp_path, recorded, message):
    server.files["/items_shuffle_1000.json"] = PRODUCTS.replace(b"Taupe Leather", b"Taupe Leathex")  # same size
    with pytest.raises(FetchError, match=message + ".*kept as .*items_shuffle_1000.json.bad, not used") as e:
        fetch_all([(spec(server, **recorded), tmp_path)], bar=False)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items_shuffle_1000.json.bad"]


def test_a_cut_off_json_file_without_checksum_is_refused(server, tmp_path):
    server.files["/items_shuffle_1000.json"] = PRODUCTS[: len(PRODUCTS) // 2]  # complete transfer, half a file
    with pytest.raises(FetchError, match="items_shuffle_1000.json.part: not a JSON list of products \\(or cut off\\)"):
        fetch_all([(spec(server), tmp_path)], bar=False)
    assert not (tmp_path / "items_shuffle_1000.json").exists()


def test_a_checksum_recorded_by_an_earlier_fetch_is_checked(server, tmp_path):
    server.files["/items_shuffle_1000.json"] = PRODUCTS
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  items_shuffle_1000.json\n")
    with pytest.raises(FetchError, match="an earlier fetch recorded in SHA256SUMS 0{64}"):
        fetch_all([(spec(server), tmp_path)], bar=False)


@pytest.mark.parametrize("style", ["form", "link"])
def test_google_drive_confirm_page_is_followed(server, tmp_path, style):
    server.drive_style = style
    server.files["drive:FILEID"] = PRODUCTS
    plan = [(DataFile("items_shuffle_1000.json", f"{server.url}/uc?export=download&id=FILEID", "products"), tmp_path)]
    (got,) = fetch_all(plan, bar=False)
    assert got.path.read_bytes() == PRODUCTS and not got.pinned
    first, second = server.requests
    assert first[0] == "/uc" and "confirm" not in first[1]
    want = {"form": ("/download", {"id": "FILEID", "export": "download", "confirm": "t", "uuid": "u-1"}),
            "link": ("/uc", {"export": "download", "confirm": "Xy_z", "id": "FILEID"})}[style]
    assert second[:2] == want


def test_a_drive_page_without_a_download_is_one_clear_error(server, tmp_path):
    server.drive_style = "quota"
    plan = [(DataFile("items_ins_v2_1000.json", f"{server.url}/uc?export=download&id=X", "attributes"), tmp_path)]
    with pytest.raises(FetchError, match="answered with a web page, not the file "
                                         "\\(page title: 'Google Drive - Quota exceeded'\\)"):
        fetch_all(plan, bar=False)


def test_demos_zip_is_checked_then_unpacked(server, tmp_path):
    jsonl = (FIXTURES.parent.parent / "rollout_workers" / "fixtures" / "il_trajs_fixture_catalog.jsonl").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data/il_trajs_finalized_images.jsonl", jsonl)
    data = buf.getvalue()
    server.files["/il_trajs_finalized_images.zip"] = data
    demos = DataFile("il_trajs_finalized_images.zip", server.url + "/il_trajs_finalized_images.zip", "demos-zip",
                     git_blob=_git_blob(data), member="il_trajs_finalized_images.jsonl")
    (got,) = fetch_all([(demos, tmp_path)], bar=False)
    assert got.path == tmp_path / "il_trajs_finalized_images.jsonl" and got.path.read_bytes() == jsonl
    assert got.pinned and not (tmp_path / "il_trajs_finalized_images.zip").exists()
    assert read_sums(tmp_path) == {"il_trajs_finalized_images.jsonl": digests(got.path)[0]}
    bad = replace(demos, git_blob="0" * 40)
    got.path.unlink()
    with pytest.raises(FetchError, match="il_trajs_finalized_images.zip: checksum mismatch: git object id"):
        fetch_all([(bad, tmp_path / "other")], bar=False)


def test_progress_lines_for_a_large_file(server, tmp_path, capsys):
    import json

    data = json.dumps([{"asin": f"B{i:09d}", "name": "x" * 200} for i in range(10_000)]).encode()  # ~2.3 MB
    server.files["/items_shuffle.json"] = data
    fetch_all([(spec(server, "/items_shuffle.json"), tmp_path)], bar=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("fetch items_shuffle.json:  44% (1/2 MB) elapsed")  # per 1 MB read
    assert lines[-1].startswith("fetch items_shuffle.json: 100% (2/2 MB)")


def test_a_missing_file_names_the_http_status_and_what_to_do(server, tmp_path):
    with pytest.raises(FetchError, match="items_shuffle_1000.json: http://127.0.0.1:\\d+/items_shuffle_1000.json "
                                         "answered HTTP 404 .*download it by hand into .*--url items_shuffle_1000"):
        fetch_all([(spec(server), tmp_path)], bar=False)
