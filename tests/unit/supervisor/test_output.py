"""The supervisor's formatting: prefixes, colours, log files, durations, the summary."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest

from topo.supervisor.output import (
    COLORS,
    LogFiles,
    Printer,
    format_duration,
    read_log,
    read_records,
    summary_table,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


@pytest.fixture(autouse=True)
def _colour_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's NO_COLOR or TERM must not change what the tests see."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


# -- Printer ------------------------------------------------------------------------------


def test_prefix_is_padded_to_longest_name_and_topo() -> None:
    out = io.StringIO()
    p = Printer(out, ["a", "server"])
    p.line("a", "hello")
    p.line("server", "world")
    p.system("started")
    assert out.getvalue() == "a      | hello\nserver | world\ntopo   | started\n"


def test_short_names_are_padded_to_topo() -> None:
    out = io.StringIO()
    Printer(out, ["a"]).line("a", "x")
    assert out.getvalue() == "a    | x\n"


def test_padding_grows_when_names_are_added() -> None:
    out = io.StringIO()
    p = Printer(out, ["a"])
    p.line("a", "one")
    p.add("worker.10")
    p.line("a", "two")
    p.line("worker.10", "three")
    assert out.getvalue().splitlines() == [
        "a    | one",
        "a         | two",
        "worker.10 | three",
    ]
    assert p.width == len("worker.10")


def test_unknown_name_is_added_on_first_line() -> None:
    out = io.StringIO()
    p = Printer(out, [])
    p.line("late-node", "hi")
    assert out.getvalue() == "late-node | hi\n"


def test_stderr_lines_carry_the_same_prefix() -> None:
    out = io.StringIO()
    Printer(out, ["n"]).line("n", "oops", err=True)
    assert out.getvalue() == "n    | oops\n"


def test_embedded_newlines_get_a_prefix_each_and_empty_lines_no_trailing_space() -> None:
    out = io.StringIO()
    Printer(out, ["n"]).line("n", "Traceback:\n  boom\n")
    assert out.getvalue() == "n    | Traceback:\nn    |   boom\nn    |\n"


def test_one_write_call_per_line() -> None:
    out = CountingStream()
    p = Printer(out, ["n"])
    p.line("n", "a")
    p.system("b")
    assert out.writes == ["n    | a\n", "topo | b\n"]


def test_concurrent_lines_never_interleave() -> None:
    out = io.StringIO()
    p = Printer(out, [f"t{i}" for i in range(4)])

    def spam(i: int) -> None:
        for j in range(200):
            p.line(f"t{i}", f"line {j} " + "x" * 50)

    threads = [threading.Thread(target=spam, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 800
    assert all(re.fullmatch(r"t\d   \| line \d+ x{50}", line) for line in lines)


def test_no_colour_on_a_non_tty_stream() -> None:
    out = io.StringIO()
    p = Printer(out, ["n"])
    p.line("n", "x")
    assert not p.color
    assert "\x1b" not in out.getvalue()


def test_colour_on_a_tty_by_default() -> None:
    out = TtyStream()
    p = Printer(out, ["a", "b"])
    p.line("a", "x")
    p.line("b", "y")
    assert p.color
    first, second = out.getvalue().splitlines()
    assert first.startswith(f"\x1b[{COLORS[0]}ma    |\x1b[0m x")
    assert second.startswith(f"\x1b[{COLORS[1]}mb    |\x1b[0m y")
    assert ANSI.sub("", out.getvalue()) == "a    | x\nb    | y\n"


def test_colour_is_stable_per_name() -> None:
    out = io.StringIO()
    p = Printer(out, ["a", "b"], color=True)
    p.line("b", "1")
    p.line("a", "2")
    p.line("b", "3")
    codes = re.findall(r"\x1b\[([0-9;]+)m", out.getvalue())
    colours = [c for c in codes if c != "0"]
    assert colours == [COLORS[1], COLORS[0], COLORS[1]]


def test_colours_cycle_past_the_palette() -> None:
    out = io.StringIO()
    names = [f"n{i}" for i in range(len(COLORS) + 1)]
    p = Printer(out, names, color=True)
    p.line(names[-1], "x")
    assert out.getvalue().startswith(f"\x1b[{COLORS[0]}m")


@pytest.mark.parametrize("value", ["", "1"])
def test_no_color_env_wins_over_tty(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NO_COLOR", value)
    out = TtyStream()
    Printer(out, ["n"]).line("n", "x")
    assert out.getvalue() == "n    | x\n"


def test_dumb_terminal_has_no_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert not Printer(TtyStream(), ["n"]).color


def test_explicit_colour_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert Printer(io.StringIO(), [], color=True).color
    assert not Printer(TtyStream(), [], color=False).color


def test_system_messages_have_a_distinct_style() -> None:
    out = io.StringIO()
    p = Printer(out, ["n"], color=True)
    p.system("hello")
    assert out.getvalue() == "\x1b[1mtopo |\x1b[0m hello\n"


def test_unencodable_text_does_not_crash() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    Printer(out, ["n"]).line("n", "caf\u00e9")
    assert raw.getvalue() == b"n    | caf?\n"


# -- durations and the summary --------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.00s"),
        (0.42, "0.42s"),
        (0.999, "1.0s"),
        (3.14, "3.1s"),
        (59.96, "1m00s"),
        (125, "2m05s"),
        (3599.4, "59m59s"),
        (3599.6, "1h00m"),
        (3720, "1h02m"),
        (90000, "25h00m"),
        (-1, "0.00s"),
        (float("nan"), "-"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_summary_table_aligns_columns() -> None:
    table = summary_table([("server", "returned", 3.14), ("worker.10", "failed: boom", 125.0)])
    assert table.splitlines() == [
        "NODE       RESULT         TIME",
        "server     returned       3.1s",
        "worker.10  failed: boom  2m05s",
    ]
    assert not table.endswith("\n")


def test_summary_table_without_rows_is_the_header() -> None:
    assert summary_table([]) == "NODE  RESULT  TIME"


# -- log files ---------------------------------------------------------------------------


def test_log_files_are_opened_lazily_and_read_back(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path / "logs")
    assert not (tmp_path / "logs" / "a.log").exists()
    logs.write("a", "first")
    logs.write("a", "second", err=True)
    logs.close()
    assert read_log(tmp_path / "logs", "a") == [("a", "first"), ("a", "second")]
    records = read_records(tmp_path / "logs", "a")
    assert [r.err for r in records] == [False, True]
    raw = (tmp_path / "logs" / "a.log").read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z out first", raw[0])
    assert raw[1].endswith(" err second")


def test_all_nodes_are_merged_in_write_order(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    order = [("b", "1"), ("a", "2"), ("b", "3"), ("c", "4"), ("a", "5")]
    for name, text in order:
        logs.write(name, text)
    logs.close()
    assert read_log(tmp_path, None) == order


def test_lines_are_visible_before_close(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    logs.write("a", "live")
    assert read_log(tmp_path, "a") == [("a", "live")]
    logs.close()


def test_the_lines_of_a_batch_reach_the_file_together_at_its_outermost_end(tmp_path: Path) -> None:
    """One read of a node's pipe is one batch: its lines cost one write to the file, not one each."""
    logs = LogFiles(tmp_path)
    with logs.batch():
        logs.write("a", "one")
        with logs.batch():
            logs.write("a", "two")
            logs.write("b", "other")
        assert read_log(tmp_path, None) == []  # (a run's `topo logs -f` sees them a read later)
    assert read_log(tmp_path, None) == [("a", "one"), ("a", "two"), ("b", "other")]
    logs.write("a", "after")  # outside a batch: in the file at once
    assert read_log(tmp_path, "a")[-1] == ("a", "after")
    logs.close()


