"""Re-authentication ("sudo mode"): some actions need a password typed in the last few minutes.

Whatever grants access or moves a credential must not be possible from a
browser someone left signed in, wherever it is done: the portal or the
Django admin. SENSITIVE_ACTIONS below is the one list of those actions;
ReauthMiddleware (apps/accounts/middleware.py) enforces it for every
request, and the tests iterate it. The session remembers when the password
was last typed: signing in counts, and so does the "Confirm your password"
page (and the password-change form, which asks for the current one).

An entry names a page by its URL name and says which requests need it:
- every request (`post_only=False`): the page shows or edits credentials;
- only a POST (`post_only=True`): a list anyone may read whose actions
  change things, or a form handler whose GET changes nothing;
- for a Django admin change form (`fields=...`): only a POST that changes
  one of these fields (a user's name can change freely, their email not).
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

SESSION_KEY = "accounts_password_confirmed_at"


@dataclass(frozen=True)
class SensitiveAction:
    view: str  # the URL name
    what: str  # in plain words
    post_only: bool = False
    fields: tuple[str, ...] = ()  # admin change form: only changes to these fields


SENSITIVE_ACTIONS: tuple[SensitiveAction, ...] = (
    # People: who can sign in, with which address and password, and who administers the host.
    SensitiveAction(
        "admin:accounts_user_change",
        "change a user's email address, or enable or disable their account",
        fields=("email", "is_active", "is_staff", "is_superuser"),
    ),
    SensitiveAction("admin:accounts_user_add", "create a user account with a password"),
    SensitiveAction("admin:auth_user_password_change", "set another user's password"),
    SensitiveAction("admin:tenancy_systemadministrator_grant", "grant system administrator rights"),
    SensitiveAction(
        "admin:tenancy_systemadministrator_changelist",
        "revoke system administrator rights",
        post_only=True,
    ),
    # Who may act in a tenant: invitations and roles (a tenant admin can do almost anything).
    SensitiveAction("tenancy:membership_invite", "invite someone into a tenant", post_only=True),
    SensitiveAction(
        "tenancy:membership_update", "change someone's role in a tenant", post_only=True
    ),
    SensitiveAction("admin:tenancy_tenant_invite", "invite a tenant admin", post_only=True),
    # Where a tenant's mail may connect.
    SensitiveAction(
        "admin:tenancy_tenant_change",
        "allow a tenant private network addresses or more ports",
        fields=("smtp_private_network_allowed", "smtp_extra_ports"),
    ),
    # Events API tokens.
    SensitiveAction("tenancy:pipelines:token_create", "create an events API token", post_only=True),
    # Delivery-webhook credentials: a tenant's and the host's.
    SensitiveAction("webhooks:create", "create a delivery webhook", post_only=True),
    SensitiveAction("admin:webhooks_webhookendpoint_add", "create a host delivery webhook"),
    # SMTP credentials: the host's and a tenant's.
    SensitiveAction("admin:connections_smtpsettings_add", "add host SMTP settings"),
    SensitiveAction("admin:connections_smtpsettings_change", "change host SMTP settings"),
    SensitiveAction("admin:connections_smtpsettings_delete", "delete host SMTP settings"),
    SensitiveAction(
        "admin:connections_smtpsettings_changelist",
        "delete host SMTP settings (list action)",
        post_only=True,
    ),
    SensitiveAction("tenancy:mailsettings:edit", "change a tenant's SMTP settings"),
    SensitiveAction("tenancy:mailsettings:use_host", "send a tenant's mail through the host's"),
    # OAuth2 sign-in for SMTP: a tenant's and the host's.
    SensitiveAction("mailsettings_oauth:setup", "set up a tenant's OAuth2 sign-in"),
    SensitiveAction("mailsettings_oauth:disconnect", "disconnect a tenant's OAuth2 sign-in"),
    SensitiveAction(
        "admin:connections_oauthgrant_changelist",
        "set up the host's OAuth2 sign-in",
        post_only=True,
    ),
    SensitiveAction(
        "admin:connections_oauthgrant_disconnect", "disconnect the host's OAuth2 sign-in"
    ),
    # Email-service provider API keys, and failover connections: a tenant's and the host's.
    SensitiveAction("mailsettings_providers:edit", "change a tenant's provider key"),
    SensitiveAction("mailsettings_providers:remove", "remove a tenant's provider"),
    SensitiveAction("mailsettings_providers:secondary", "change a tenant's failover provider"),
    SensitiveAction(
        "mailsettings_providers:secondary_remove", "remove a tenant's failover provider"
    ),
    SensitiveAction(
        "mailsettings_providers:secondary_smtp", "change a tenant's failover SMTP server"
    ),
    SensitiveAction(
        "mailsettings_providers:secondary_smtp_remove", "remove a tenant's failover SMTP server"
    ),
    SensitiveAction(
        "admin:connections_providersettings_changelist",
        "change the host's provider key",
        post_only=True,
    ),
    SensitiveAction("admin:connections_providersettings_remove", "remove the host's provider"),
    SensitiveAction(
        "admin:connections_providersettings_secondary", "change the host's failover provider"
    ),
    SensitiveAction(
        "admin:connections_providersettings_secondary_remove", "remove the host's failover provider"
    ),
    SensitiveAction(
        "admin:connections_providersettings_secondary_smtp",
        "change the host's failover SMTP server",
    ),
    SensitiveAction(
        "admin:connections_providersettings_secondary_smtp_remove",
        "remove the host's failover SMTP server",
    ),
)

_BY_VIEW = {action.view: action for action in SENSITIVE_ACTIONS}
assert len(_BY_VIEW) == len(SENSITIVE_ACTIONS), "one entry per page"


def sensitive_action(view_name: str) -> SensitiveAction | None:
    return _BY_VIEW.get(view_name)


def reauth_stamp(request) -> None:
    """The person just typed their password."""
    request.session[SESSION_KEY] = time.time()


def reauth_is_fresh(request) -> bool:
    confirmed = request.session.get(SESSION_KEY)
    return confirmed is not None and time.time() - confirmed < settings.REAUTH_WINDOW


def _admin_form_changes(request, view_func, view_kwargs, fields) -> bool:
    """Whether this POST to a Django admin add/change form changes one of `fields`.

    The form is built as the admin builds it, from the same data; anything
    unexpected counts as a change (asking for the password is the safe side).
    """
    model_admin = getattr(view_func, "model_admin", None)
    if model_admin is None:
        return True
    try:
        object_id = view_kwargs.get("object_id")
        obj = model_admin.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            return False  # the admin answers "does not exist" and changes nothing
        fieldsets = model_admin.get_fieldsets(request, obj)
        form_class = model_admin.get_form(
            request, obj, change=obj is not None, fields=flatten_fieldsets(fieldsets)
        )
        form = form_class(request.POST, request.FILES, instance=obj)
        return bool(set(form.changed_data) & set(fields))
    except Exception:
        return True


def reauth_needed(request, view_name: str, view_func=None, view_kwargs=None) -> bool:
    """Whether this request to `view_name` needs a recently typed password first."""
    action = sensitive_action(view_name)
    if action is None:
        return False
    user = request.user
    if not user.is_authenticated:
        return False  # the view sends them to sign in, which counts
    if view_name.startswith("admin:") and not user.is_system_admin:
        return False  # the admin turns them away anyway
    if reauth_is_fresh(request):
        return False
    if action.fields:
        return request.method == "POST" and _admin_form_changes(
            request, view_func, view_kwargs or {}, action.fields
        )
    if action.post_only:
        return request.method == "POST"
    return True


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs):
    # Any sign-in: the portal's and the admin's forms (and the tests' force_login).
    if request is not None and hasattr(request, "session"):
        reauth_stamp(request)
