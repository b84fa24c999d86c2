"""The payment processor interface: the shape a real gateway adapter implements.

The engine charges a tokenized payment method (the card itself never reaches the back office)
with an idempotency key: calling `charge` again with the same key must return the first result
and never move money twice (what Stripe, Adyen, Braintree and Authorize.net offer under the names
Idempotency-Key / reference / order id). A declined charge is a normal result with a decline code;
a transport failure (timeout, 5xx) raises ProcessorUnavailable and the engine retries later with
the same key, so an attempt whose answer was lost is never charged twice.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

SUCCEEDED = "succeeded"
FAILED = "failed"

# Decline codes the engine understands (gateway adapters map their own codes onto these).
CARD_DECLINED = "card_declined"
EXPIRED_CARD = "expired_card"
INSUFFICIENT_FUNDS = "insufficient_funds"
INVALID_TOKEN = "invalid_token"
NO_PAYMENT_METHOD = "no_payment_method"  # engine-side: nothing on file to charge
DECLINE_CODES = (CARD_DECLINED, EXPIRED_CARD, INSUFFICIENT_FUNDS, INVALID_TOKEN, NO_PAYMENT_METHOD)


class ChargeResult(NamedTuple):
    """A processor's answer (immutable; one is made for every charge of a daily run)."""

    status: str  # SUCCEEDED or FAILED
    reference: str  # the processor's id for the charge (or refund)
    decline_code: str | None = None
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


class ProcessorUnavailable(Exception):
    """The processor did not answer: nothing is known; retry later with the same idempotency key."""


class PaymentProcessor(Protocol):
    def charge(self, *, idempotency_key: str, token: str, amount: int, currency: str,
               description: str, at: int) -> ChargeResult:
        """Charge `amount` cents to the tokenized method. `at` is the engine's clock (Unix seconds):
        the simulated processor uses it; a real adapter ignores it."""

    def refund(self, *, idempotency_key: str, token: str, amount: int, currency: str,
               description: str, at: int) -> ChargeResult:
        """Pay `amount` cents back to the tokenized method (same idempotency contract)."""
