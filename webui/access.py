"""Who may see and change what in the web UI: the roles of ``api.permissions`` (one definition).

The REST API enforces them on every action; the UI uses them to refuse websockets and to hide
buttons a user could not use.
"""

from __future__ import annotations

from api.permissions import DESIGN, OPERATE, READ, USE_CREDENTIAL, user_roles


def _allowed(user, roles: frozenset[str]) -> bool:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_superuser or user_roles(user) & roles)


def can_view(user) -> bool:
    return _allowed(user, READ)


def can_operate(user) -> bool:
    return _allowed(user, OPERATE)


def can_design(user) -> bool:
    return _allowed(user, DESIGN)


def can_use_credentials(user) -> bool:
    """Designer with ``engine.use_credential`` (api.permissions.CanUseCredentials): may set where a credential goes."""
    return can_design(user) and user.has_perm(USE_CREDENTIAL)


def roles(user) -> dict:
    return {"view": can_view(user), "operate": can_operate(user), "design": can_design(user)}
