"""One handset's call: the server acts as the host, in this order.

1. HELLO: the handset's serial (an unprovisioned unit is hung up on).
2. Directives: every signed directive for that serial not acknowledged yet, oldest first, one
   TOKEN each. The outcome is written before the next TOKEN goes out:
   - the TOKEN reply, or a NACK saying the token was already applied (ALREADY_APPLIED, or
     REPLAYED from a device that predates it: either way the token can never apply again),
     marks it `delivered`;
   - a NACK that time may change (NOT_YET_VALID: the handset's clock is behind; BUSY,
     INTERNAL, STORAGE_FAILURE, NOT_PERMITTED) leaves it to `retry` at the next call, up to
     MAX_ATTEMPTS calls; any other NACK (expired, bad signature, wrong device ...) marks it
     `refused` with the NACK's name;
   - a connection lost before the answer leaves it to `retry`: the token may have been applied
     with its answer lost, and the next call's TOKEN is then answered ALREADY_APPLIED.
   So each directive is applied on the handset exactly once (the device refuses a token id it
   has applied) and is marked delivered only after the handset said so. Before its TOKEN goes
   out the call claims the directive (store.claim, atomic across link processes): a directive
   another call is sending (a stale connection of the same handset, on this process or
   another) is not sent, and neither is anything after it in this call (the order stays).
3. Log upload: LOG_INFO (asked with STATUS: one round trip), then LOG_READ from the record
   after the last one held, verified as lci-tool verifies a download (host_tools.logverify:
   CRCs, indices, the hash chain anchored to the last record held, and the handset's head hash
   at the end). A run that does not verify is refused whole (nothing stored, the problem
   recorded); the next call tries again.
4. STATUS: the state, causes, deadlines and display (read with LOG_INFO, after the directives),
   recorded with the time of the call once the upload has ended.

Every step's failure ends the call with its outcome recorded; nothing is half-written.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

from host_tools import logverify
from host_tools.link import LinkError, Nack
from protocol import error_texts, errors, logrecord, messages
from provider.link import store
from provider.link.host import AsyncHost

ALREADY_APPLIED = errors.ALREADY_APPLIED
# answers that mean the token is on the handset (or can never be applied again): delivered
APPLIED_CODES = {ALREADY_APPLIED: "already_applied", errors.REPLAYED: "replayed"}
# answers that a later call may change: the directive stays to be retried
TRANSIENT_CODES = (errors.NOT_YET_VALID, errors.BUSY, errors.INTERNAL, errors.STORAGE_FAILURE,
                   errors.NOT_PERMITTED)
MAX_ATTEMPTS = 20
MAX_UPLOAD = 8192  # records per call: more than a handset's whole log
MAX_TOKEN = 510  # the TOKEN request's blob (SPEC 6.8)
_INDEX_TIME_KIND = struct.Struct("<IIB")  # at offset 1 of a record


def nack_name(code: int) -> str:
    for name in dir(errors):
        if name.isupper() and name != "MEANINGS" and getattr(errors, name) == code:
            return name
    return f"0x{code:02x}"


class Session:
    """One connection. `db(fn, *args)` runs a provider.link.store function on the server's
    database thread; `clock()` is the server's time in Unix seconds."""

    def __init__(self, host: AsyncHost, db: Callable[..., Awaitable], clock: Callable[[], float],
                 *, peer_serial: str | None = None, owner: str = "", lease: int = 120):
        self.host = host
        self.db = db
        self.clock = clock
        self.peer_serial = peer_serial  # the serial the TLS client certificate names, if any
        self.owner = owner  # who this call is, for its claims on directives
        self.lease = lease  # seconds a claim holds if the call vanishes without an outcome
        self.held: list[int] = []  # directives another call was sending
        self.serial: str | None = None
        self.firmware: str | None = None
        self.delivered: list[dict] = []
        self.refused: list[dict] = []
        self.retry: list[dict] = []
        self.uploaded = 0
        self.log_problem: str | None = None
        self.note: str | None = None
        self.status: dict | None = None
        self.outcome = "incomplete"

    def now(self) -> int:
        return int(self.clock())

    async def run(self) -> str:
        try:
            info = await self.host.hello()
            self.serial = info["serial"]
            self.firmware = info["firmware"]
            self.host.description = self.serial or "unprovisioned handset"
            if not self.serial:
                self.outcome = "unprovisioned handset: hung up"
                return self.outcome
            if self.peer_serial is not None and self.peer_serial != self.serial:
                self.outcome = (f"certificate names {self.peer_serial}, handset says {self.serial}: "
                                "hung up")
                self.serial = None  # nothing is recorded against a serial nobody proved
                return self.outcome
            await self.directives()
            window = max(1, min(info["window"] or 1, 16))
            # LOG_INFO and STATUS read together (neither changes the handset; one round trip)
            log_info, status = await self.host.requests((messages.LOG_INFO, {}), (messages.STATUS, {}))
            uploaded = await self.upload(log_info, window)
            self.status = self.status_of(status)
            self.outcome = "ok" if self.log_problem is None else f"log refused: {self.log_problem}"
            await self.finish(uploaded)
        except LinkError as exc:
            self.outcome = f"incomplete: {exc}"
            if self.serial:
                await self.finish([])
        return self.outcome

    # -- 2. directives ------------------------------------------------------------------------------
    async def directives(self) -> None:
        assert self.serial is not None
        for directive in await self.db(store.pending, self.serial):
            token = directive["token"]
            if token is None or len(token) > MAX_TOKEN:
                # the outbox holds bytes no TOKEN can carry: nothing to send, ever
                await self._record(directive, store.REFUSED, "MALFORMED_TOKEN",
                                   "the outbox's token is not a token the link can send")
                continue
            if not await self.db(store.claim, directive, self.serial, self.owner, self.now(),
                                 self.lease):
                self.held.append(directive["id"])
                break  # another call is sending it; what follows waits for it
            try:
                reply = await self.host.request(messages.TOKEN, token=token)
            except Nack as nack:
                if nack.code in APPLIED_CODES:
                    await self._record(directive, store.DELIVERED, APPLIED_CODES[nack.code],
                                       nack.detail or error_texts.meaning(nack.code))
                elif nack.code in TRANSIENT_CODES and directive["attempts"] + 1 < MAX_ATTEMPTS:
                    await self._record(directive, store.RETRY, nack_name(nack.code), nack.detail)
                else:
                    await self._record(directive, store.REFUSED, nack_name(nack.code),
                                       nack.detail or error_texts.meaning(nack.code))
                continue
            except LinkError:
                await self._record(directive, store.RETRY, None, "no answer: connection lost")
                raise
            await self._record(directive, store.DELIVERED, "token", reply["detail"])

    async def _record(self, directive: dict, status: str, answer: str | None, detail: str) -> None:
        await self.db(store.record_attempt, directive, self.serial, status, answer, detail or "",
                      self.now())
        entry = dict(directive, status=status, answer=answer, detail=detail)
        entry.pop("token", None)
        {store.DELIVERED: self.delivered, store.REFUSED: self.refused,
         store.RETRY: self.retry}[status].append(entry)

    # -- 3. log upload ------------------------------------------------------------------------------
    async def upload(self, info: dict, window: int) -> list[bytes]:
        """The new records after LOG_INFO `info`, verified; [] when there are none or they do
        not verify."""
        assert self.serial is not None
        low, high = info["first"], info["first"] + info["count"]
        next_index, prev_hash = await self.db(store.log_anchor, self.serial)
        if next_index is None or next_index < low:
            if next_index is not None:
                self.note = f"records {next_index}..{low - 1} were released before the link read them"
            next_index = low
            prev_hash = logrecord.GENESIS if low == 0 else None
        if next_index > high:
            self.log_problem = (f"the handset holds records up to {high - 1}, the link already "
                                f"holds up to {next_index - 1}: not the log uploaded before")
            return []
        if next_index == high:
            return []
        end = min(high, next_index + MAX_UPLOAD)
        pages = await self.host.read_log(next_index, end - next_index, window)
        records = [record for _, page in pages for record in page]
        report = logverify.verify(records, prev_hash=prev_hash,
                                  head_hash=info["head_hash"] if end == high else None)
        if report["chain_ok"] and report["first"] != next_index:
            report["chain_ok"] = False
            report["broken_at"] = report["first"]
            report["chain_problem"] = f"index {report['first']} where {next_index} was due"
        if len(records) != end - next_index and report["chain_ok"]:
            report["chain_ok"] = False
            report["broken_at"] = next_index + len(records)
            report["chain_problem"] = "the handset sent fewer records than it holds"
        if not report["chain_ok"]:
            where = report["broken_at"] if report["broken_at"] is not None else next_index
            self.log_problem = f"chain broken at record {where}: {report['chain_problem']}"
            return []
        return records

    # -- 4. status ------------------------------------------------------------------------------------
    @staticmethod
    def status_of(raw: dict) -> dict:
        """The STATUS reply as link_handset's columns."""
        names = messages.COMPLIANCE_STATES
        sessions = messages.SESSION_STATES
        return {
            "compliance": names[raw["compliance"]] if raw["compliance"] < len(names) else str(raw["compliance"]),
            "session": sessions[raw["session"]] if raw["session"] < len(sessions) else str(raw["session"]),
            "causes": ",".join(messages.bits_to_names(raw["causes"], messages.CAUSES)),
            "device_now": raw["now"],
            "deadline": raw["deadline"] or None,
            "deadline_left": raw["deadline_left"] if raw["deadline"] else None,
            "service_due": raw["service_due"] or None,
            "calibration_due": raw["calibration_due"] or None,
            "display": f"{raw['line1']}|{raw['line2']}",
            "log_count": raw["log_count"],
            "log_free_pct": raw["log_free_pct"],
        }

    async def finish(self, records: list[bytes]) -> None:
        # index, time and kind of each verified record (docs/eventlog.md's layout)
        uploaded = [(*_INDEX_TIME_KIND.unpack_from(record, 1), record) for record in records]
        log_next = log_hash = None
        if records:
            log_next = uploaded[-1][0] + 1
            log_hash = logrecord.record_hash(records[-1])
        await self.db(store.finish_session, self.serial, self.now(), status=self.status,
                      firmware=self.firmware, outcome=self.outcome, uploaded=uploaded,
                      log_next=log_next, log_hash=log_hash, log_problem=self.log_problem)
        self.uploaded = len(records)

    def summary(self) -> dict:
        return {"serial": self.serial, "outcome": self.outcome, "delivered": self.delivered,
                "refused": self.refused, "retry": self.retry, "held": self.held,
                "uploaded": self.uploaded,
                "log_problem": self.log_problem, "status": self.status,
                "note": self.note, "retransmissions": self.host.retransmissions}
