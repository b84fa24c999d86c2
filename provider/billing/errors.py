"""The billing engine's exceptions: each one becomes one clear line at the CLI."""

from __future__ import annotations


class BillingError(Exception):
    """Base class: the message is one line a person can act on."""


class InputError(BillingError):
    """A malformed policy, scenario or command argument: names the file, the field and the problem."""

    def __init__(self, source: str, field: str, problem: str):
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


class RuleError(BillingError):
    """A request the policy or the account's life cycle does not allow (e.g. closing an unpaid account)."""


class NotFound(BillingError):
    """No such account (or other record)."""
