"""The credential store: named secrets, encrypted at rest, referenced by name from node configs.

Secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived by
HKDF-SHA256 from ``SECRET_KEY`` (``WEFT_SECRET_KEY``). Keys in ``SECRET_KEY_FALLBACKS``
still decrypt, so the secret key can be rotated without losing stored credentials
(``credential_rotate`` re-encrypts under the current key).

Plain secrets leave this module only through ``credential_secret`` and ``credential_headers``,
which nodes call at the moment they send a request. A secret goes only to the hosts on its
credential's ``allowed_hosts`` (patterns in the syntax of WEFT_HTTP_ALLOWED_HOSTS; an empty
list, the state of credentials stored before the list existed, sends it nowhere), which
``netguard.guarded_request`` checks at each request and redirect hop. They never go into reprs, events, logs, errors or
exported workflows; ``redact`` scrubs them from text that might echo them.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now

from engine.exceptions import AlreadyExists, EngineError, NotFound
from engine.integrations.netguard import CredentialHeaders, host_entry_problem
from engine.models import Credential

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
KINDS = tuple(Credential.Kind.values)
MAX_SECRET_CHARS = 16_384
MAX_ALLOWED_HOSTS = 100


class CredentialInvalid(EngineError):
    code = "credential_invalid"


class CredentialExists(AlreadyExists):
    pass


class CredentialUnreadable(EngineError):
    code = "credential_unreadable"


@lru_cache(maxsize=8)
def _fernet_for(secret_key: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"weft.credentials", info=b"fernet key v1")
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8"))))


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(k) for k in keys])


def _encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode("utf-8")).decode("ascii")


def secret_encrypt(secret: str) -> str:
    """``secret`` encrypted as credentials are (for other secrets Weft keeps, e.g. webhook signing secrets)."""
    return _encrypt(secret)


def secret_decrypt(token: str, *, what: str) -> str:
    """The plain text of a ``secret_encrypt`` token; CredentialUnreadable naming ``what`` under another key."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise CredentialUnreadable(f"{what} cannot be decrypted: it was stored under a different WEFT_SECRET_KEY. "
                                   "Put the old key in WEFT_SECRET_KEY_FALLBACKS or rotate it") from None


def _check_hosts(allowed_hosts) -> list[str]:
    """``allowed_hosts`` as stored (stripped entries), or CredentialInvalid naming the field."""
    if not isinstance(allowed_hosts, list | tuple):
        raise CredentialInvalid("allowed_hosts is a list of host patterns", details=[{"field": "allowed_hosts"}])
    if len(allowed_hosts) > MAX_ALLOWED_HOSTS:
        raise CredentialInvalid(f"allowed_hosts has more than {MAX_ALLOWED_HOSTS} entries",
                                details=[{"field": "allowed_hosts"}])
    for entry in allowed_hosts:
        problem = host_entry_problem(entry)
        if problem:
            raise CredentialInvalid(f"allowed_hosts: {problem}", details=[{"field": "allowed_hosts"}])
    return list(dict.fromkeys(entry.strip() for entry in allowed_hosts))


def _check(*, name: str, kind: str | None = None, secret: str | None = None) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CredentialInvalid(
            "credential names are 1-100 characters: letters, digits, '.', '_' and '-', starting with a letter "
            "or digit", details=[{"field": "name"}])
    if kind is not None and kind not in KINDS:
        raise CredentialInvalid(f"unknown credential kind {kind!r}; kinds: {', '.join(KINDS)}",
                                details=[{"field": "kind"}])
    if secret is not None:
        if not isinstance(secret, str) or not secret:
            raise CredentialInvalid("the secret must be a non-empty string", details=[{"field": "secret"}])
        if len(secret) > MAX_SECRET_CHARS:
            raise CredentialInvalid(f"the secret is longer than {MAX_SECRET_CHARS} characters",
                                    details=[{"field": "secret"}])
        if kind == Credential.Kind.BASIC and ":" not in secret:
            raise CredentialInvalid("a basic credential's secret is 'user:password'", details=[{"field": "secret"}])
        if kind == Credential.Kind.HEADER and not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+:\s*\S", secret):
            raise CredentialInvalid("a header credential's secret is 'Header-Name: value'",
                                    details=[{"field": "secret"}])


def _describe(c: Credential) -> dict:
    return {"name": c.name, "kind": c.kind, "allowed_hosts": list(c.allowed_hosts), "created_at": c.created_at,
            "rotated_at": c.rotated_at}


