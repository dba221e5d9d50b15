"""A local HTTP server for the fetch tests: serves bytes by path, honours Range
requests, can cut a response short once, and plays Google Drive's confirm page."""

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        srv.requests.append((url.path, query, self.headers.get("Range")))
        if url.path == "/uc" and "confirm" not in query:  # Drive: the "cannot scan for viruses" page
            return self._page(srv.drive_page(query["id"]))
        key = f"drive:{query['id']}" if url.path in ("/uc", "/download") else url.path
        if key not in srv.files:
            self.send_error(404)
            return
        self._body(key, srv.files[key])

    def _page(self, text: str):
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self, key: str, data: bytes):
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m:
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", self.server.types.get(key, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        cut = self.server.cut.pop(key, None)
        self.wfile.write(data[start:cut] if cut is not None else data[start:])
        if cut is not None:
            self.close_connection = True  # the body ends early: the client sees a short transfer


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.types, self.cut, self.requests = {}, {}, {}, []
        self.drive_style = "form"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def drive_page(self, file_id: str) -> str:
        if self.drive_style == "form":  # Drive since 2024: a form to drive.usercontent.google.com
            return (f'<html><head><title>Google Drive - Virus scan warning</title></head><body>'
                    f'<form id="download-form" action="{self.url}/download" method="get">'
                    f'<input type="hidden" name="id" value="{file_id}">'
                    f'<input type="hidden" name="export" value="download">'
                    f'<input type="hidden" name="confirm" value="t">'
                    f'<input type="hidden" name="uuid" value="u-1"></form></body></html>')
        if self.drive_style == "link":  # older: a link carrying a confirm token
            href = html.escape(f"/uc?export=download&confirm=Xy_z&id={file_id}")
            return f'<html><body><a id="uc-download-link" href="{href}">Download anyway</a></body></html>'
        return "<html><head><title>Google Drive - Quota exceeded</title></head><body>Too many users</body></html>"


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
