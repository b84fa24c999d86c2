"""make flash: the mpremote plan for a bundle (no board needed to check what would be sent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_tools import flash, mpybuild


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mpy")
    report = mpybuild.build(out)
    assert not report["failures"], report["failures"]
    return out


def test_rp2_plan_sends_the_core_and_only_its_board(bundle):
    remote = [r for _, r in flash.plan(bundle, "rp2")]
    assert ":/lib/protocol/framing.mpy" in remote
    assert ":/lib/firmware/device.mpy" in remote
    assert ":/lib/firmware/boards/rp2.mpy" in remote
    assert ":/lib/firmware/boards/esp32.mpy" not in remote
    assert all(r.endswith(".mpy") for r in remote)


def test_commands_create_folders_copy_main_and_reset(bundle, tmp_path):
    main_py = tmp_path / "main.py"
    main_py.write_text(flash.MAIN_PY)
    steps = flash.commands("/dev/ttyACM0", bundle, "rp2", main_py)
    assert steps[0][:3] == ["connect", "/dev/ttyACM0", "fs"]
    assert steps[-1] == ["connect", "/dev/ttyACM0", "reset"]
    assert ":/main.py" in steps[-2]


def test_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(flash.FlashError, match="run `make firmware` first"):
        flash.plan(tmp_path, "rp2")
    with pytest.raises(flash.FlashError, match="unknown board"):
        flash.plan(tmp_path, "z80")
    assert flash.main(["--board", "rp2"]) == 2
    assert "make flash PORT=" in capsys.readouterr().err
