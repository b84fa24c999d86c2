"""make flash: the mpremote plan for a bundle (no board needed to check what would be sent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_tools.dev import flash, mpybuild


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
    assert ":/lib/protocol/error_texts.mpy" not in remote  # the host's texts for NACK codes
    assert ":/lib/protocol/signing.mpy" not in remote  # the host's token bodies
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


def test_rp2_and_esp32_get_a_romfs_image_other_boards_files(bundle, tmp_path, capsys):
    assert flash.main(["--board", "rp2", "--bundle", str(bundle), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("mpremote connect PORT romfs deploy ")
    assert out[1].endswith(":/main.py") and out[2] == "mpremote connect PORT reset"
    assert flash.main(["--board", "esp32", "--bundle", str(bundle), "--dry-run"]) == 0
    assert "romfs deploy" in capsys.readouterr().out
    for argv in (["--board", "rp2", "--files"], ["--board", "unix"]):
        assert flash.main([*argv, "--bundle", str(bundle), "--dry-run"]) == 0
        text = capsys.readouterr().out
        assert "romfs" not in text and "fs cp" in text


def test_the_romfs_tree_is_what_the_files_copy_sends(bundle, tmp_path):
    staged = flash.stage(bundle, tmp_path / "romfs", "rp2")
    sent = sorted(r.lstrip(":/") for _, r in flash.plan(bundle, "rp2"))
    found = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*.mpy"))
    assert found == sent and "lib/firmware/boards/rp2.mpy" in found


def test_main_py_starts_the_loop():
    # importing firmware.main only defines it (its __main__ guard): main.py must call main()
    assert flash.MAIN_PY.splitlines()[-1] == "firmware.main.main()"


def test_flash_without_a_port_finds_none_and_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.delenv("LCI_PORT", raising=False)
    monkeypatch.setattr(flash, "list_ports", lambda: [])  # a machine with no serial port at all
    assert flash.main(["--board", "rp2"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no LCI-777 found" in err and "PORT=" in err
