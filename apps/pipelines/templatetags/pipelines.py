from django import template

register = template.Library()


@register.filter
def web_link(url: str) -> str:
    """The URL if it is an http(s) link, else "": a run's link comes from an API client."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""
