"""The HTTP API of the Serve app: request/response models, limits, routes.

`make_app(backend)` builds the FastAPI app around any backend with
`catalog`, `runner`, `act(ActItem)`, `version()` and `reload(path)` - the Ray Serve
deployment (`cluster.serve.app`) or the in-process `LocalBackend` (tests). Every
limit is a pydantic constraint, so a request over one gets a 422 whose `loc`
names the field; a body over `MAX_BODY_BYTES` gets a 413 before it is parsed, one that is
not UTF-8 or nests JSON too deeply a 400 that says which. The CPU
work of a request (instruction, candidates, state text; the forward pass in the
backend) runs in worker threads, so the event loop keeps answering `/healthz`; a
request that could not be answered within the server's wait bound gets 503 with
Retry-After before its body is read (`Admission`, `BatchRunner.admitted`), one that finds
the queue full gets it too. `/reload` goes through the
backend's `reload_guard` (`cluster.serve.guard`): off unless allowed, JSON only.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Any, Optional, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints
from starlette.exceptions import HTTPException

from cluster.serve.core import ActItem, Decision, Overloaded, RequestError, ServeEnv, act_candidates, act_state
from cluster.serve.core import free_goal, request_instruction, run_episode
from cluster.serve.guard import ReloadGuard

MAX_OBSERVATION_CHARS = 20_000
MAX_INSTRUCTION_CHARS = 2_000
MAX_ACTIONS = 256
MAX_ACTION_CHARS = 512
MAX_OPTIONS = 16
MAX_EPISODE_STEPS = 50
MAX_BODY_BYTES = 1_000_000

NonBlank = StringConstraints(min_length=1, pattern=r"\S")
ActionText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ACTION_CHARS)]
Instruction = Annotated[str, NonBlank, StringConstraints(max_length=MAX_INSTRUCTION_CHARS)]
Observation = Annotated[str, NonBlank, StringConstraints(max_length=MAX_OBSERVATION_CHARS)]
# Optional fields are typed without None: absent means "not given", an explicit null is a 422
# (the OpenAPI schema says string, and schema fuzzing holds the server to it).


def _no_text(v):
    """JSON integers only (2 and 2.0), not "2" nor true: what the OpenAPI schema says."""
    if isinstance(v, (str, bool, bytes)):
        raise ValueError("expected an integer")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActRequest(_Strict):
    """A state (a page's text, or just an instruction) and the actions available on it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"required": ["observation"]}, {"required": ["instruction"]}],
        "examples": [{"instruction": "i need a pair of red running shoes, and price lower than 60.00 dollars",
                      "available_actions": ["search[...]"]}]})

    observation: Observation = Field(
        None, description="the page text (WebShop's text mode); its instruction is used for searches")
    instruction: Instruction = Field(None, description="the shopping instruction; default: the one the "
                                                       "observation shows, else the observation's text itself")
    available_actions: list[ActionText] = Field(
        ..., min_length=1, max_length=MAX_ACTIONS,
        description="env actions: 'search[...]' (expanded to query variants of the instruction) and 'click[...]'")
    clicked_options: list[ActionText] = Field(
        default_factory=list, max_length=MAX_OPTIONS, description="options already chosen on this item page")
    greedy: StrictBool = Field(True, description="argmax action; false samples from the policy")


class CandidateOut(BaseModel):
    text: str = Field(description="what the policy read")
    action: str = Field(description="what an env receives")
    prob: float


class ActResponse(BaseModel):
    action: str
    candidate: str
    index: int
    prob: float
    logp: float
    value: float
    candidates: list[CandidateOut]
    policy_version: int
    batch_size: int = Field(description="requests that shared the forward pass")


