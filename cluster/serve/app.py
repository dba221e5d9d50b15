"""Serving a trained policy with Ray Serve.

    serve run cluster.serve.app:app checkpoint=runs/latest/checkpoint [replicas=2 ...]
    webshop-rl serve --checkpoint runs/latest [--host 127.0.0.1 --port 8000 --replicas N --max-replicas M]

Two deployments:

- `PolicyServer` (the HTTP ingress, `replicas` copies or autoscaled up to
  `max_replicas`): the FastAPI app of `cluster.serve.api` - `/act`, `/episode`,
  `/reload`, `/healthz`, `/version`, `/viewer`, `/docs` - in front of the policy.
  Concurrent `/act` requests and the steps of concurrent `/episode`s that queue while
  the model is busy go into one `Policy.act` call (up to `max_batch_size`;
  `cluster.serve.runner.BatchRunner`, as in `LocalBackend`). Replicas ask for
  `num_cpus` (default 0) so that they are scheduled next to a training job that holds
  every CPU.
- `CheckpointTarget` (one copy, no CPU): which checkpoint every replica should serve.
  `POST /reload` (off unless `allow_reload`; a JSON body; a checkpoint under
  `reload_root`; a bearer `reload_token` beyond loopback - `cluster.serve.guard`) loads
  the new checkpoint on the replica that received it (a bad checkpoint is refused there, nothing changes), then sets the target; every other
  replica polls the target every `poll_s`, loads it off the request path and swaps
  one reference, so requests in flight finish on the weights they started with. The
  reply comes when every live replica serves the new version. With `watch_s > 0`
  replicas also re-load when the checkpoint directory is saved again (training
  overwrites `<run>/checkpoint` in place).

On a cluster (`serve deploy cluster/manifests/serve_config.yaml`, or a KubeRay
RayService) new weights go out through the deployment's `user_config`
(`{"checkpoint": PATH}`): Serve calls `PolicyServer.reconfigure` on every live replica
without restarting it, so no `/reload` is needed; the replica that takes a new path
first moves the target, the others follow it as after a reload.

Overload is bounded: a replica admits a request only if it expects to answer it within
`max_wait_s` at the pace of its recent forward passes (else 503 with Retry-After at once),
takes `max_ongoing_requests` at once, the proxy queues at most `max_queued_requests` more
and answers 503 beyond that, and a request still unanswered after `request_timeout_s` is
dropped by the proxy (408) instead of waiting.
"""

import asyncio
import os
import time
import zlib
from pathlib import Path
from typing import Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from ray import serve
from ray.serve.handle import DeploymentHandle

from cluster.components import actor_runtime_env
from cluster.serve.api import make_app
from cluster.serve.core import ActItem, BatchRunner, Decision, LoadedPolicy, RequestError, act_batch, catalog_for
from cluster.serve.core import checkpoint_stamp, load_beside, load_policy, resolve_checkpoint
from cluster.serve.guard import TOKEN_ENV, ReloadGuard, is_loopback

APP_NAME = "webshop-rl"


