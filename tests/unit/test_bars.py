"""Block charts as text: scale, levels, loss marks where the failure happened, cold starts clipped."""

from __future__ import annotations

from widgets.bars import LOSS_MARK, Point, bar_chart, nice_ceiling, scale_top, sparkline


def test_axis_tops_are_round_numbers_a_reader_takes_in_at_once() -> None:
    assert [nice_ceiling(v) for v in (0.0034, 0.004, 8.9, 10.0, 11.0, 161.0, 190.0)] == \
        [0.005, 0.005, 10.0, 10.0, 20.0, 200.0, 200.0]
    assert nice_ceiling(0) == 1.0


def test_bar_chart_puts_failures_on_the_axis_where_they_happened() -> None:
    points = [Point(4.0), Point(None), Point(8.0), Point(None), Point(2.0)]
    chart = bar_chart(points, width=8, height=2)
    assert chart.top == 10.0 and chart.labels[0].strip() == "10.0"
    assert chart.axis == "───" + "─" + LOSS_MARK + "─" + LOSS_MARK + "─"  # right-aligned: newest at the edge
    assert chart.loss_columns == [4, 6]
    # 8 ms of 10 on two rows of 8 levels: 13 eighths -> a full bottom cell and 5/8 above it.
    assert chart.rows[1][5] == "█" and chart.rows[0][5] == "▅"
    # A failed column has no bar; a tiny value still shows one level, never a gap.
    assert chart.rows[0][4] == " " and chart.rows[1][4] == " "
    assert bar_chart([Point(0.0001), Point(10.0)], 2, 2).rows[1][0] == "▁"


def test_a_cold_start_is_clipped_not_scaled_to() -> None:
    points = [Point(190.0, cold=True), *[Point(4.0 + i % 2) for i in range(9)]]
    assert scale_top(points) == 5.0  # the 190 ms first request does not flatten the warm ones
    chart = bar_chart(points, 10, 3)
    assert chart.cold_columns == [0] and chart.rows[0][0] == "█"


def test_sparkline_marks_loss_and_keeps_its_width() -> None:
    line = sparkline([Point(1.0), Point(None), Point(2.0)], 6)
    assert len(line) == 6 and line.startswith("   ") and line[4] == LOSS_MARK and line[5] == "█"


def test_a_chart_with_nothing_measured_labels_no_scale() -> None:
    chart = bar_chart([Point(None)] * 4, 4, 3)
    assert all(not label.strip() for label in chart.labels) and chart.axis == LOSS_MARK * 4
