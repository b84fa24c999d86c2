"""Presenting a signed token so that a lost reply never does the work twice, nor reports it wrong.

A reply can be lost after the handset applied the token (the cable pulled at the wrong
moment). The rules:
- every retry presents the SAME token: the link's retransmissions within a USB session, and,
  after a dropped connection, the same bytes again on a reconnected one;
- the handset answers a token whose id it has recorded as applied with NACK ALREADY_APPLIED
  ("nothing changed"): that is success, reported as "already applied";
- a session-bound token presented again in a new session that the handset answers with
  SESSION_MISMATCH (and not ALREADY_APPLIED) was never applied and can no longer be (its
  session is gone): only then may `remint` make one for the new session;
- a device may judge a token's window, delegation and scope before it looks the id up, so
  after a lost answer a refusal for one of those (EXPIRED ...) does not say whether the
  first presentation worked: that too is OutcomeUnknown;
- when no answer comes at all (reconnecting impossible, retries spent) the outcome is
  unknown: OutcomeUnknown, which lci-tool reports with its own exit code, asking the
  technician to read the status. A dropped connection is never a protocol error.
"""

from __future__ import annotations

from collections.abc import Callable

from host_tools.device_client import DeviceClient
from host_tools.link import LinkError, LinkLost, LinkTimeout, Nack, NoSuchPort
from protocol import error_texts, errors

UNKNOWN_TEXT = "the handset did not answer; it may have applied the command — run `lci-tool status`"
RECONNECTS = 3
# refusals a device may give before it looks up the token id: after a lost answer they prove nothing
BEFORE_THE_ID = (errors.EXPIRED, errors.NOT_YET_VALID, errors.DELEGATION_EXPIRED, errors.OUT_OF_SCOPE)


class OutcomeUnknown(LinkError):
    """A changing request went out and no answer came back: it may or may not be done."""

    def __init__(self, why: str, final: bool = False):
        super().__init__(f"{UNKNOWN_TEXT} ({why})")
        self.why = why
        self.final = final  # the handset answered, with a refusal that settles nothing


def already_applied(exc: BaseException) -> bool:
    return isinstance(exc, Nack) and exc.code == errors.ALREADY_APPLIED


def deliver(
    client: DeviceClient,
    token: bytes,
    *,
    reconnects: int = RECONNECTS,
    remint: Callable[[DeviceClient], bytes] | None = None,
    say: Callable[[str], None] = lambda text: None,
    uncertain: bool = False,
) -> dict:
    """Present `token` until the handset gives a definite answer; {action, detail, already}.

    Raises Nack for a refusal (nothing changed), OutcomeUnknown when the answer never came.
    A failure before the request could go out is raised as it is (nothing was sent).
    uncertain: the token went out before (an earlier run) and its answer was lost."""
    lost = uncertain  # a request went out and its answer was lost: later answers settle it
    attempts = 0
    while True:
        try:
            result = client.submit_token(token)
            result["already"] = False
            return result
        except Nack as exc:
            if already_applied(exc):
                return {"action": _action_of(token), "detail": "already applied", "already": True}
            if lost and exc.code == errors.SESSION_MISMATCH and remint is not None:
                # not recorded as applied, and bound to a session that no longer exists
                token = remint(client)
                lost = False
                continue
            if lost and exc.code in BEFORE_THE_ID:
                raise OutcomeUnknown(f"now refused: {error_texts.meaning(exc.code)}", final=True) from None
            explained = _with_times(client, token, exc)
            if explained is exc:
                raise
            raise explained from None
        except (LinkTimeout, LinkLost) as exc:
            if not exc.maybe_applied and not lost:
                raise
            lost = True
            why = str(exc)
        while True:  # plug the cable back in: a new USB session
            attempts += 1
            if attempts > reconnects or not client.can_reconnect:
                raise OutcomeUnknown(why)
            say(f"no answer ({why}); reconnecting ({attempts}/{reconnects})")
            try:
                client.reconnect()
                break
            except (LinkTimeout, LinkLost, NoSuchPort) as exc:
                why = str(exc)


TIME_REFUSALS = (errors.EXPIRED, errors.NOT_YET_VALID, errors.DELEGATION_EXPIRED)


def _with_times(client: DeviceClient, token: bytes, exc: Nack) -> Nack:
    """A refusal of the token's time window or delegation, told from the token's own fields and
    the handset's clock (STATUS: the clock it judges tokens by), in ISO 8601; other refusals,
    or a token this laptop cannot read, as they came."""
    from host_tools.cli import core_text, record_time
    from protocol import tokens

    if exc.code not in TIME_REFUSALS:
        return exc
    try:
        parsed = tokens.parse_token(token)
    except tokens.TokenError:
        return exc
    try:
        clock = f"; the handset's clock reads {core_text(client.status()['now'])}"
    except LinkError:
        clock = ""
    if exc.code == errors.EXPIRED:
        detail = f"valid until {record_time(parsed.expires)}{clock}"
    elif exc.code == errors.NOT_YET_VALID:
        detail = f"valid from {record_time(parsed.not_before)}{clock}"
    elif parsed.certificate is not None:
        key = parsed.certificate.key_id
        key = key.decode("utf-8", "replace") if isinstance(key, (bytes, bytearray)) else str(key)
        detail = f"key {key} delegated until {record_time(parsed.certificate.expires)}{clock}"
    else:
        return exc
    return Nack(exc.code, exc.request_type, detail)


def _action_of(token: bytes) -> str | None:
    from protocol import tokens

    try:
        return tokens.decode_token(tokens.parse_token(token)).action
    except tokens.TokenError:
        return None
