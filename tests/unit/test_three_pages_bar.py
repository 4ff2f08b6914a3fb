"""The three-page room's frame-rate bar (``tests.support.three_pages.expected_fps``): what a
fast sender's own drop excuses, and what it does not."""

from __future__ import annotations

from tests.support.three_pages import Sent, expected_fps

WINDOW = 30.0


def test_a_sender_that_encoded_fewer_frames_on_a_busy_host_lowers_the_bar_in_proportion():
    assert expected_fps(30.0, Sent(30.0, 0.0), Sent(25.0, 0.0), WINDOW) == 25.0


def test_a_sender_held_back_by_bandwidth_gets_no_allowance():
    # over a tenth of the window held by its estimate: the unit's doing, compared unscaled
    assert expected_fps(30.0, Sent(30.0, 0.0), Sent(20.0, 3.5), WINDOW) == 30.0
    assert expected_fps(30.0, Sent(30.0, 0.0), Sent(20.0, 2.5), WINDOW) == 20.0


def test_a_sender_that_sped_up_does_not_raise_the_bar_past_the_rate_alone():
    assert expected_fps(28.0, Sent(27.0, 0.0), Sent(30.0, 0.0), WINDOW) == 28.0


def test_unknown_figures_leave_the_bar_unscaled():
    assert expected_fps(30.0, None, Sent(10.0, 0.0), WINDOW) == 30.0
    assert expected_fps(30.0, Sent(30.0, 0.0), None, WINDOW) == 30.0
    assert expected_fps(30.0, Sent(0.0, 0.0), Sent(10.0, 0.0), WINDOW) == 30.0