def test_embedded_newline_becomes_two_records(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    logs.write("a", "one\ntwo")
    logs.close()
    assert read_log(tmp_path, "a") == [("a", "one"), ("a", "two")]


def test_text_survives_special_characters(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    logs.write("a", "tab\there\rcr caf\u00e9 \udcff")
    logs.close()
    [(_, text)] = read_log(tmp_path, "a")
    assert text.startswith("tab\there\rcr caf\u00e9 ")


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "sp ace"])
def test_unsafe_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        LogFiles(tmp_path).write(name, "x")


def test_reading_missing_logs_is_empty(tmp_path: Path) -> None:
    assert read_log(tmp_path / "nope", None) == []
    assert read_log(tmp_path, "nope") == []


def test_reading_an_unsafe_name_reads_nothing_outside(tmp_path: Path) -> None:
    (tmp_path / "secret.log").write_text("x\n")
    assert read_log(tmp_path / "logs", "../secret") == []


def test_foreign_lines_are_kept_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "x.log").write_text("hand written\n")
    assert read_log(tmp_path, None) == [("x", "hand written")]


def test_a_lone_surrogate_is_shown_and_logged_as_a_replacement_character(tmp_path: Path) -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, like a real stdout
    printer = Printer(stream, ["a"], color=False)
    printer.line("a", "value: \ud800")
    printer.system("topo says \udc80")
    stream.flush()
    shown = stream.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]
    assert "a    | value: \ufffd\n" in shown and "topo says \ufffd" in shown
    logs = LogFiles(tmp_path)
    logs.write("a", "value: \ud800")
    logs.close()
    assert (tmp_path / "a.log").read_text(encoding="utf-8").endswith(" out value: \ufffd\n")


def test_control_characters_are_shown_not_obeyed_on_a_terminal(tmp_path: Path) -> None:
    text = "plain\rOVER \x1b[2Jred\x07\x9b end\ttab"
    out = io.StringIO()
    Printer(out, ["a"], color=False, raw=False).line("a", text)
    assert out.getvalue() == "a    | plain^MOVER ^[[2Jred^G<9b> end\ttab\n"
    piped = io.StringIO()  # not a terminal: the bytes as written
    Printer(piped, ["a"], color=False).line("a", text)
    assert piped.getvalue() == f"a    | {text}\n"
    logs = LogFiles(tmp_path)
    logs.write("a", text)
    logs.close()
    assert (tmp_path / "a.log").read_bytes().decode("utf-8").endswith(f" out {text}\n")