class ServeArgs(BaseModel):
    """Arguments of the app builder (`serve run cluster.serve.app:app key=value ...`)."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="checkpoint directory, or a run directory holding checkpoint/")
    catalog: Optional[str] = Field(None, description="WebShop-format catalog directory; "
                                                     "default: the checkpoint's training catalog")
    catalog_size: Optional[int] = None
    catalog_seed: Optional[int] = None
    replicas: int = Field(1, ge=1)
    max_replicas: Optional[int] = Field(None, ge=1, description="> replicas turns on autoscaling")
    target_ongoing_requests: float = Field(32.0, gt=0, description="autoscaling target per replica")
    max_ongoing_requests: int = Field(256, ge=1, description="requests a replica works on at once")
    max_queued_requests: int = Field(256, ge=1, description="requests queued beyond those; more get 503")
    request_timeout_s: float = Field(60.0, gt=0, description="the HTTP proxy drops a request unanswered "
                                                             "this long (408)")
    max_batch_size: int = Field(32, ge=1, description="most requests in one forward pass")
    max_wait_s: float = Field(0.8, ge=0, description="admit a request only if it is expected to be answered "
                                                     "within this many seconds, else 503 with Retry-After "
                                                     "(0: admit every request)")
    num_cpus: float = Field(0.0, ge=0, description="CPUs each replica reserves (0 shares a busy node)")
    num_gpus: float = Field(0.0, ge=0)
    threads: int = Field(1, ge=1, description="torch threads per replica (scale out with replicas: "
                                              "more threads than free cores makes torch far slower)")
    device: str = Field("auto", description="auto: cuda where the replica reserved a GPU (num_gpus), else cpu")
    poll_s: float = Field(1.0, gt=0, description="how often replicas check the reload target")
    watch_s: float = Field(0.0, ge=0, description="re-load a re-saved checkpoint this often; 0 = off")
    reload_timeout_s: float = Field(120.0, gt=0)
    allow_reload: bool = Field(False, description="serve POST /reload (off: every reload answers 403)")
    reload_root: Optional[str] = Field(None, description="/reload loads only checkpoints inside this directory; "
                                                          "default: the directory holding the served checkpoint")
    reload_token: Optional[SecretStr] = Field(None, description="bearer token /reload requires; needed to bind "
                                                                "beyond loopback with allow_reload")
    access_log: bool = Field(True, description="a log line per request (costs CPU under load)")


class PolicyUserConfig(BaseModel):
    """The `PolicyServer` deployment's `user_config` in a Serve config file: Serve hands it
    to `PolicyServer.reconfigure` after a replica starts and on every redeploy that changes it."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="checkpoint directory, or a run directory holding checkpoint/, "
                                        "as the replicas' nodes see it")


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000,
                  logging_config={"enable_access_log": False})  # a heartbeat per replica per poll_s
class CheckpointTarget:
    """The checkpoint every replica should serve, and what each one serves now."""

    def __init__(self, checkpoint: str):
        self.checkpoint, self.generation = checkpoint, 0
        self.configured: Optional[str] = None  # the user_config checkpoint last rolled out
        self.replicas: dict[str, dict] = {}  # replica id -> last report

    def get(self) -> dict:
        return {"checkpoint": self.checkpoint, "generation": self.generation, "configured": self.configured}

    def set(self, checkpoint: str) -> int:
        self.checkpoint, self.generation = checkpoint, self.generation + 1
        return self.generation

    def configure(self, checkpoint: str) -> dict:
        """A replica loaded a new user_config checkpoint: make it the target (once; every
        replica reports the same rollout, and a reload after it is not undone)."""
        if checkpoint != self.configured:
            self.configured = checkpoint
            if checkpoint != self.checkpoint:
                self.set(checkpoint)
        return self.get()

    def report(self, replica: str, status: dict) -> dict:
        """A replica's heartbeat (what it serves); answers with the target."""
        self.replicas[replica] = {**status, "seen": time.monotonic()}
        return self.get()

    def live(self, max_age_s: float) -> list[dict]:
        now = time.monotonic()
        return [r for r in self.replicas.values() if now - r["seen"] <= max_age_s]


