"""Failure reports of the end-to-end tests: log tails that keep every log readable."""

from devcluster import testkit


def test_a_retry_logged_again_and_again_is_one_line_and_a_count() -> None:
    lines = [
        "04:32:29,755 WARNING connect_failed 127.0.0.1:49001",
        "04:32:29,808 WARNING connect_failed 127.0.0.1:49001",
        "04:32:29,864 WARNING connect_failed 127.0.0.1:49001",
        "04:32:30,001 INFO ready",
    ]
    assert testkit.compact(lines) == [
        lines[0],
        "[… 2 more like the line above]",
        "04:32:30,001 INFO ready",
    ]


def test_lines_that_differ_in_words_are_all_kept() -> None:
    lines = ["1 started a", "2 started b", "3 started b", "4 stopped b"]
    more = "[… 1 more like the line above]"
    assert testkit.compact(lines) == ["1 started a", "2 started b", more, "4 stopped b"]


def test_a_run_at_the_end_is_counted() -> None:
    assert testkit.compact(["x 1", "x 2"]) == ["x 1", "[… 1 more like the line above]"]
    assert testkit.compact([]) == []
