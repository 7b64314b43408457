"""The login page (public) and logout.

The login form is protected against login CSRF with a double-submit token: the page sets a
random cookie and puts the same value in a hidden field; a POST whose two values differ is
refused. After a login the browser holds only the session cookie (HttpOnly, SameSite=Lax); the
session's own CSRF token goes into each page for its forms and scripts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ductwork.api.context import WebContext, web_context
from ductwork.api.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, same_token
from ductwork.services import accounts
from ductwork.settings import Settings
from ductwork.web.render import page
from ductwork.web.throttle import LoginThrottle

router = APIRouter(include_in_schema=False)
log = logging.getLogger("ductwork.web.login")


class LoginGuard:
    """The login throttle and the bound on concurrent password hashes of one application."""

    def __init__(self, settings: Settings) -> None:
        self.throttle = LoginThrottle(
            per_account=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            window=settings.login_failure_window,
        )
        self.window = settings.login_failure_window
        self.concurrency = settings.login_concurrency
        self.max_waiting = max(16, 4 * settings.login_concurrency)
        self._limiters: dict[int, anyio.CapacityLimiter] = {}

    def limiter(self) -> anyio.CapacityLimiter:
        """The limiter of the running event loop (a limiter belongs to the loop it waits in)."""
        loop = id(asyncio.get_running_loop())
        found = self._limiters.get(loop)
        if found is None:
            if len(self._limiters) > 8:  # loops of finished test clients
                self._limiters.clear()
            found = self._limiters[loop] = anyio.CapacityLimiter(self.concurrency)
        return found


def login_guard(request: Request) -> LoginGuard:
    guard = getattr(request.app.state, "login_guard", None)
    if guard is None:
        guard = request.app.state.login_guard = LoginGuard(request.app.state.ctx.settings)
    return guard


def _minutes(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``/flows`` yes, ``//evil.example`` or ``https://...`` no; nor the
    login page itself or logout (a login that lands on the login form reads as a failed one)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/flows"
    if urlsplit(target).path.rstrip("/") in ("/login", "/logout"):
        return "/flows"
    return target


def _login_page(
    request: Request,
    next_url: str,
    error: str = "",
    status: int = 200,
    retry_after: int | None = None,
    username: str = "",
    no_users: bool = False,
) -> Response:
    """The login form; a refused login gives back the user name typed (never the password).
    ``no_users``: nobody can log in yet, and the form says how to create the first user."""
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status_code=status,
        login_csrf=token,
        next_url=next_url,
        error=error,
        username=username[:200],
        no_users=no_users,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.ctx.options.secure_cookies,
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    ctx: WebContext = request.app.state.ctx
    try:
        empty = not accounts.has_users(ctx.engine)
    except Exception:  # the database is away: the form still shows, the login says why
        log.debug("could not count the users for the login page", exc_info=True)
        empty = False
    return _login_page(request, safe_next(next), no_users=empty)


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/flows"),
    ctx: WebContext = Depends(web_context),
) -> Response:
    target = safe_next(next)
    if not same_token(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(request, target, "The form expired; please try again.", 403)
    guard = login_guard(request)
    address = request.client.host if request.client is not None else "unknown"
    wait = guard.throttle.retry_after(username, address)
    if wait:
        log.warning("login refused for %r from %s: too many failed logins (retry in %ds)", username, address, wait)
        return _login_page(
            request,
            target,
            f"Too many failed logins; try again in {_minutes(wait)}.",
            429,
            retry_after=wait,
            username=username,
        )
    limiter = guard.limiter()
    if limiter.statistics().tasks_waiting >= guard.max_waiting:
        log.warning("login refused for %r from %s: %d logins already waiting", username, address, guard.max_waiting)
        return _login_page(request, target, "Too many logins at once; try again in a moment.", 503, retry_after=1)
    async with limiter:
        wait = guard.throttle.retry_after(username, address)  # failures recorded while this one waited
        if wait:
            return _login_page(
                request, target, f"Too many failed logins; try again in {_minutes(wait)}.", 429, retry_after=wait
            )
        try:
            user = await run_in_threadpool(accounts.authenticate, ctx.engine, username, password)
        except accounts.AuthenticationError:
            by_name, by_address = guard.throttle.failed(username, address)
            log.warning(
                "login failed for %r from %s (%d failure(s) for this name, %d from this address in %ds)",
                username,
                address,
                by_name,
                by_address,
                guard.window,
            )
            return _login_page(request, target, "Wrong user name or password.", 401, username=username)
    guard.throttle.succeeded(username)
    session = await run_in_threadpool(accounts.start_session, ctx.engine, user)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=ctx.options.secure_cookies,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    """Ends the session (the middleware has checked its CSRF token)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        accounts.end_session(ctx.engine, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
