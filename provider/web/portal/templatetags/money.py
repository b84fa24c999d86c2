"""Template filters that format what the engine computed; they never compute money."""

from django import template

from provider.billing.money import fmt

register = template.Library()


@register.filter
def dollars(cents):
    """Integer cents from the engine -> '$54.12' (formatting only)."""
    if cents is None or cents == "":
        return "—"
    return fmt(int(cents))


@register.filter
def words(value):
    return str(value or "").replace("_", " ")
