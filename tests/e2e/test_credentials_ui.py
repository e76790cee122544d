"""The Credentials page: list, create, rotate, set the hosts of and delete credentials over /api/credentials/;
a secret goes in and is never shown again (no response the page receives carries it); actions a role may not
take are disabled with the reason; the API's errors are shown beside their field."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from playwright.sync_api import expect

from engine.integrations.credentials import credential_create, credential_secret
from engine.models import Credential
from tests.e2e.conftest import PASSWORD, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "sk-first-SECRET-7f3a9c"
ROTATED = "sk-second-SECRET-b81d02"


def watch_bodies(page) -> list[str]:
    """Every API response body the page receives, as text."""
    bodies: list[str] = []

    def on_response(response):
        if "/api/" in response.url:
            try:
                bodies.append(response.text())
            except Exception:  # noqa: BLE001 (a body already gone, e.g. a 204)
                pass

    page.on("response", on_response)
    return bodies


def login_as(page, base, username, *groups):
    user = User.objects.create_user(username, password=PASSWORD)
    for name in groups:
        group = Group.objects.get_or_create(name=name)[0]
        if name == "credential_user":  # a transactional test's flush may have emptied the group the migration made
            content_type = ContentType.objects.get_or_create(app_label="engine", model="credential")[0]
            group.permissions.add(Permission.objects.get_or_create(
                content_type=content_type, codename="use_credential", defaults={"name": "Can use credentials"})[0])
        user.groups.add(group)
    page.context.clear_cookies()
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    return user


def test_designer_creates_rotates_and_deletes_a_credential_and_never_sees_its_secret(ui, console_errors):
    console_errors.allow("status of 400 (Bad Request)", "status of 409 (Conflict)")
    bodies = watch_bodies(ui)
    ui.get_by_role("navigation", name="Main").get_by_role("link", name="Credentials").click()
    ui.wait_for_url(ui.base + "/credentials/")
    table = ui.get_by_role("table", name="Credentials")
    expect(table).to_contain_text("No credentials yet.")

    form = ui.get_by_role("form", name="New credential")
    secret = form.get_by_label("Secret")
    expect(secret).to_have_attribute("type", "password")
    # A name the engine refuses: the error is beside the Name field, and the secret must be typed again.
    form.get_by_label("Name").fill("bad name!")
    secret.fill(SECRET)
    form.get_by_role("button", name="Create credential").click()
    name = form.get_by_label("Name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(form.locator("#credential-name-error")).to_contain_text("credential names are 1-100 characters")
    expect(name).to_have_accessible_description(
        "Letters, digits, '.', '_' and '-'; nodes name the credential by it. ✕ credential names are 1-100 characters: "
        "letters, digits, '.', '_' and '-', starting with a letter or digit")
    expect(secret).to_have_value("")
    # A host pattern with a scheme: the error is beside Allowed hosts.
    name.fill("github")
    secret.fill(SECRET)
    form.get_by_label("Allowed hosts").fill("https://api.github.com")
    form.get_by_role("button", name="Create credential").click()
    expect(form.get_by_label("Allowed hosts")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("#credential-hosts-error")).to_contain_text("is not a host name")
    expect(name).not_to_have_attribute("aria-invalid", "true")

    form.get_by_label("Allowed hosts").fill("api.github.com\n*.githubusercontent.com")
    secret.fill(SECRET)
    form.get_by_label("Kind").select_option("bearer")
    form.get_by_role("button", name="Create credential").click()
    expect(ui.get_by_role("status")).to_have_text("Credential github saved. Its secret will not be shown again.")
    row = table.locator('tr[data-credential="github"]')
    expect(row).to_contain_text("bearer")
    expect(row).to_contain_text("api.github.com")
    expect(row).to_contain_text("*.githubusercontent.com")
    expect(row).to_contain_text("never")  # not rotated yet
    expect(secret).to_have_value("")
    assert credential_secret("github") == SECRET
    assert Credential.objects.get(name="github").allowed_hosts == ["api.github.com", "*.githubusercontent.com"]

    # The same name again: 409, shown beside the name.
    name.fill("github")
    secret.fill(SECRET)
    form.get_by_role("button", name="Create credential").click()
    expect(form.locator("#credential-name-error")).to_contain_text("already exists")
    screenshot(ui, "credentials-light")

    # Rotate: an empty secret is refused beside the field, then a new one replaces it.
    ui.get_by_role("button", name="Rotate github").click()
    dialog = ui.get_by_role("dialog", name="Rotate github")
    dialog.get_by_role("button", name="Rotate secret").click()
    expect(dialog.get_by_label("New secret")).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("#rotate-secret-error")).to_be_visible()
    dialog.get_by_label("New secret").fill(ROTATED)
    dialog.get_by_role("button", name="Rotate secret").click()
    expect(dialog).to_be_hidden()
    expect(ui.get_by_role("status")).to_have_text("Credential github rotated. The new secret will not be shown again.")
    expect(row).not_to_contain_text("never")
    assert credential_secret("github") == ROTATED

    ui.reload()
    expect(row).to_be_visible()
    ui.evaluate("localStorage.setItem('weft-theme', 'dark')")
    ui.reload()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    expect(row).to_be_visible()
    screenshot(ui, "credentials-dark")
    ui.evaluate("localStorage.setItem('weft-theme', 'light')")

    # Neither secret ever reached the page: not in a response, not in the document.
    assert bodies, "the page made no API calls"
    assert not [b for b in bodies if SECRET in b or ROTATED in b]
    html = ui.content()
    assert SECRET not in html and ROTATED not in html

    ui.get_by_role("button", name="Delete github").click()
    ui.get_by_role("dialog", name="Delete github?").get_by_role("button", name="Delete credential").click()
    expect(ui.get_by_role("status")).to_have_text("Credential github deleted.")
    expect(row).to_have_count(0)
    expect(table).to_contain_text("No credentials yet.")
    assert not Credential.objects.filter(name="github").exists()


def test_a_viewer_sees_credentials_with_every_change_disabled_and_why(page, live_url, console_errors):
    credential_create(name="shop-key", secret="viewer-must-not-see", allowed_hosts=["shop.example.com"])
    page.set_default_timeout(15_000)
    login_as(page, live_url, "viewer1", "viewer")
    page.goto(live_url + "/credentials/")
    row = page.get_by_role("table", name="Credentials").locator('tr[data-credential="shop-key"]')
    expect(row).to_contain_text("shop.example.com")
    for label in ("Rotate shop-key", "Delete shop-key"):
        button = page.get_by_role("button", name=label)
        expect(button).to_be_disabled()
        expect(button).to_have_attribute("title", "needs the designer role")
    expect(page.get_by_role("button", name="Edit the allowed hosts of shop-key")).to_be_disabled()
    create = page.get_by_role("button", name="Create credential")
    expect(create).to_be_disabled()
    expect(create).to_have_accessible_description("Creating credentials needs the designer role.")
    expect(page.get_by_role("form", name="New credential")).to_have_count(0)
    assert "viewer-must-not-see" not in page.content()
    console_errors.check()


def test_hosts_are_changed_by_a_designer_with_credential_user_only(page, live_url, console_errors):
    console_errors.allow("status of 400 (Bad Request)")
    credential_create(name="shop-key", secret="x", allowed_hosts=["shop.example.com"])
    page.set_default_timeout(15_000)
    login_as(page, live_url, "designer2", "viewer", "designer")
    page.goto(live_url + "/credentials/")
    hosts = page.get_by_role("button", name="Edit the allowed hosts of shop-key")
    expect(hosts).to_be_disabled()
    expect(hosts).to_have_attribute("title", "needs the designer and credential_user roles")
    expect(page.get_by_role("button", name="Rotate shop-key")).to_be_enabled()

    login_as(page, live_url, "designer3", "viewer", "designer", "credential_user")
    page.goto(live_url + "/credentials/")
    page.get_by_role("button", name="Edit the allowed hosts of shop-key").click()
    dialog = page.get_by_role("dialog", name="Allowed hosts of shop-key")
    field = dialog.get_by_label("Allowed hosts")
    expect(field).to_have_value("shop.example.com")
    field.fill("shop.example.com:443")
    dialog.get_by_role("button", name="Save hosts").click()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("#edit-hosts-error")).to_contain_text("is not a host name")
    field.fill("shop.example.com\napi.shop.example.com")
    dialog.get_by_role("button", name="Save hosts").click()
    expect(page.get_by_role("status")).to_have_text("Allowed hosts of shop-key saved.")
    expect(page.locator('tr[data-credential="shop-key"]')).to_contain_text("api.shop.example.com")
    assert Credential.objects.get(name="shop-key").allowed_hosts == ["shop.example.com", "api.shop.example.com"]
    console_errors.check()
