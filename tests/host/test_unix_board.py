"""host_tools/dev/unix_board.py's edges: sizes, a missing bundle, bad arguments (one clear line each)."""

from __future__ import annotations

import pytest

from host_tools.dev import unix_board


def test_sizes_as_heapsize_takes_them():
    assert unix_board.parse_size("131072") == 131072
    assert unix_board.parse_size("128K") == 128 * 1024
    assert unix_board.parse_size("1m") == 1024 * 1024
    for bad in ("", "K", "12Q", "-4K", "0"):
        with pytest.raises(unix_board.BoardError):
            unix_board.parse_size(bad)


def test_bad_input_is_one_line(tmp_path, capsys):
    assert unix_board.main(["--heap", "lots"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unix_board: not a size")
    assert unix_board.main(["--bundle", str(tmp_path), "--state", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run `make firmware` first" in err[0]
    assert unix_board.main(["--rate", "0"]) == 1
    assert "--rate must be >= 1" in capsys.readouterr().err
