"""A user's own sign-ins: the browser sessions and API tokens that are live, each revocable
(`/sessions`). The tokens themselves are never shown again after they were issued; a session
cookie holds a session token, which the JSON API refuses (web/auth.py)."""

from __future__ import annotations

from flask import flash, g, redirect, session, url_for

from engine.errors import NotFound
from web.common import site
from web.i18n import t
from web.ui import page, ui


@ui.get("/sessions")
def own_sessions():
    rows = site().tokens.of_user(g.caller.user_id, session.get("token"))
    return page("sessions.html", title=t("sessions_title", g.caller.locale), rows=rows)


@ui.post("/sessions/<int:token_id>/revoke")
def revoke_own_session(token_id):
    current = [r for r in site().tokens.of_user(g.caller.user_id, session.get("token"))
               if r["current"]]
    if not site().tokens.revoke_own(g.caller.user_id, token_id):
        raise NotFound(f"you have no live session or token {token_id}")
    if current and current[0]["id"] == token_id:  # this very session: signed out
        session.clear()
        return redirect(url_for("session.login"))
    flash(t("sessions_revoked", g.caller.locale), "success")
    return redirect(url_for("ui.own_sessions"))
