from django import template

from apps.tenancy.selectors import tenants_for_user

register = template.Library()


@register.simple_tag
def user_tenants(user):
    """The tenants the user has a role in, for links on the home page."""
    return list(tenants_for_user(user=user)) if user.is_authenticated else []
