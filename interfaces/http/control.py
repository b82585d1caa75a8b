"""Operator control over HTTP: ``POST /api/control/...``, behind bearer tokens.

The tokens come from the environment variables named in ``nof0.yaml`` (``Control.Tokens``);
with none set the routes answer 503 and say how to turn them on. A request without a bearer
token gets 401, one with a token that matches none gets 403; tokens are compared in constant
time, each against every configured token. The audit trail records the matching token's id,
never the token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import PathParameter

from application.control import ControlAction, ControlError, ControlResult, OperatorControl

MAX_REASON = 500


@dataclass
class ControlAccess:
    """What the control routes need: the commands, the credentials, the kill switch's reach."""

    control: OperatorControl
    tokens: Mapping[str, str]  # token id → token
    kill_targets: Callable[[], list[str]]


class ControlOff(HTTPException):
    status_code = 503


class Unauthorized(HTTPException):
    status_code = 401


class Forbidden(HTTPException):
    status_code = 403


class ControlRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""
    flatten: bool = False  # kill only


class ControlItem(msgspec.Struct):
    trader: str
    action: str
    changed: bool
    paused: bool
    flatten_pending: bool


class ControlAnswer(msgspec.Struct):
    action: str
    credential: str
    results: list[ControlItem]


class ControlInfo(msgspec.Struct):
    enabled: bool
    detail: str
    actions: list[str]


_OFF = (
    "operator control is off: no control token is configured "
    "(list one under Control.Tokens in nof0.yaml and set the variable it names)"
)
_TRADER_ACTIONS = {
    "pause": ControlAction.PAUSE,
    "resume": ControlAction.RESUME,
    "flatten": ControlAction.FLATTEN,
}


def _access(state: State) -> ControlAccess | None:
    access: ControlAccess | None = state.get("control")
    if access is None or not access.tokens:
        return None
    return access


def authenticate(tokens: Mapping[str, str], header: str | None) -> str:
    """The id of the token ``header`` carries; 401 without one, 403 for a wrong one."""
    if not header or not header[:7].lower() == "bearer ":
        raise Unauthorized(
            detail="a bearer token is required: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="nof0-control"'},
        )
    given = header[7:].strip().encode()
    matched = ""
    for token_id, token in tokens.items():
        # No early exit: every configured token is compared, whatever matched.
        if hmac.compare_digest(given, token.encode()) and not matched:
            matched = token_id
    if not matched:
        raise Forbidden(detail="this token is not allowed to control the arena")
    return f"token:{matched}"


async def _body(request: Request[Any, Any, Any]) -> ControlRequest:
    raw = await request.body()
    if not raw.strip():
        return ControlRequest()
    try:
        body = msgspec.json.decode(raw, type=ControlRequest)
    except msgspec.DecodeError as exc:
        raise ValidationException(
            detail=f'the body must be JSON like {{"reason": "..."}}: {str(exc)[:200]}'
        ) from None
    if len(body.reason) > MAX_REASON:
        raise ValidationException(detail=f"reason is longer than {MAX_REASON} characters")
    return body


def _item(result: ControlResult) -> ControlItem:
    return ControlItem(
        result.trader, result.action, result.changed, result.paused, result.flatten_pending
    )


class ControlController(Controller):
    path = "/api/control"
    tags = ["control"]  # noqa: RUF012 - Litestar's declared type

    @get("/", summary="Whether operator control is on, and its actions")
    async def info(self, state: State) -> ControlInfo:
        on = _access(state) is not None
        detail = "send POST requests with Authorization: Bearer <token>" if on else _OFF
        return ControlInfo(on, detail, [*_TRADER_ACTIONS, "kill"])

    @post(
        "/traders/{trader_id:str}/{action:str}",
        summary="Pause, resume or flatten one trader (bearer token)",
        status_code=200,
    )
    async def trader(
        self,
        state: State,
        request: Request[Any, Any, Any],
        trader_id: Annotated[str, PathParameter(description="A trader's config id")],
        action: Annotated[str, PathParameter(description="pause, resume or flatten")],
    ) -> ControlAnswer:
        access = _access(state)
        if access is None:
            raise ControlOff(detail=_OFF)
        credential = authenticate(access.tokens, request.headers.get("authorization"))
        kind = _TRADER_ACTIONS.get(action)
        if kind is None:
            raise ValidationException(
                detail=f"unknown action {action[:40]!r}: one of {', '.join(_TRADER_ACTIONS)}"
            )
        body = await _body(request)
        command = {
            ControlAction.PAUSE: access.control.pause,
            ControlAction.RESUME: access.control.resume,
            ControlAction.FLATTEN: access.control.flatten,
        }[kind]
        try:
            result = command(trader_id, reason=body.reason, credential=credential)
        except LookupError as exc:
            raise NotFoundException(detail=str(exc)[:200]) from None
        except ControlError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return ControlAnswer(kind.value, credential, [_item(result)])

    @post("/kill", summary="The kill switch: pause (or flatten) every trader", status_code=200)
    async def kill(self, state: State, request: Request[Any, Any, Any]) -> ControlAnswer:
        access = _access(state)
        if access is None:
            raise ControlOff(detail=_OFF)
        credential = authenticate(access.tokens, request.headers.get("authorization"))
        body = await _body(request)
        try:
            results = access.control.kill(
                access.kill_targets(),
                flatten=body.flatten,
                reason=body.reason or "kill switch",
                credential=credential,
            )
        except ControlError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        action = ControlAction.KILL_FLATTEN if body.flatten else ControlAction.KILL
        return ControlAnswer(action.value, credential, [_item(r) for r in results])