@serve.deployment
@serve.ingress()
class PolicyServer:
    """The HTTP app and the policy (see module doc)."""

    async def __init__(self, args: dict, target: DeploymentHandle):
        self.args = ServeArgs.model_validate(args)
        self.target = target
        torch.set_num_threads(self.args.threads)
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        # auto: a GPU only where this replica reserved one (num_gpus > 0), never a shared one
        auto = "cuda" if self.args.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        self.device = auto if self.args.device == "auto" else self.args.device
        start = await target.get.remote()  # a replica started after a reload serves the reloaded one
        path = await asyncio.to_thread(resolve_checkpoint, start["checkpoint"])
        self.catalog = catalog_for(path, self.args.catalog, self.args.catalog_size, self.args.catalog_seed)
        self.loaded: LoadedPolicy = await asyncio.to_thread(load_policy, path, self.device, self.catalog)
        self.loaded.generation = start["generation"]
        self.generator = torch.Generator().manual_seed(zlib.crc32(self.replica_id.encode()))
        self.runner = BatchRunner(self._forward, self.args.max_batch_size, max_wait_s=self.args.max_wait_s or None)
        token = self.args.reload_token.get_secret_value() if self.args.reload_token else None
        self.reload_guard = ReloadGuard(self.args.allow_reload,
                                        Path(self.args.reload_root) if self.args.reload_root else None, token)
        self.failed: Optional[dict] = None  # the last load that failed (generation, checkpoint, error)
        self._swap_lock = asyncio.Lock()  # one load-and-swap at a time (poll loop or /reload)
        self._watcher = asyncio.create_task(self._follow_target())

    def __serve_build_asgi_app__(self):
        return make_app(self)

    # -- acting ---------------------------------------------------------------------
    def _forward(self, items: list[ActItem]) -> list[Decision]:
        policy = self.loaded.policy  # read once per forward pass: a reload never changes it mid-call
        return act_batch(policy, items, self.generator)

    async def act(self, item: ActItem) -> Decision:
        return (await self.runner.submit([item]))[0]

    # -- versions and reloads -------------------------------------------------------
    def _status(self) -> dict:
        return {**self.loaded.describe(), "replica": self.replica_id, "failed": self.failed}

    async def version(self) -> dict:
        live = await self.target.live.remote(self._max_age())
        return {**self.loaded.describe(), "replicas": max(len(live), 1)}

    def _max_age(self) -> float:
        return 3 * self.args.poll_s + 5.0

    async def _load(self, path, generation: int) -> Optional[Exception]:
        """Load `path` off the event loop and swap it in (caller holds the swap lock);
        the error on failure, when the old policy keeps serving."""
        try:
            new = await load_beside(self.loaded, path, self.device, self.catalog, self.runner)
        except Exception as e:
            # the type only: messages can name server paths, and this one reaches clients
            self.failed = {"generation": generation, "checkpoint": str(path), "error": type(e).__name__}
            return e
        new.generation = generation
        self.loaded, self.failed = new, None  # one reference swap; running batches keep their policy
        return None

    async def reconfigure(self, config: dict) -> None:
        """Serve's `user_config` (`PolicyUserConfig`): roll its checkpoint out, without a restart.

        A checkpoint not rolled out before is loaded here first, then becomes the target
        every replica follows (as after /reload); for one already rolled out (a replica
        starting, or the rest of one rollout) this replica serves the target before it returns.

        Raises:
            pydantic.ValidationError: a key other than `checkpoint`, or none.
            RuntimeError: the checkpoint cannot be loaded, nothing swapped. Serve reports the
                failed update, stops this replica and then the rollout; replicas not reached
                keep serving the old checkpoint.
        """
        raw = PolicyUserConfig.model_validate(config).checkpoint
        try:
            path = await asyncio.to_thread(resolve_checkpoint, raw)
        except RequestError as e:
            raise RuntimeError(f"user_config checkpoint {e.message}; still serving {self.loaded.path}") from None
        async with self._swap_lock:
            target = await self.target.get.remote()
            if target["configured"] != str(path):  # a new rollout: load it here first, then move the target
                if path != self.loaded.path or await asyncio.to_thread(checkpoint_stamp, path) != self.loaded.stamp:
                    await self._load_or_raise(path, self.loaded.generation)
                target = await self.target.configure.remote(str(path))
                if target["checkpoint"] == str(self.loaded.path):
                    self.loaded.generation = target["generation"]  # the poll loop will not load it again
            if target["generation"] > self.loaded.generation:  # rolled out (or reloaded) already: serve it now
                await self._load_or_raise(Path(target["checkpoint"]), target["generation"])
        await self.target.report.remote(self.replica_id, self._status())

    async def _load_or_raise(self, path: Path, generation: int) -> None:
        error = await self._load(path, generation)
        if error is not None:  # raised to Serve (logs, `serve status`), never to HTTP clients
            raise RuntimeError(f"user_config checkpoint {path} cannot be loaded ({type(error).__name__}: "
                               f"{error}); still serving {self.loaded.path}") from error

    async def _follow_target(self) -> None:
        """Poll the target (and, with watch_s, the checkpoint's files); load what changed."""
        last_watch = time.monotonic()
        while True:
            try:
                target = await self.target.report.remote(self.replica_id, self._status())
                async with self._swap_lock:
                    gen, path = target["generation"], target["checkpoint"]
                    tried = self.failed is not None and self.failed["generation"] == gen
                    if gen > self.loaded.generation and not tried:
                        await self._load(path, gen)
                        await self.target.report.remote(self.replica_id, self._status())
                    elif self.args.watch_s > 0 and time.monotonic() - last_watch >= self.args.watch_s:
                        last_watch = time.monotonic()
                        if checkpoint_stamp(self.loaded.path) != self.loaded.stamp:
                            await self._load(self.loaded.path, self.loaded.generation)
            except asyncio.CancelledError:
                raise
            except Exception:  # a missed poll is retried; serving goes on
                pass
            await asyncio.sleep(self.args.poll_s)

    async def reload(self, checkpoint: Optional[Path]) -> dict:
        """Load here first (refusing a bad checkpoint), then move every replica to it.
        `checkpoint` was vetted by `self.reload_guard` (None: the current one)."""
        path = checkpoint or self.loaded.path
        async with self._swap_lock:
            current = await self.target.get.remote()
            error = await self._load(path, current["generation"] + 1)
            if error is not None:
                raise RequestError("checkpoint", f"cannot be loaded: {type(error).__name__}", status=409)
            gen = await self.target.set.remote(str(path))
            self.loaded.generation = gen
        await self.target.report.remote(self.replica_id, self._status())
        deadline = time.monotonic() + self.args.reload_timeout_s
        while True:
            live = await self.target.live.remote(self._max_age())
            done = [r for r in live if r["generation"] >= gen]
            failed = [r for r in live if r["failed"] and r["failed"]["generation"] >= gen]
            if len(done) == len(live) or failed or time.monotonic() > deadline:
                break
            await asyncio.sleep(min(0.2, self.args.poll_s))
        if failed:
            raise RequestError("checkpoint", f"replica {failed[0]['replica']} could not load it: "
                                             f"{failed[0]['failed']['error']}", status=409)
        return {**self.loaded.describe(), "replicas": len(live), "replicas_updated": len(done)}


