"""Roles and the permission class for each action level.

Three Django groups (created by the data migration api/0001_roles): ``viewer`` reads everything
but secrets; ``operator`` also starts, cancels and acts on runs and steps; ``designer`` also
creates, edits and archives workflows and manages credentials. Superusers can do everything.

Using a stored credential is a permission of its own, apart from designing: ``engine.use_credential``,
which the group ``credential_user`` (api/0002_credential_user) grants. Without it, a designer cannot
save a workflow that names a credential (engine.nodes.validation refuses it) nor change the hosts a
credential may be sent to.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

VIEWER, OPERATOR, DESIGNER = "viewer", "operator", "designer"
EVENT_SENDER = "event_sender"  # a group beside the roles: it may send events (POST /api/events/) and nothing else
ROLES = (VIEWER, OPERATOR, DESIGNER)
CREDENTIAL_USER = "credential_user"  # a group beside the roles: it grants USE_CREDENTIAL
USE_CREDENTIAL = "engine.use_credential"

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


class CanUseCredentials(CanDesign):
    """Change where a credential may be sent: designer with the credential_user role (permission
    engine.use_credential)."""

    needs = "designer and credential_user"

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.user.has_perm(USE_CREDENTIAL):
            return True
        self.message = f"this action needs the {self.needs} roles"
        return False


class CanSendEvents(CanOperate):
    """Send an outside event: operator, designer, or a user in the ``event_sender`` group (a script's user with
    an API token; api/0003_event_sender)."""

    needs = "operator, designer or event_sender"

    def has_permission(self, request, view) -> bool:
        if super().has_permission(request, view):
            return True
        user = request.user
        if getattr(user, "is_authenticated", False) and user.groups.filter(name=EVENT_SENDER).exists():
            return True
        self.message = f"this action needs the {self.needs} role"
        return False
