"""``topo logs``' choices (topo.cli.logview): --since, --tail, following, which run and which
node, on log directories written here with LogFiles (no run, no process)."""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from topo.cli import logview
from topo.errors import UsageError
from topo.supervisor.output import LogFiles

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.timezone.utc).timestamp()


# -- --since ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1.5h", 5400), ("1h0m5s", 3605),
])
def test_since_a_duration_is_that_long_before_now(text: str, seconds: float) -> None:
    expected = datetime.datetime.fromtimestamp(NOW - seconds, datetime.timezone.utc)
    assert logview.since_stamp(text, now=NOW) == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_since_a_stamp_has_the_log_files_fixed_width() -> None:
    assert logview.since_stamp("2026-12-03T12:00:00Z") == "2026-12-03T12:00:00.000000Z"
    assert logview.since_stamp("2026-12-03T13:00:00+01:00") == "2026-12-03T12:00:00.000000Z"
    assert logview.since_stamp("2026-12-03T12:00:00.25z") == "2026-12-03T12:00:00.250000Z"


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("paris")
def test_since_a_time_without_a_zone_is_local_time() -> None:
    assert logview.since_stamp("2026-12-03T12:00:00") == "2026-12-03T11:00:00.000000Z"
    assert logview.since_stamp("2026-12-03 12:00") == "2026-12-03T11:00:00.000000Z"
    assert logview.since_stamp("2026-12-03") == "2026-12-02T23:00:00.000000Z"  # its midnight


@pytest.mark.parametrize("text", ["10", "1x", "m", "-5m", "yesterday", "", "2026-13-01", "1h 30m"])
def test_since_refuses_what_is_neither_a_duration_nor_a_time(text: str) -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        logview.since_stamp(text, now=NOW)


def test_since_longer_ago_than_any_log_is_every_line() -> None:
    assert logview.since_stamp("99999999d", now=NOW) == ""


# -- which lines ------------------------------------------------------------------------


