"""The deployment's limits: the contract's defaults, read from settings at call time."""

from workbooks.domain.values import Limits
from workbooks.limits import current


class CurrentTest:
    def test_current_defaults_are_the_contracts(self):
        limits = current()
        assert limits == Limits()
        assert (limits.max_value_chars, limits.max_message_bytes, limits.max_cells_per_set) == (10_000, 1024 * 1024, 10_000)
        assert (limits.max_rows, limits.max_cols) == (100_000, 1_000)
        assert limits.ops_per_second >= 200

    def test_current_settings_override_seen_at_once(self, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_rows": 5, "ops_per_second": 1}
        assert (current().max_rows, current().ops_per_second) == (5, 1)
