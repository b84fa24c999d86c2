"""host_tools.dev.corecheck fails on a state compared by name outside the transition table and
its engine: the core asks a machine for its flags, rows and refusals instead."""

from host_tools.dev import corecheck


def test_the_core_compares_no_state_by_name():
    assert corecheck.state_name_comparisons() == []


def test_a_state_compared_by_name_is_found(tmp_path):
    core = tmp_path / "firmware"
    core.mkdir()
    (core / "machine.py").write_text('def f(m):\n    return m.state == "lockout"\n')  # the engine may
    (core / "rule.py").write_text(
        'LOCKED = ("lockout", "code_unlock")\n'
        "def f(d, state):\n"
        '    if d.session.state != "violation":\n'
        "        return state in LOCKED\n"
        '    return state in ("service", "removed")\n'
    )
    found = corecheck.state_name_comparisons(tmp_path)
    assert sorted(found) == sorted([
        "firmware/rule.py:3: state 'violation' compared by name",
        "firmware/rule.py:4: state 'lockout' compared by name",
        "firmware/rule.py:4: state 'code_unlock' compared by name",
        "firmware/rule.py:5: state 'service' compared by name",
        "firmware/rule.py:5: state 'removed' compared by name",
    ]), found


def test_the_check_fails_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(corecheck, "STRUCTURE_CHECKS",
                        (lambda root: ["firmware/x.py:1: state 'normal' compared by name"],))
    assert corecheck.main(["--structure-only"]) == 1
    assert "compared by name" in capsys.readouterr().err
