"""Roles and the permission class for each action level.

Three Django groups (created by the data migration api/0001_roles): ``viewer`` reads everything
but secrets; ``operator`` also starts, cancels and acts on runs and steps; ``designer`` also
creates, edits and archives workflows and manages credentials. Superusers can do everything.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

VIEWER, OPERATOR, DESIGNER = "viewer", "operator", "designer"
ROLES = (VIEWER, OPERATOR, DESIGNER)

# Action level -> roles allowed at that level.
READ = frozenset({VIEWER, OPERATOR, DESIGNER})
OPERATE = frozenset({OPERATOR, DESIGNER})
DESIGN = frozenset({DESIGNER})


def user_roles(user) -> frozenset[str]:
    """The Weft roles the user has (cached on the user object for the request)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_weft_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._weft_roles = cached
    return cached


class _RoleRequired(BasePermission):
    allowed: frozenset[str] = frozenset()
    needs = ""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return False
        if user.is_superuser:
            return True
        if user_roles(user) & self.allowed:
            return True
        self.message = f"this action needs the {self.needs} role"
        return False


class CanView(_RoleRequired):
    """Read: viewer, operator, designer."""

    allowed = READ
    needs = "viewer, operator or designer"


class CanOperate(_RoleRequired):
    """Start, cancel, retry, rerun, skip, complete, approve, reject: operator, designer."""

    allowed = OPERATE
    needs = "operator or designer"


class CanDesign(_RoleRequired):
    """Create, edit and archive workflows; manage credentials: designer."""

    allowed = DESIGN
    needs = "designer"
