"""The checked-in state diagrams are the ones the code draws today."""

from __future__ import annotations

from host_tools.dev import diagrams


def test_checked_in_diagrams_are_current(capsys):
    assert diagrams.main(["--check"]) == 0, capsys.readouterr().err


def test_every_transition_of_the_table_is_drawn():
    from firmware.transitions_table import DEST, MACHINE, SOURCE, TRIGGER, rows

    for name in ("compliance", "session"):
        edges = [line.strip() for line in diagrams.machine_mermaid(name).splitlines() if "-->" in line]
        for row in rows():
            if row[MACHINE] == name:
                edge = f"{row[SOURCE]} --> {row[DEST]}: "
                # mermaid draws one edge per pair of states, its triggers joined
                assert any(e.startswith(edge) and row[TRIGGER] in e[len(edge):] for e in edges), row


def test_a_stale_diagram_is_reported(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "device.md"
    stale.write_text("old drawing\n")
    monkeypatch.setattr(diagrams, "generated", lambda: {stale: "new drawing\n"})
    monkeypatch.setattr(diagrams, "REPO", tmp_path)
    assert diagrams.main(["--check"]) == 1
    assert "stale diagrams: device.md" in capsys.readouterr().err