class EpisodeRequest(_Strict):
    """A goal of the loaded catalog, or a free instruction (graded on type and price only)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["goal_id"]}, {"required": ["instruction"]}],
        "examples": [{"goal_id": 0}, {"instruction": "i want a blue coffee mug, and price lower than 20.00 dollars"}]})

    goal_id: Annotated[int, BeforeValidator(_no_text)] = Field(None, ge=0, le=10**9,
                                                               description="a goal of the loaded catalog")
    instruction: Instruction = Field(None, description="a free instruction (no annotated target)")
    greedy: StrictBool = True
    max_steps: Annotated[int, BeforeValidator(_no_text)] = Field(15, ge=1, le=MAX_EPISODE_STEPS)


class StepOut(BaseModel):
    page: str
    observation: str
    state: str
    candidates: list[CandidateOut]
    chosen: int
    action: str
    logp: float
    value: float
    policy_version: int
    reward: float


class EpisodeResponse(BaseModel):
    goal_id: Optional[int]
    instruction: str
    graded: str = Field(description="goal: WebShop's reward for a catalog goal; free: type and price only")
    reward: float
    reward_info: Optional[dict[str, Any]]
    terminated: bool
    truncated: bool
    num_steps: int
    final_observation: str
    steps: list[StepOut]


class ReloadRequest(_Strict):
    checkpoint: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(
        None, description="checkpoint or run directory; omitted = re-read the current one")


class VersionResponse(BaseModel):
    version: int
    checkpoint: str
    generation: int
    model: str
    device: str
    replicas: int
    replicas_updated: Optional[int] = None


class Health(BaseModel):
    status: str
    version: int


class Backend(Protocol):
    catalog: Any  # envs.Catalog
    loaded: Any  # serve_core.LoadedPolicy being served
    runner: Any  # cluster.serve.runner.BatchRunner (the `Admission` middleware uses it)
    reload_guard: Optional[ReloadGuard]  # None: reloads off

    async def act(self, item: ActItem) -> Decision: ...
    async def version(self) -> dict: ...
    async def reload(self, checkpoint: Optional[Path]) -> dict: ...


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes, declared (Content-Length) or
    streamed (chunked: read here up to the limit, then replayed to the app)."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                return await self._reject(send)
            return await self.app(scope, receive, send)
        messages, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._reject(send)
            messages.append(message)
            if not message.get("more_body"):
                break
        pending = iter(messages)

        async def replay():
            return next(pending, None) or await receive()

        return await self.app(scope, replay, send)

    async def _reject(self, send) -> None:
        body = b'{"detail":[{"loc":["body"],"msg":"request body over %d bytes","type":"too_large"}]}' % self.limit
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class Admission:
    """ASGI middleware: admission for `/act`, `/episode` and `/viewer` before their bodies are read.

    A refused request (`BatchRunner.admitted`) gets its 503 and `Retry-After` without its
    body being parsed or validated: under overload most requests are refused, and parsing
    each one on the replica's event loop took the interpreter from the forward pass."""

    PATHS = ("/act", "/episode", "/viewer")

    def __init__(self, app, backend: "Backend"):
        self.app, self.backend = app, backend

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in self.PATHS:
            return await self.app(scope, receive, send)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.backend.runner.admitted())  # an episode holds one for all its steps
            except Overloaded as e:
                return await overloaded_response(e)(scope, receive, send)
            return await self.app(scope, receive, send)


def overloaded_response(e: Overloaded) -> JSONResponse:
    """503 with `Retry-After`: the server could not answer in time (`Overloaded`)."""
    return JSONResponse({"detail": [{"loc": [], "msg": str(e), "type": "overloaded"}]}, status_code=503,
                        headers={"Retry-After": str(e.retry_after_s)})


def _error(field: str, message: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]},
                        status_code=status)


def unparsable_reason(e: HTTPException) -> Optional[str]:
    """Why a JSON body could not be parsed, where FastAPI's own 400 says only that it was not:
    invalid UTF-8 (and where), or nesting deeper than the parser's recursion limit."""
    cause = e.__cause__
    if e.status_code != 400:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8 (byte {cause.start}); send JSON encoded as UTF-8"
    if isinstance(cause, RecursionError):
        return "the body's JSON is nested too deeply to parse"
    return None


ERRORS = {400: {"description": "body cannot be parsed: invalid UTF-8, or JSON nested too deeply"},
          413: {"description": "request body too large"},
          503: {"description": "overloaded: retry after the Retry-After header's seconds"}}
RELOAD_ERRORS = {401: {"description": "missing or wrong bearer token"},
                 403: {"description": "reloads off, a non-loopback client without a token, or a path "
                                      "outside the reload root"},
                 409: {"description": "the checkpoint could not be loaded"},
                 415: {"description": "the body is not JSON (Content-Type: application/json)"}}


def _prepare_act(catalog, req: "ActRequest") -> tuple:
    """(candidates, state text) of an /act request; CPU work, run in a worker thread."""
    instruction = request_instruction(req.observation, req.instruction)
    cands = act_candidates(catalog, req.available_actions, instruction)
    state = act_state(catalog, req.observation, instruction, req.available_actions, req.clicked_options)
    return cands, state
NOT_FOUND = {404: {"description": "no such goal or checkpoint (loc names the field)"}}