def credential_create(*, name: str, kind: str = Credential.Kind.API_KEY, secret: str,
                      allowed_hosts: list[str] | None = None, actor=None) -> dict:
    """Store a new secret under ``name``, to be sent only to ``allowed_hosts`` (none: nowhere until they are
    set). Returns its description (never the secret)."""
    _check(name=name, kind=kind, secret=secret)
    hosts = _check_hosts(allowed_hosts or [])
    try:
        with transaction.atomic():
            cred = Credential.objects.create(name=name, kind=kind, secret_encrypted=_encrypt(secret),
                                             allowed_hosts=hosts,
                                             created_by=actor if getattr(actor, "pk", None) else None)
    except IntegrityError:
        raise CredentialExists(f"a credential named {name!r} already exists; rotate it to change its secret") \
            from None
    return _describe(cred)


def credential_list() -> list[dict]:
    return [_describe(c) for c in Credential.objects.order_by("name").defer("secret_encrypted")]


def credential_get(name: str) -> dict:
    return _describe(_get(name))


def credential_rotate(*, name: str, secret: str, actor=None) -> dict:
    """Replace the secret of an existing credential (encrypted under the current key)."""
    cred = _get(name)
    _check(name=name, kind=cred.kind, secret=secret)
    Credential.objects.filter(pk=cred.pk).update(secret_encrypted=_encrypt(secret), rotated_at=Now())
    cred.refresh_from_db()
    return _describe(cred)


def credential_update(*, name: str, allowed_hosts: list[str], actor=None) -> dict:
    """Replace the hosts credential ``name`` may be sent to."""
    hosts = _check_hosts(allowed_hosts)
    if not Credential.objects.filter(name=name).update(allowed_hosts=hosts):
        raise NotFound(f"credential {name!r} does not exist")
    return credential_get(name)


def credential_hosts(names) -> dict[str, list[str]]:
    """The allowed_hosts of each of the named credentials that exist (one query, for validation)."""
    return dict(Credential.objects.filter(name__in=list(names)).values_list("name", "allowed_hosts"))


def credential_delete(*, name: str) -> None:
    deleted, _ = Credential.objects.filter(name=name).delete()
    if not deleted:
        raise NotFound(f"credential {name!r} does not exist")


def credential_names() -> set[str]:
    return set(Credential.objects.values_list("name", flat=True))


def credential_secret(name: str) -> str:
    """The plain secret, for a node about to send it. Raises NotFound for unknown names."""
    return credential_material(name)[1]


def credential_material(name: str) -> tuple[str, str]:
    """(kind, plain secret) of a credential."""
    cred = _get(name)
    return cred.kind, _decrypt(cred)


def _decrypt(cred: Credential) -> str:
    try:
        return _fernet().decrypt(cred.secret_encrypted.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise CredentialUnreadable(
            f"credential {cred.name!r} cannot be decrypted: it was stored under a different WEFT_SECRET_KEY. Put "
            "the old key in WEFT_SECRET_KEY_FALLBACKS or store the credential again"
        ) from None


def credential_headers(name: str) -> CredentialHeaders:
    """The HTTP headers that present credential ``name`` (with the secret, for ``redact``), for
    ``netguard.guarded_request(credential=...)``, which keeps them within the request's origin."""
    cred = _get(name)
    kind, secret = cred.kind, _decrypt(cred)
    if kind == Credential.Kind.BASIC:
        headers = {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode("ascii")}
    elif kind == Credential.Kind.HEADER:
        header, value = secret.split(":", 1)
        headers, secret = {header.strip(): value.strip()}, value.strip()
    else:
        headers = {"Authorization": f"Bearer {secret}"}
    return CredentialHeaders(name=name, headers=headers, allowed_hosts=tuple(cred.allowed_hosts), secret=secret)


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each (non-trivial) secret replaced by ``***``, also in the
    base64 form HTTP basic authentication sends it in."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
            encoded = base64.b64encode(secret.encode("utf-8")).decode("ascii")
            if encoded in text:
                text = text.replace(encoded, "***")
    return text


def redact_value(value, *secrets: str | None):
    """``value`` (decoded JSON) with every string ``redact``-ed: for outputs that might echo a secret."""
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, list):
        return [redact_value(v, *secrets) for v in value]
    if isinstance(value, dict):
        return {redact(str(k), *secrets): redact_value(v, *secrets) for k, v in value.items()}
    return value


def _get(name: str) -> Credential:
    try:
        return Credential.objects.get(name=name)
    except Credential.DoesNotExist:
        raise NotFound(f"credential {name!r} does not exist") from None
