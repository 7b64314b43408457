"""The login page (public) and logout.

The login form is protected against login CSRF with a double-submit token: the page sets a
random cookie and puts the same value in a hidden field; a POST whose two values differ is
refused. After a login the browser holds only the session cookie (HttpOnly, SameSite=Lax); the
session's own CSRF token goes into each page for its forms and scripts.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ductwork.api.context import WebContext, web_context
from ductwork.api.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, same_token
from ductwork.services import accounts
from ductwork.web.render import page

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``/flows`` yes, ``//evil.example`` or ``https://...`` no."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/flows"
    return target


def _login_page(request: Request, next_url: str, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", status_code=status, login_csrf=token, next_url=next_url, error=error)
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
    return _login_page(request, safe_next(next))


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
    try:
        user = await run_in_threadpool(accounts.authenticate, ctx.engine, username, password)
    except accounts.AuthenticationError:
        return _login_page(request, target, "Wrong user name or password.", 401)
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
