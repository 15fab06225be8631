"""Who may use the admin endpoints: the admin key, by header or by console session.

The admin key (``GATEWAY_ADMIN_KEY``) is presented either as
``Authorization: Bearer <key>`` or, from a browser, as the console's session
cookie, which the console's login form sets. The cookie holds an HMAC of a
fixed label under the admin key, never the key itself: it proves the key was
typed, and stops working when the key changes. It is ``HttpOnly`` and
``SameSite=Strict`` (another site cannot make a browser send it), scoped to
``/gateway``.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from gateway.errors import AuthenticationFailed, PolicyDenied
from gateway.services import Services

COOKIE = "gateway_console"
_LABEL = b"gateway console session v1"


def session_token(admin_key: str) -> str:
    """The console cookie's value for ``admin_key``."""
    return hmac.new(admin_key.encode(), _LABEL, hashlib.sha256).hexdigest()


def session_cookie(admin_key: str, *, secure: bool) -> str:
    """A ``Set-Cookie`` value that opens a console session."""
    flags = "; Secure" if secure else ""
    return f"{COOKIE}={session_token(admin_key)}; Path=/gateway; HttpOnly; SameSite=Strict{flags}"


def closed_cookie() -> str:
    return f"{COOKIE}=; Path=/gateway; HttpOnly; SameSite=Strict; Max-Age=0"


def admin_key(services: Services) -> str:
    """The configured admin key; 403 when there is none."""
    key = services.settings.admin_key
    if not key:
        raise PolicyDenied(
            "Admin endpoints need an admin key: set GATEWAY_ADMIN_KEY.",
            code="admin_key_not_configured",
        )
    return key


def is_admin(request: Request, services: Services) -> bool:
    """Does ``request`` carry the admin key (header) or a console session (cookie)?"""
    key = admin_key(services)
    if services.auth.is_admin(request.headers.get("authorization", ""), key):
        return True
    presented = request.cookies.get(COOKIE, "")
    return bool(presented) and hmac.compare_digest(presented.encode(), session_token(key).encode())


def require_admin(request: Request, services: Services) -> None:
    """Raise 403 (no admin key configured) or 401 (not presented) unless admin."""
    if not is_admin(request, services):
        raise AuthenticationFailed("This endpoint needs the admin key.")
