"""The host administration: the Django admin, for system administrators only.

The one check for the whole site, so no admin page can forget it: staff
flags alone do not let anyone in.
"""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.shortcuts import redirect


class PostmasterAdminSite(AdminSite):
    site_header = "Postmaster host administration"
    site_title = "Postmaster host administration"
    index_title = "Host administration"

    def has_permission(self, request):
        # Asked for anonymous visitors too (the login page).
        return getattr(request.user, "is_system_admin", False)

    def password_change(self, request, extra_context=None):
        # One page changes your own password: the account page's, which is
        # audited and counts wrong current passwords towards the lockout.
        return redirect("account:password_change")


class PostmasterAdminConfig(AdminConfig):
    default_site = "apps.core.admin_site.PostmasterAdminSite"