def stamped(directory: Path, lines: list[tuple[str, str, str]]) -> None:
    """Log files with given stamps (``HH:MM:SS``) instead of the clock's."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, hms, text in lines:
        with open(directory / f"{name}.log", "a") as f:
            f.write(f"2026-12-03T{hms}.000000Z out {text}\n")


LINES = [("a", "12:00:01", "a1"), ("b", "12:00:02", "b1"), ("a", "12:00:03", "a2"),
         ("topo", "12:00:04", "t1"), ("b", "12:00:05", "b2"), ("a", "12:00:06", "a3")]


def texts(directory: Path, node: str | None = None, **options: object) -> list[str]:
    return [r.text for r in logview.records(directory, node, **options)]  # type: ignore[arg-type]


def test_tail_is_the_last_lines_of_the_merged_log(tmp_path: Path) -> None:
    stamped(tmp_path, LINES)
    assert texts(tmp_path) == ["a1", "b1", "a2", "t1", "b2", "a3"]
    assert texts(tmp_path, tail=3) == ["t1", "b2", "a3"]
    assert texts(tmp_path, "a", tail=2) == ["a2", "a3"]
    assert texts(tmp_path, tail=0) == []
    assert texts(tmp_path, tail=100) == texts(tmp_path)


def test_since_keeps_the_lines_stamped_from_then_on(tmp_path: Path) -> None:
    stamped(tmp_path, LINES)
    assert texts(tmp_path, since="2026-12-03T12:00:04.000000Z") == ["t1", "b2", "a3"]
    assert texts(tmp_path, since="2026-12-03T12:00:02.000000Z", tail=2) == ["b2", "a3"]
    assert texts(tmp_path, "b", since="2026-12-03T12:00:03.000000Z", tail=5) == ["b2"]
    assert texts(tmp_path, since="2027-01-01T00:00:00.000000Z") == []


def test_a_replicated_nodes_name_covers_its_instances(tmp_path: Path) -> None:
    stamped(tmp_path, [("w.0", "12:00:01", "x"), ("w.1", "12:00:02", "y"), ("w.0", "12:00:03", "z")])
    assert [(r.name, r.text) for r in logview.records(tmp_path, "w", tail=2)] == [("w.1", "y"), ("w.0", "z")]


@pytest.mark.parametrize("block", [1, 3, 7, 64, 1 << 16])
def test_tail_reads_the_end_of_a_file_whatever_the_block(tmp_path: Path, block: int) -> None:
    path = tmp_path / "f.log"
    path.write_bytes(b"one\ntwo\n\nfour\npartial")
    assert logview._start_of_last_lines(path, 1, block) == len(b"one\ntwo\n\n")
    assert logview._start_of_last_lines(path, 2, block) == len(b"one\ntwo\n")
    assert logview._start_of_last_lines(path, 3, block) == len(b"one\n")
    assert logview._start_of_last_lines(path, 4, block) == 0
    assert logview._start_of_last_lines(path, 9, block) == 0
    assert logview._start_of_last_lines(path, 0, block) == len(b"one\ntwo\n\nfour\n")
    path.write_bytes(b"one\ntwo\n")
    assert logview._start_of_last_lines(path, 1, block) == len(b"one\n")
    assert logview._start_of_last_lines(tmp_path / "none.log", 1, block) == 0


def test_tail_of_a_large_log_reads_only_its_end(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    for i in range(20000):
        logs.write("a", f"line {i}")
    logs.close()
    assert texts(tmp_path, tail=2) == ["line 19998", "line 19999"]
    assert logview._start_of_last_lines(tmp_path / "a.log", 2) > (tmp_path / "a.log").stat().st_size - 100


def test_follow_after_a_tail_gives_only_new_lines(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    for text in ("old1", "old2", "old3"):
        logs.write("a", text)
    stops = iter([False, False, True])
    seen = []
    for record in logview.records(tmp_path, None, tail=1, follow=True, stop=lambda: next(stops), interval=0):
        seen.append(record.text)
        if record.text == "old3":
            logs.write("a", "new")
            logs.write("b", "first of b")  # a file that appears while following
    logs.close()
    assert seen == ["old3", "new", "first of b"]


def test_following_ends_when_the_reader_has_gone(tmp_path: Path) -> None:
    stamped(tmp_path, LINES)
    following = logview.records(tmp_path, None, tail=1, follow=True, stop=lambda: False,
                                reader_gone=lambda: True, interval=0)
    assert next(following).text == "a3"
    with pytest.raises(BrokenPipeError):
        next(following)


# -- which run, which node ---------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOPO_HOME", str(tmp_path))
    (tmp_path / "logs").mkdir(mode=0o700)
    return tmp_path / "logs"


def finished(home: Path, topology: str, run_id: str, nodes: list[str] | None,
             lines: list[tuple[str, str, str]] = LINES) -> Path:
    directory = home / topology / run_id
    stamped(directory, lines)
    if nodes is not None:
        (directory / "outcome.json").write_text(json.dumps(
            {"code": 0, "reason": "every node returned", "nodes": {n: "returned" for n in nodes}}))
    return directory


def test_without_a_topology_the_last_run_of_the_only_topology(home: Path) -> None:
    finished(home, "t", "20261203-110000-aaaaaa", ["a", "b"])
    newest = finished(home, "t", "20261203-120000-bbbbbb", ["a", "b"])
    source, node = logview.resolve(None, None)
    assert (source.directory, source.identity, node) == (newest, "t/20261203-120000-bbbbbb", None)
    assert not source.running()


def test_without_a_topology_several_are_listed(home: Path) -> None:
    finished(home, "t", "20261203-110000-aaaaaa", ["a"])
    finished(home, "u", "20261203-120000-bbbbbb", ["a"])
    with pytest.raises(UsageError, match=r"logs of 2 topologies: t \(last run 20261203-110000-aaaaaa\), "
                                         r"u \(last run 20261203-120000-bbbbbb\); name one: topo logs TOPOLOGY"):
        logview.resolve(None, None)


def test_without_any_log_it_says_how_to_make_one(home: Path) -> None:
    with pytest.raises(UsageError, match="no run has logs yet"):
        logview.resolve(None, None)


def test_a_lone_argument_may_be_a_node_of_the_only_run(home: Path) -> None:
    finished(home, "t", "20261203-110000-aaaaaa", ["a", "b", "w.0", "w.1"])
    assert logview.resolve("b", None)[1] == "b"
    assert logview.resolve("w", None)[1] == "w"  # a replicated node's name
    assert logview.resolve("t", None)[1] is None  # a topology first
    with pytest.raises(UsageError, match=r"the only run, t/20261203-110000-aaaaaa, has no node 'bb'; "
                                         r"did you mean 'b'\?"):
        logview.resolve("bb", None)


def test_a_topology_name_with_a_typo_gets_a_suggestion(home: Path) -> None:
    finished(home, "longrun", "20261203-110000-aaaaaa", ["a"])
    finished(home, "other", "20261203-110000-aaaaaa", ["a"])
    with pytest.raises(UsageError, match=r"no logs of topology 'longrn'; did you mean 'longrun'\?"):
        logview.resolve("longrn", None)


def test_a_node_that_has_not_printed_is_no_error(home: Path) -> None:
    directory = finished(home, "t", "20261203-110000-aaaaaa", ["a", "b", "quiet"])
    source = logview.Source("t/20261203-110000-aaaaaa", directory)
    assert logview.check_node(source, "quiet") == "quiet printed nothing"
    assert logview.check_node(source, "a") is None


def test_an_unknown_node_is_an_error_with_a_suggestion(home: Path) -> None:
    directory = finished(home, "t", "20261203-110000-aaaaaa", ["alpha", "worker.0", "worker.1"])
    source = logview.Source("t/20261203-110000-aaaaaa", directory)
    with pytest.raises(UsageError, match=r"no node 'wroker' in t/20261203-110000-aaaaaa; did you mean "
                                         r"'worker'\? its nodes: alpha, worker.0, worker.1"):
        logview.check_node(source, "wroker")
    with pytest.raises(UsageError, match="is not a node name"):
        logview.check_node(source, "../x")


def test_a_run_without_an_outcome_knows_its_nodes_by_their_files(home: Path) -> None:
    directory = finished(home, "t", "20261203-110000-aaaaaa", None)
    source = logview.Source("t/20261203-110000-aaaaaa", directory)
    with pytest.raises(UsageError, match="no log of node 'c' in t/20261203-110000-aaaaaa; there are: a, b"):
        logview.check_node(source, "c")


def test_a_run_without_any_line_yet(home: Path) -> None:
    directory = home / "t" / "20261203-110000-aaaaaa"
    directory.mkdir(parents=True)
    assert logview.check_node(logview.Source("t/x", directory), None) == "the run printed nothing"


def test_the_log_directory_of_a_topology_is_found_by_run_id_end(home: Path) -> None:
    finished(home, "t", "20261203-110000-aaaaaa", ["a"])
    finished(home, "t", "20261203-120000-bbbbbb", ["a"])
    assert logview.named_run("t/aaaaaa").identity == "t/20261203-110000-aaaaaa"
    assert logview.named_run("t").identity == "t/20261203-120000-bbbbbb"
    with pytest.raises(UsageError, match="no logs of topology 't/cccccc'"):
        logview.named_run("t/cccccc")
    assert os.listdir(home / "t")  # nothing was cleaned: logs stay


# -- following (what `topo logs -f` and a detached run's followers read) ----------------


def test_follow_yields_existing_then_new_lines_and_drains_at_stop(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    logs.write("a", "old")
    deadline = time.monotonic() + 10
    done = False

    def stop() -> bool:
        return done or time.monotonic() > deadline

    lines = ((r.name, r.text) for r in logview.records(tmp_path, None, follow=True, stop=stop, interval=0.01))
    assert next(lines) == ("a", "old")
    logs.write("b", "new file")  # a file that appears is picked up
    assert next(lines) == ("b", "new file")
    logs.write("a", "appended")
    assert next(lines) == ("a", "appended")
    logs.write("a", "written just before stop")
    done = True
    assert list(lines) == [("a", "written just before stop")]
    logs.close()


def test_follow_from_now_waits_for_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    LogFiles(tmp_path).write("a", "before")
    deadline = time.monotonic() + 10
    polls = 0

    def stop() -> bool:
        nonlocal polls
        polls += 1
        if polls == 3:  # a partial line, then let the follower read it once
            with open(path, "a") as f:
                f.write("2024-01-01T00:00:00.000000Z out par")
        if polls == 5:
            with open(path, "a") as f:
                f.write("tial\n")
        return time.monotonic() > deadline

    lines = logview.records(tmp_path, "a", tail=0, follow=True, stop=stop, interval=0.01)
    assert next(lines).text == "partial"
    assert polls >= 5


def test_follow_of_a_missing_directory_stops_promptly(tmp_path: Path) -> None:
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    assert list(logview.records(tmp_path / "missing", None, follow=True, stop=stop, interval=0.001)) == []
