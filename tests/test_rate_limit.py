"""The per-person rate limit counts each Slack message once, and forgets after its window."""

from bot.core.rate_limit import RateLimiter


def test_retries_and_double_delivery_of_one_message_count_once() -> None:
    limiter = RateLimiter(limit=2, window=600)
    assert limiter.allow("U1", "1.1", now=0)
    assert limiter.allow("U1", "1.1", now=1)  # Slack's retry of the same message
    assert limiter.allow("U1", "1.1", now=2)  # the message event for the same mention
    assert limiter.allow("U1", "2.1", now=3)
    assert not limiter.allow("U1", "3.1", now=4)  # a third message within the window
    assert limiter.allow("U2", "3.2", now=4)  # other people are counted on their own


def test_the_window_slides() -> None:
    limiter = RateLimiter(limit=1, window=10)
    assert limiter.allow("U1", "1.1", now=0)
    assert not limiter.allow("U1", "2.1", now=5)
    assert limiter.allow("U1", "3.1", now=10)


def test_zero_means_no_limit() -> None:
    limiter = RateLimiter(limit=0, window=10)
    assert all(limiter.allow("U1", f"{i}.1", now=0) for i in range(100))
