"""Small helpers the tenant portal's views share (tenancy and groups)."""

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render

PAGE_SIZE = 50


def paginate(request, queryset: QuerySet, per_page: int = PAGE_SIZE) -> Page:
    """One page of a list: two queries (count and rows) however long the list is."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def form_submit(form: forms.Form, save: Callable[[dict], object]):
    """Run the service call `save(cleaned_data)` for a valid form and return what it returns.

    None when the form or the service found a problem: the service's
    ValidationError lands on the form, by field where it names one.
    """
    if not form.is_valid():
        return None
    try:
        return save(form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, exc)
        return None


def actor(request) -> dict:
    """Who is acting and from where, as the services take it for their audit entries."""
    return {"actor": request.user, "request": request}


def form_page(
    request,
    form: forms.Form,
    *,
    save: Callable[[dict], object],
    done: Callable[[object], tuple[str, str]],
    template: str = "tenancy/form.html",
    **context,
) -> HttpResponse:
    """GET shows the form; POST runs `save`, then `done(result)` gives (message, next URL)."""
    if request.method == "POST":
        result = form_submit(form, save)
        if result is not None:
            message, url = done(result)
            if message:  # empty when `done` said something else already (a warning)
                messages.success(request, message)
            return redirect(url)
    return render(request, template, {"form": form, **context})


def delete_page(
    request,
    *,
    obj,
    kind: str,
    goes_with_it: dict[str, int],
    delete: Callable[[], None],
    cancel_url: str,
    success_url: str,
    verb: tuple[str, str] = ("Delete", "deleted"),
) -> HttpResponse:
    """GET: a confirmation saying what goes with `obj`. POST: delete (or remove) it."""
    if request.method == "POST":
        try:
            delete()
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(cancel_url)
        messages.success(request, f"The {kind} “{obj}” was {verb[1]}.")
        return redirect(success_url)
    context = {
        "object": obj,
        "kind": kind,
        "goes_with_it": {what: n for what, n in goes_with_it.items() if n},
        "cancel_url": cancel_url,
        "verb": verb[0],
    }
    return render(request, "tenancy/confirm_delete.html", context)