def make_app(backend: Backend) -> FastAPI:
    """The FastAPI app serving `backend` (see module doc)."""
    app = FastAPI(title="webshop-rl policy server", version="1",
                  description="A trained WebShop policy: act on a page, play an episode, swap checkpoints.")
    app.add_middleware(BodyLimit)
    app.add_middleware(Admission, backend=backend)  # outermost: refuses before the body is read

    @app.exception_handler(RequestError)
    async def request_error(_: Request, e: RequestError) -> JSONResponse:
        response = _error(e.field, e.message, e.status)
        if e.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, e: Overloaded) -> JSONResponse:
        return overloaded_response(e)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        reason = unparsable_reason(e)
        if reason is None:
            return await http_exception_handler(request, e)
        return JSONResponse({"detail": [{"loc": ["body"], "msg": reason, "type": "body_unparsable"}]}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's 422 without the "input" echo (which can be a megabyte of text)
        errors = [{k: v for k, v in err.items() if k != "input"} for err in e.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> dict:
        return {"status": "ok", "version": backend.loaded.policy.version}  # local: no other actor asked

    @app.get("/version", response_model=VersionResponse)
    async def version() -> dict:
        return await backend.version()

    @app.post("/act", response_model=ActResponse, responses=ERRORS)
    async def act(req: ActRequest) -> dict:
        if not req.observation and not req.instruction:
            raise RequestError("observation", "give an observation or an instruction")
        cands, state = await asyncio.to_thread(_prepare_act, backend.catalog, req)  # admitted: `Admission`
        d = await backend.act(ActItem(state, list(cands.texts), req.greedy))
        return {"action": cands.actions[d.index], "candidate": cands.texts[d.index], "index": d.index,
                "prob": d.probs[d.index], "logp": d.logp, "value": d.value, "policy_version": d.version,
                "batch_size": d.batch_size, "candidates": [
                    {"text": t, "action": a, "prob": p} for t, a, p in zip(cands.texts, cands.actions, d.probs)]}

    async def episode_dict(req: EpisodeRequest) -> dict:
        catalog = backend.catalog
        if (req.goal_id is None) == (req.instruction is None):
            raise RequestError("goal_id", "give exactly one of goal_id and instruction")
        if req.goal_id is not None:
            if req.goal_id >= len(catalog.goals):
                raise RequestError("goal_id", f"{req.goal_id} is not a goal of the loaded catalog "
                                              f"(it has {len(catalog.goals)}: 0..{len(catalog.goals) - 1})", 404)
            goal = catalog.goals[req.goal_id]
        else:
            goal = free_goal(req.instruction)
        env = ServeEnv(catalog=catalog, max_steps=req.max_steps)
        return await run_episode(env, goal, backend.act, greedy=req.greedy)  # admitted: `Admission`

    @app.post("/episode", response_model=EpisodeResponse, responses={**ERRORS, **NOT_FOUND})
    async def episode(req: EpisodeRequest) -> dict:
        return await episode_dict(req)

    async def reload_allowed(request: Request) -> None:
        """Runs before the body is read: off, token or loopback, then JSON only."""
        (backend.reload_guard or ReloadGuard()).authorize(request.headers.get("authorization"),
                                                         request.client.host if request.client else None)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise RequestError("body", "send a JSON object with Content-Type: application/json "
                                       "({} re-reads the current checkpoint)", 415)

    @app.post("/reload", response_model=VersionResponse, dependencies=[Depends(reload_allowed)],
              responses={**ERRORS, **NOT_FOUND, **RELOAD_ERRORS})
    async def reload(req: ReloadRequest) -> dict:
        """Swap the served checkpoint (a path under the server's reload root; {} re-reads
        the current one). Off unless the server was started with --allow-reload."""
        path = await asyncio.to_thread(backend.reload_guard.target, req.checkpoint, backend.loaded.path)
        return await backend.reload(path)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/viewer")

    @app.get("/viewer", response_class=HTMLResponse, responses={404: {"content": {"text/html": {}}}})
    async def viewer(goal_id: Optional[int] = Query(None, ge=0, le=10**9),
                     instruction: Optional[str] = Query(None, min_length=1, max_length=MAX_INSTRUCTION_CHARS,
                                                        pattern=r"\S"),
                     greedy: bool = True) -> HTMLResponse:
        """An episode step by step (instruction, page text, candidates with probabilities,
        chosen action, reward breakdown); without a goal, a form to choose one."""
        from cluster.serve.viewer import render_page

        info = await backend.version()
        if goal_id is None and instruction is None:
            return HTMLResponse(render_page(None, info, len(backend.catalog.goals)))
        try:
            req = EpisodeRequest(**({"goal_id": goal_id} if goal_id is not None else {"instruction": instruction}),
                                 greedy=greedy)
            ep = await episode_dict(req)
        except RequestError as e:
            return HTMLResponse(render_page(None, info, len(backend.catalog.goals), error=e.message),
                                status_code=e.status)
        return HTMLResponse(render_page(ep, info, len(backend.catalog.goals)))

    return app
