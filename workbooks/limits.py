from django.conf import settings

from workbooks.domain.values import Limits


def current() -> Limits:
    """The contract's limits as this deployment configured them (settings.TABULA_LIMITS)."""
    return Limits(**settings.TABULA_LIMITS)