def deployment_options(args: ServeArgs) -> dict:
    """Replica count or autoscaling, and resources, from the builder arguments."""
    opts: dict = {"ray_actor_options": {"num_cpus": args.num_cpus, "num_gpus": args.num_gpus,
                                        "runtime_env": actor_runtime_env()},
                  "max_ongoing_requests": args.max_ongoing_requests,
                  "max_queued_requests": args.max_queued_requests,
                  "logging_config": {"enable_access_log": args.access_log}}
    if args.max_replicas and args.max_replicas > args.replicas:
        opts["autoscaling_config"] = {"min_replicas": args.replicas, "initial_replicas": args.replicas,
                                      "max_replicas": args.max_replicas,
                                      "target_ongoing_requests": args.target_ongoing_requests}
    else:
        opts["num_replicas"] = args.replicas
    return opts


def app(args: dict):
    """The app builder: `serve run cluster.serve.app:app checkpoint=DIR [key=value ...]`
    (keys: the fields of `ServeArgs`).

    `args.checkpoint` is what replicas load first. A Serve config file rolls out new weights
    in the deployment's `user_config` (`PolicyUserConfig`), not in `args`: Serve applies a
    change to `user_config` alone by calling `reconfigure` on the running replicas, while
    changed builder args rebuild the app and restart every replica.
    """
    cfg = ServeArgs.model_validate(args)
    # fail at build time, naming the path; replicas get it absolute (they may run elsewhere)
    checkpoint = resolve_checkpoint(cfg.checkpoint)
    root = Path(cfg.reload_root).expanduser().resolve() if cfg.reload_root else checkpoint.parent
    cfg = cfg.model_copy(update={"checkpoint": str(checkpoint), "reload_root": str(root)})
    target = CheckpointTarget.bind(cfg.checkpoint)
    return PolicyServer.options(**deployment_options(cfg)).bind(cfg.model_dump(), target)


def start(args: ServeArgs, host: str = "127.0.0.1", port: int = 8000, address: Optional[str] = None,
          blocking: bool = False) -> DeploymentHandle:
    """Connect to Ray (`address`, else RAY_ADDRESS, else a new local instance), start
    Serve's HTTP proxy on host:port, deploy the app.

    Raises:
        ValueError: reloads on, a non-loopback `host` and no reload token.
    """
    import ray

    if args.allow_reload and not args.reload_token and not is_loopback(host):
        raise ValueError(f"--allow-reload on {host} needs a reload token (set {TOKEN_ENV}); "
                         f"or bind to 127.0.0.1")
    if not ray.is_initialized():
        # "local": a fresh instance, never a stray cluster on this machine (as the training driver)
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False,
                 log_to_driver=False)
    serve.start(http_options={"host": host, "port": port, "request_timeout_s": args.request_timeout_s})
    return serve.run(app(args.model_dump()), name=APP_NAME, route_prefix="/", blocking=blocking)
