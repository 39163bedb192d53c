"""Per-connection flow: changes released in rev order, the operation rate limit (fake clock), and the
send backlog of a client that does not read."""

from workbooks.domain.flow import ChangeSequencer, SendBacklog, TokenBucket
from workbooks.domain.values import Limits


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class ChangeSequencerTest:
    def test_offer_next_rev_released_at_once(self):
        seq = ChangeSequencer(5)
        assert seq.offer(6, "c6") == ["c6"]
        assert seq.rev == 6
        assert not seq.has_gap

    def test_offer_out_of_order_held_until_gap_filled(self):
        seq = ChangeSequencer(0)
        assert seq.offer(3, "c3") == []
        assert seq.offer(2, "c2") == []
        assert seq.has_gap
        assert seq.offer(1, "c1") == ["c1", "c2", "c3"]
        assert seq.rev == 3
        assert not seq.has_gap

    def test_offer_duplicate_or_old_rev_dropped(self):
        seq = ChangeSequencer(0)
        seq.offer(1, "c1")
        assert seq.offer(1, "again") == []
        assert seq.offer(0, "older") == []
        assert seq.rev == 1

    def test_offer_duplicate_of_held_rev_released_once(self):
        seq = ChangeSequencer(0)
        seq.offer(2, "c2")
        seq.offer(2, "c2")
        assert seq.offer(1, "c1") == ["c1", "c2"]

    def test_offer_gap_reported_while_later_revs_held(self):
        seq = ChangeSequencer(0)
        assert seq.offer(1, "c1") == ["c1"]
        assert seq.offer(4, "c4") == []
        assert seq.has_gap
        assert seq.rev == 1

    def test_skip_to_forgets_covered_and_releases_nothing(self):
        seq = ChangeSequencer(0)
        seq.offer(3, "c3")
        seq.offer(6, "c6")
        seq.skip_to(4)
        assert seq.rev == 4
        assert seq.held == {6: "c6"}
        assert seq.offer(5, "c5") == ["c5", "c6"]

    def test_skip_to_behind_current_rev_keeps_rev(self):
        seq = ChangeSequencer(10)
        seq.skip_to(3)
        assert seq.rev == 10
        assert seq.offer(11, "c11") == ["c11"]

    def test_overflowing_more_held_than_max(self):
        seq = ChangeSequencer(0, max_held=2)
        seq.offer(2, "c2")
        seq.offer(3, "c3")
        assert not seq.overflowing
        seq.offer(4, "c4")
        assert seq.overflowing
        seq.skip_to(4)
        assert not seq.overflowing
        assert not seq.has_gap


class TokenBucketTest:
    def test_take_sustained_default_rate_at_least_200_per_second_all_allowed(self):
        limits = Limits()
        clock = FakeClock()
        bucket = TokenBucket(rate=limits.ops_per_second, burst=limits.ops_burst, clock=clock)
        refused = 0
        for _ in range(200 * 60):  # a minute at 200 operations a second, evenly spaced
            clock.advance(1 / 200)
            refused += not bucket.take()
        assert refused == 0

    def test_take_burst_allowed_then_refused_without_time(self):
        clock = FakeClock()
        bucket = TokenBucket(rate=10, burst=5, clock=clock)
        assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]

    def test_take_refused_recovers_at_rate(self):
        clock = FakeClock()
        bucket = TokenBucket(rate=10, burst=5, clock=clock)
        for _ in range(5):
            bucket.take()
        assert not bucket.take()
        clock.advance(0.1)  # one token at 10 a second
        assert bucket.take()
        assert not bucket.take()

    def test_take_long_idle_refills_only_to_burst(self):
        clock = FakeClock()
        bucket = TokenBucket(rate=10, burst=3, clock=clock)
        clock.advance(3600)
        assert [bucket.take() for _ in range(4)] == [True, True, True, False]

    def test_take_faster_than_rate_eventually_refused(self):
        clock = FakeClock()
        bucket = TokenBucket(rate=100, burst=10, clock=clock)
        results = []
        for _ in range(100):
            clock.advance(1 / 200)  # twice the allowed rate
            results.append(bucket.take())
        assert results[:10] == [True] * 10
        assert results.count(False) > 0


class SendBacklogTest:
    def test_send_backlog_not_paused_nothing_counts(self):
        backlog = SendBacklog(limit=100)
        backlog.sending(1_000)
        assert backlog.queued == 0 and not backlog.overrun

    def test_send_backlog_paused_counts_until_over_the_limit(self):
        backlog = SendBacklog(limit=100)
        backlog.pauseProducing()
        backlog.sending(60)
        backlog.sending(40)
        assert not backlog.overrun
        backlog.sending(1)
        assert backlog.overrun

    def test_send_backlog_resumed_client_caught_up_count_restarts(self):
        backlog = SendBacklog(limit=100)
        backlog.pauseProducing()
        backlog.sending(500)
        backlog.resumeProducing()
        assert backlog.queued == 0 and not backlog.overrun
        backlog.sending(500)
        assert not backlog.overrun

    def test_send_backlog_stopped_transport_gone_counts_as_paused(self):
        backlog = SendBacklog(limit=10)
        backlog.stopProducing()
        backlog.sending(11)
        assert backlog.overrun
