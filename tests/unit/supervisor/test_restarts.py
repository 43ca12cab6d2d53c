from topo.file.model import Restart
from topo.supervisor.restarts import FIRST_DELAY, MAX_DELAY, History


def test_no_never_restarts_and_on_failure_only_after_a_failure() -> None:
    h = History(max_restarts=5, window=60)
    assert not h.decide(Restart.NO, failed=True, now=0).restart
    assert not h.decide(Restart.ON_FAILURE, failed=False, now=0).restart
    assert h.decide(Restart.ON_FAILURE, failed=True, now=0).restart
    assert h.decide(Restart.ALWAYS, failed=False, now=1).restart


def test_backoff_doubles_and_is_capped() -> None:
    h = History(max_restarts=100, window=1000)
    delays = [h.decide(Restart.ALWAYS, failed=True, now=i).delay for i in range(10)]
    assert delays[0] == FIRST_DELAY and delays[1] == 2 * FIRST_DELAY and delays[2] == 4 * FIRST_DELAY
    assert max(delays) == MAX_DELAY


def test_flapping_gives_up_and_the_window_forgets_old_restarts() -> None:
    h = History(max_restarts=3, window=10)
    assert all(h.decide(Restart.ON_FAILURE, failed=True, now=t).restart for t in (0, 1, 2))
    verdict = h.decide(Restart.ON_FAILURE, failed=True, now=3)
    assert not verdict.restart and verdict.gave_up and "giving up" in verdict.gave_up
    # long after, the old restarts no longer count
    later = h.decide(Restart.ON_FAILURE, failed=True, now=100)
    assert later.restart and later.delay == FIRST_DELAY
    assert h.total == 4
