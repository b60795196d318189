from django.utils.functional import SimpleLazyObject

from apps.operations.selectors import maintenance_state


def maintenance(request):
    """`maintenance` (is_on, message) for the banner every page shows; read when used."""
    return {"maintenance": SimpleLazyObject(maintenance_state)}
