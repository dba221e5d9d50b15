"""Who may swap the served checkpoint, and which checkpoints it may swap to.

`/reload` loads files named by the client, so it is off unless the server is started
with it (`ReloadGuard.allowed`), and then:

- only checkpoints under `root` load: the requested path (relative paths are taken
  from `root`, `~` is not expanded) is resolved, symlinks included, and must stay
  inside it - checked again on the checkpoint directory actually found;
- with a `token`, every call must carry `Authorization: Bearer <token>` (compared in
  constant time); without one, only loopback clients may call it (`start` refuses to
  bind beyond loopback with reloads on and no token);
- the body must be JSON (`Content-Type: application/json`, checked in `cluster.serve.api`):
  a cross-site HTML form can only send text/plain or form encodings;
- no error names a server path: a refused or missing checkpoint gets the same words
  whatever exists on disk.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cluster.serve.core import RequestError, resolve_checkpoint

TOKEN_ENV = "WEBSHOP_RL_RELOAD_TOKEN"


def is_loopback(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; False for anything else (or None)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ReloadGuard:
    """The `/reload` policy of one server (see module doc)."""

    allowed: bool = False
    """False: every `/reload` is refused (403)."""
    root: Path | None = None
    """Checkpoints must resolve inside this directory; None with `allowed` refuses every path."""
    token: str | None = field(default=None, repr=False)
    """Bearer token every `/reload` must carry; None: loopback clients only."""

    def authorize(self, authorization: str | None, client_host: str | None) -> None:
        """Raises RequestError (403 off, 401 missing or wrong token, 403 non-loopback client)."""
        if not self.allowed:
            raise RequestError("reload", "reloads are off on this server (start it with --allow-reload)", 403)
        if self.token:
            scheme, _, given = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                raise RequestError("authorization", "a valid 'Authorization: Bearer <token>' header is required", 401)
        elif not is_loopback(client_host):
            raise RequestError("reload", "without a reload token only loopback clients may reload", 403)

    def target(self, requested: str | None, current: Path) -> Path:
        """The checkpoint directory to load: `current` when nothing is requested.

        Raises:
            RequestError: (field "checkpoint") 403 outside the root, 404 no checkpoint there.
        """
        if requested is None:
            return current
        outside = RequestError("checkpoint", "not under this server's reload root", 403)
        if self.root is None:
            raise outside
        try:
            root = self.root.resolve()
            path = (root / requested).resolve()
            if not path.is_relative_to(root):
                raise outside
            found = resolve_checkpoint(path)
        except RequestError as e:
            if e.status == 403:
                raise
            raise RequestError("checkpoint", "no policy checkpoint (nor run directory with checkpoint/) "
                                             "at that path under the reload root", 404) from None
        except (OSError, ValueError):  # a name too long, a NUL byte, no permission
            raise RequestError("checkpoint", "that path cannot be read", 404) from None
        if not found.is_relative_to(root):  # checkpoint/ was a symlink out of the root
            raise outside
        return found
