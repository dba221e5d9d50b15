"""Downloading WebShop's files: resumable HTTP with Google Drive's confirm step, checked.

A file is transferred into `NAME.part` (a rerun asks for the rest with an HTTP Range
request), then checked: the byte count against the server's Content-Length, the size
and checksums the project or an earlier fetch recorded (`sources.DataFile`,
`SHA256SUMS`), and its structure (a JSON list of products, a JSON object keyed by asin,
JSON lines of trajectories, a zip holding the trajectories). Only a file that passes
takes its real name; one that fails is moved to `NAME.bad` and the fetch stops with one
line saying why. Google Drive answers a large file with a "cannot scan for viruses"
page; its confirm form (or the older `confirm=` token) is followed with the standard
library, no `gdown`.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Callable, Sequence
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urljoin
from urllib.request import HTTPCookieProcessor, OpenerDirector, Request, build_opener

from cluster.data.sources import DataFile
from cluster.progress import Progress

SUMS_FILE = "SHA256SUMS"
CHUNK = 1 << 20
TIMEOUT_S = 60.0
HEAD_BYTES = 8 << 20  # the first record of a file must fit in this much
USER_AGENT = "webshop-rl-data-fetch"


class FetchError(Exception):
    """A file that could not be fetched or did not check out; the message is one line
    saying what to do."""


class Unreachable(FetchError):
    """No connection to the server at all (no network, a wrong mirror)."""


@dataclass(frozen=True)
class Fetched:
    """A file in place and checked."""

    path: Path
    size: int
    sha256: str
    pinned: bool  # its checksum was recorded before (project or SHA256SUMS), not only now
    downloaded: bool  # False: it was already there


def source_url(spec: DataFile, mirror: str | None = None, urls: dict[str, str] | None = None) -> str:
    """Where to get `spec`: a per-file URL, else the mirror's base URL + its name, else WebShop's."""
    if urls and spec.name in urls:
        return urls[spec.name]
    return f"{mirror.rstrip('/')}/{spec.name}" if mirror else spec.url


# -------------------------------------------------------------------- transfer
def _request(opener: OpenerDirector, url: str, start: int):
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={start}-"} if start else {})}
    return opener.open(Request(url, headers=headers), timeout=TIMEOUT_S)


def _is_page(resp) -> bool:
    return resp.headers.get("Content-Type", "").lower().startswith("text/html")


def confirm_url(url: str, page: str, cookies: CookieJar) -> str | None:
    """The URL Google Drive's "cannot scan this file" page confirms the download with:
    its download form (action + hidden fields), a `/uc?export=download...confirm=` link,
    or the `download_warning` cookie's token added to `url`; None if the page has none
    (a quota page, a login page, an error)."""
    form = re.search(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
    if form:
        fields = re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2))
        return html.unescape(form.group(1)) + "?" + urlencode([(n, html.unescape(v)) for n, v in fields])
    link = re.search(r'href="(/uc\?export=download[^"]*confirm=[^"]+)"', page)
    if link:
        return urljoin(url, html.unescape(link.group(1)))
    token = next((c.value for c in cookies if c.name.startswith("download_warning")), None)
    if token is None:
        m = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
        token = m.group(1) if m else None
    return f"{url}&confirm={token}" if token else None


def _page_title(page: str) -> str:
    m = re.search(r"<title>(.*?)</title>", page, re.S | re.I)
    return " ".join(html.unescape(m.group(1)).split())[:120] if m else page[:120].replace("\n", " ")


def open_download(opener: OpenerDirector, cookies: CookieJar, url: str, start: int):
    """The response that carries the file's bytes from offset `start` (Drive's confirm
    page followed where there is one)."""
    resp = _request(opener, url, start)
    if not _is_page(resp):
        return resp
    page = resp.read(1 << 20).decode("utf-8", "replace")
    resp.close()
    confirmed = confirm_url(url, page, cookies)
    if confirmed is None:
        raise FetchError(f"{url} answered with a web page, not the file (page title: {_page_title(page)!r})")
    resp = _request(opener, confirmed, start)
    if _is_page(resp):
        page = resp.read(1 << 20).decode("utf-8", "replace")
        raise FetchError(f"{url}: the confirmed download is a web page too (page title: {_page_title(page)!r})")
    return resp


def _span(resp, start: int, url: str) -> tuple[int, int | None]:
    """(offset the body starts at, the file's total size if the server says)."""
    if resp.status == 206:
        m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", "").strip())
        if not m or int(m.group(1)) != start:
            raise FetchError(f"{url} answered the request for bytes {start}- with "
                             f"{resp.headers.get('Content-Range')!r}; delete the .part file and rerun")
        return start, None if m.group(2) == "*" else int(m.group(2))
    length = resp.headers.get("Content-Length")
    return 0, None if length is None else int(length)


def transfer(url: str, part: Path, label: str, bar: bool | None = None) -> int:
    """Bring `url` into `part`, resuming from the bytes already there; the file's size.

    Raises:
        Unreachable: no connection. FetchError: an HTTP error, or the transfer stopped
        before the size the server announced (the `.part` keeps what arrived).
    """
    cookies = CookieJar()
    opener = build_opener(HTTPCookieProcessor(cookies))
    start = part.stat().st_size if part.exists() else 0
    try:
        resp = open_download(opener, cookies, url, start)
    except HTTPError as e:
        total = re.fullmatch(r"bytes \*/(\d+)", (e.headers or {}).get("Content-Range", "") or "")
        if e.code == 416 and total and int(total.group(1)) == start:
            return start  # the .part is already whole
        if e.code == 416:
            part.unlink()
            return transfer(url, part, label, bar)
        raise FetchError(f"{label}: {url} answered HTTP {e.code} {e.reason}; download it by hand into "
                         f"{part.parent}, or give --mirror URL or --url {label}=URL") from None
    except (URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Unreachable(f"cannot reach {url.split('/')[2]} ({reason})") from None
    with resp:
        offset, total = _span(resp, start, url)
        done = offset
        show = total is not None and total >= 1e6  # a bar for anything that takes a moment
        progress = Progress(total / 1e6, f"fetch {label}", unit="MB", bar=bar) if show else None
        with open(part, "r+b" if part.exists() else "wb") as f:
            f.seek(offset)
            f.truncate()
            if progress:
                progress.set(done / 1e6)
            cut = False
            try:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress.set(done / 1e6)
            except (http.client.HTTPException, OSError):
                cut = True  # what arrived is kept for the rerun
            finally:
                if progress:
                    progress.close()
    if cut or (total is not None and done != total):
        of = f" of {total:,}" if total is not None else ""
        raise FetchError(f"the transfer of {label} stopped after {done:,}{of} bytes; run the same command again "
                         f"to resume from {part}")
    return done


# -------------------------------------------------------------------- checks
def digests(path: Path) -> tuple[str, str]:
    """(sha256, git object id) of a file."""
    sha, blob = hashlib.sha256(), hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            blob.update(chunk)
    return sha.hexdigest(), blob.hexdigest()


def check_identity(path: Path, spec: DataFile, recorded_sha256: str | None) -> tuple[str, bool]:
    """Compare a file with what is recorded about it; returns (its sha256, whether any
    checksum was recorded). Raises FetchError naming the first mismatch."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise FetchError(f"{spec.name}: size mismatch: {size:,} bytes, the project records {spec.size:,}")
    sha, blob = digests(path)
    project, earlier = "the project records", f"an earlier fetch recorded in {SUMS_FILE}"
    for what, got, want, where in (("sha256", sha, spec.sha256, project), ("git object id", blob, spec.git_blob,
                                   project), ("sha256", sha, recorded_sha256, earlier)):
        if want is not None and got != want:
            raise FetchError(f"{spec.name}: checksum mismatch: {what} {got}, {where} {want}")
    return sha, any(v is not None for v in (spec.sha256, spec.git_blob, recorded_sha256))


def _first_value(text: str, path: Path) -> object:
    """The first element of a JSON list, or the first value of a JSON object, at the head of a file."""
    dec = json.JSONDecoder()
    s = text.lstrip()
    try:
        if s[:1] == "[":
            return dec.raw_decode(s[1:].lstrip())[0]
        if s[:1] == "{":
            rest = s[1:].lstrip()
            _, end = dec.raw_decode(rest)  # the key
            rest = rest[end:].lstrip()
            if rest[:1] == ":":
                return dec.raw_decode(rest[1:].lstrip())[0]
    except json.JSONDecodeError as e:
        raise FetchError(f"{path.name}: not valid JSON near its start ({e.msg})") from None
    raise FetchError(f"{path.name}: not JSON (it starts with {s[:40]!r})")


def _ends_with(path: Path, chars: str) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        tail = f.read().rstrip()
    return tail[-1:].decode("latin-1") in chars


def check_structure(path: Path, kind: str) -> None:
    """Raise FetchError unless `path` looks like a whole file of `kind` (the loaders read
    and check every record later; this catches a wrong or cut-off file early)."""
    if kind == "demos-zip":
        if not zipfile.is_zipfile(path):
            raise FetchError(f"{path.name}: not a zip file")
        return
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES).decode("utf-8", "replace")
    if kind == "demos":
        first = head.split("\n", 1)[0]
        try:
            record = json.loads(first)
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - (8 << 20)))
                json.loads(f.read().rstrip().rsplit(b"\n", 1)[-1])
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FetchError(f"{path.name}: its first or last line is not a JSON trajectory") from None
        if not isinstance(record, dict) or not {"states", "actions", "action_idxs"} <= record.keys():
            raise FetchError(f"{path.name}: its first line lacks 'states', 'actions' or 'action_idxs'")
        return
    want = {"products": ("[", "a JSON list of products"), "attributes": ("{", "a JSON object keyed by asin"),
            "human-instructions": ("{", "a JSON object keyed by asin")}[kind]
    value = _first_value(head, path)
    if head.lstrip()[:1] != want[0] or not _ends_with(path, "]" if want[0] == "[" else "}"):
        raise FetchError(f"{path.name}: not {want[1]} (or cut off)")
    ok = {"products": lambda v: isinstance(v, dict) and "asin" in v,
          "attributes": lambda v: isinstance(v, dict),
          "human-instructions": lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v)}[kind]
    if not ok(value):
        raise FetchError(f"{path.name}: not {want[1]}: its first record is {str(value)[:80]!r}")


def extract_member(zip_path: Path, member: str, out: Path) -> Path:
    """Unzip the entry named `member` (in any folder of the zip) to `out`, via a temp file."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            names = [n for n in z.namelist() if Path(n).name == member and not n.startswith("__MACOSX")]
            if not names:
                raise FetchError(f"{zip_path.name}: holds no {member} (it holds {z.namelist()[:5]})")
            tmp = out.with_name(out.name + ".part")
            with z.open(names[0]) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    except zipfile.BadZipFile as e:
        raise FetchError(f"{zip_path.name}: damaged zip ({e})") from None
    tmp.replace(out)
    return out


def read_sums(directory: Path) -> dict[str, str]:
    """name -> sha256 of a `SHA256SUMS` file (sha256sum's format)."""
    path = directory / SUMS_FILE
    if not path.exists():
        return {}
    pairs = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip().lstrip("*"): sha for sha, name in pairs}


def write_sums(directory: Path, sums: dict[str, str]) -> None:
    tmp = directory / (SUMS_FILE + ".tmp")
    tmp.write_text("".join(f"{sha}  {name}\n" for name, sha in sorted(sums.items())))
    tmp.replace(directory / SUMS_FILE)


# -------------------------------------------------------------------- one file, a set
def _check_present(path: Path, spec: DataFile, sums: dict[str, str]) -> tuple[str, bool]:
    """Check a file that was already there (fetched before, or put there by hand)."""
    try:
        sha, pinned = check_identity(path, spec, sums.get(path.name))
        check_structure(path, spec.kind)
    except FetchError as e:
        raise FetchError(f"{path} is there but does not check out ({e}); move it away and rerun") from None
    return sha, pinned


def fetch_file(spec: DataFile, directory: Path, url: str, sums: dict[str, str], bar: bool | None = None) -> Fetched:
    """Put `spec` (a zip: its member) checked into `directory`, downloading only what is missing."""
    target = directory / spec.target
    if target.exists():
        as_found = DataFile(target.name, url, "demos") if spec.member else spec
        sha, pinned = _check_present(target, as_found, sums)
        return Fetched(target, target.stat().st_size, sha, pinned, downloaded=False)
    path = directory / spec.name
    pinned = bool(spec.sha256 or spec.git_blob or spec.size) or spec.name in sums
    if path.exists():  # a zip put there by hand, not yet unpacked
        sha, _ = _check_present(path, spec, sums)
    else:
        part = path.with_name(path.name + ".part")
        transfer(url, part, spec.name, bar)
        try:
            sha, _ = check_identity(part, spec, sums.get(spec.name))
            check_structure(part, spec.kind)
        except FetchError as e:
            bad = path.with_name(path.name + ".bad")
            part.replace(bad)
            raise FetchError(f"{e}; the download is kept as {bad}, not used (rerun to download it again)") from None
        part.replace(path)
    if spec.member:  # the zip's checksum fixes its member's bytes (the zip checks each entry's CRC)
        extract_member(path, spec.member, target)
        check_structure(target, "demos")
        path.unlink()
        sha, _ = digests(target)
    return Fetched(target, target.stat().st_size, sha, pinned or target.name in sums, downloaded=True)


def by_hand(plan: Sequence[tuple[DataFile, Path]], mirror: str | None, urls: dict[str, str] | None) -> str:
    """What to download by hand, and where to put it, for the files of `plan` not there yet."""
    groups: dict[Path, list[str]] = {}
    for spec, directory in plan:
        if not (directory / spec.target).exists():
            unzip = " (unzip it there, or leave the zip: a rerun unpacks it)" if spec.member else ""
            groups.setdefault(directory, []).append(f"{spec.name} from {source_url(spec, mirror, urls)}{unzip}")
    return "; ".join(f"{', '.join(names)} into {d}" for d, names in groups.items())


def fetch_all(plan: Sequence[tuple[DataFile, Path]], mirror: str | None = None,
              urls: dict[str, str] | None = None, bar: bool | None = None,
              on_file: Callable[[Fetched], None] | None = None) -> list[Fetched]:
    """Fetch and check each (file, directory) of `plan`; record every file's sha256 in
    its directory's `SHA256SUMS`.

    Raises:
        FetchError: one line; without network it names each missing file, its URL and
            the directory to put it in by hand.
    """
    sums: dict[Path, dict[str, str]] = {}
    out = []
    for i, (spec, directory) in enumerate(plan):
        directory.mkdir(parents=True, exist_ok=True)
        known = sums.setdefault(directory, read_sums(directory))
        try:
            got = fetch_file(spec, directory, source_url(spec, mirror, urls), known, bar)
        except Unreachable as e:
            raise FetchError(f"{e}: without network, download {by_hand(plan[i:], mirror, urls)}, then run this "
                             f"command again to check them (or give --mirror URL)") from None
        known[got.path.name] = got.sha256
        write_sums(directory, known)
        out.append(got)
        if on_file is not None:
            on_file(got)
    return out
