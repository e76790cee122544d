"""The credential store: encrypted at rest, described without the secret, rotated, deleted."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from engine.exceptions import NotFound
from engine.integrations.credentials import (
    CredentialExists,
    CredentialInvalid,
    CredentialUnreadable,
    credential_create,
    credential_delete,
    credential_list,
    credential_rotate,
    credential_secret,
)
from engine.models import Credential

pytestmark = pytest.mark.django_db

SECRET = "sk-test-4f1c9a77d2e0b5"


def test_secret_is_encrypted_at_rest_and_readable_by_name():
    credential_create(name="openai", kind="api_key", secret=SECRET)
    with connection.cursor() as cur:
        cur.execute("SELECT secret_encrypted FROM engine_credential WHERE name = 'openai'")
        stored = cur.fetchone()[0]
    assert SECRET not in stored
    assert credential_secret("openai") == SECRET


def test_list_and_repr_never_show_the_secret():
    described = credential_create(name="openai", kind="api_key", secret=SECRET)
    listing = credential_list()
    assert listing == [{"name": "openai", "kind": "api_key", "allowed_hosts": [], "created_at": described["created_at"],
                        "rotated_at": None}]
    cred = Credential.objects.get(name="openai")
    assert SECRET not in repr(cred) and SECRET not in str(cred)
    assert SECRET not in repr(listing)


def test_rotate_replaces_the_secret_and_records_when():
    credential_create(name="svc", kind="bearer", secret=SECRET)
    rotated = credential_rotate(name="svc", secret="new-secret-value")
    assert credential_secret("svc") == "new-secret-value"
    assert rotated["rotated_at"] is not None


def test_delete_then_lookup_raises_not_found():
    credential_create(name="svc", kind="bearer", secret=SECRET)
    credential_delete(name="svc")
    with pytest.raises(NotFound):
        credential_secret("svc")
    with pytest.raises(NotFound):
        credential_delete(name="svc")
    with pytest.raises(NotFound):
        credential_rotate(name="svc", secret="x-y-z")


def test_duplicate_names_and_bad_input_are_refused_without_echoing_the_secret():
    credential_create(name="svc", kind="bearer", secret=SECRET)
    with pytest.raises(CredentialExists) as dup:
        credential_create(name="svc", kind="bearer", secret=SECRET)
    assert SECRET not in dup.value.message
    with pytest.raises(CredentialInvalid):
        credential_create(name="bad name!", kind="bearer", secret=SECRET)
    with pytest.raises(CredentialInvalid):
        credential_create(name="k", kind="nope", secret=SECRET)
    with pytest.raises(CredentialInvalid) as basic:
        credential_create(name="b", kind="basic", secret=SECRET)
    assert SECRET not in basic.value.message


def test_a_changed_secret_key_needs_the_old_key_as_fallback():
    with override_settings(SECRET_KEY="old-key-" + "x" * 40):
        credential_create(name="svc", kind="bearer", secret=SECRET)
    with override_settings(SECRET_KEY="new-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[]):
        with pytest.raises(CredentialUnreadable) as err:
            credential_secret("svc")
        assert SECRET not in err.value.message
    with override_settings(SECRET_KEY="new-key-" + "y" * 40, SECRET_KEY_FALLBACKS=["old-key-" + "x" * 40]):
        assert credential_secret("svc") == SECRET
