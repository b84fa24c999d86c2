"""Work-order files: the compliance department's signed authority to touch equipment.

No equipment is removed or exchanged without a work order, whatever document a
customer shows. A work-order file is what travels to the service center (email, the
appointment page): a small TOML document whose [work_order] table names the order, and
whose `token` is the signed work_order token (hex) that the handset itself checks.

    [work_order]
    id = "WO-2026-0412"
    order = "removal"            # installation | removal | exchange | vehicle_switch | handset_exchange
    serial = "LCI7-000123"
    vehicle = "1HGCM82633A004352"
    token = "01..."              # signed by a key with scope work_order

load() checks that the readable fields and the signed token agree, so a file edited by hand
is caught here with one line, before the handset refuses it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from host_tools import tokens
from host_tools.keys import core_now
from protocol.coretime import DAY

# a work order is signed in the office and applied in the field: a handset whose clock runs
# a little behind the office's must not find it "not yet valid"
CLOCK_SKEW_S = 3600


class WorkOrderError(ValueError):
    pass


def issue(signer, serial: str, order: str, order_id: str, vehicle: str, out: Path, *,
          days: int = 30, now: int | None = None) -> Path:
    now = core_now() if now is None else now
    try:
        token = tokens.mint(signer, serial, "work_order",
                            {"order": order, "id": order_id, "vehicle": vehicle},
                            now=now, ttl=days * DAY, not_before=now - CLOCK_SKEW_S)
    except tokens.MintError as exc:
        raise WorkOrderError(str(exc)) from None
    text = (
        "# LCI-777 work order — signed; the handset verifies the token itself.\n"
        "[work_order]\n"
        f"id = {_quote(order_id)}\n"
        f"order = {_quote(order)}\n"
        f"serial = {_quote(serial)}\n"
        f"vehicle = {_quote(vehicle)}\n"
        f'token = "{token.hex()}"\n'
    )
    out.write_text(text)
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise WorkOrderError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkOrderError(f"{path}: {exc}") from None
    table = data.get("work_order")
    if not isinstance(table, dict):
        raise WorkOrderError(f"{path}: no [work_order] table")
    for field in ("id", "order", "serial", "token"):
        if not isinstance(table.get(field), str) or not table[field]:
            raise WorkOrderError(f"{path}: [work_order] needs a text field '{field}'")
    try:
        token = bytes.fromhex(table["token"])
        described = tokens.describe(token)
    except (ValueError, tokens.MintError) as exc:
        raise WorkOrderError(f"{path}: token: {exc}") from None
    if described["action"] != "work_order":
        raise WorkOrderError(f"{path}: the token authorizes {described['action']}, not a work order")
    signed = described["args"]
    for field, signed_value in (("serial", described["serial"]), ("order", signed.get("order")),
                                ("id", signed.get("id"))):
        if table[field] != signed_value:
            raise WorkOrderError(
                f"{path}: {field} says {table[field]!r} but the signed token says {signed_value!r}"
            )
    return {"id": table["id"], "order": table["order"], "serial": table["serial"],
            "vehicle": table.get("vehicle", ""), "token": token, "expires": described["expires"]}
