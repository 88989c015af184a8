"""The SVG charts: thinning keeps the shape, gaps stay gaps, every chart says how much it drew."""

from __future__ import annotations

import re

import numpy as np

from research.svg import Dots, Line, chart, nice_ticks, thin


def test_thin_keeps_every_spike_and_bounds_the_points():
    x = np.linspace(0, 100, 100_000)
    y = np.sin(x)
    y[54_321] = 50.0  # one spike among 100k points
    y[12_345] = -50.0

    tx, ty = thin(x, y, 100)

    assert len(tx) <= 4 * 101
    assert ty.max() == 50.0 and ty.min() == -50.0
    assert (np.diff(tx) >= 0).all()


def test_short_series_are_drawn_as_they_are():
    x = np.arange(10.0)
    tx, ty = thin(x, x * 2, 100)
    assert tx.tolist() == x.tolist() and ty.tolist() == (x * 2).tolist()


def test_a_gap_breaks_the_line_and_points_are_counted():
    y = np.asarray([1.0, 2.0, np.nan, 3.0, 4.0])
    html = chart("t", [Line("a", np.arange(5.0), y, "#000")], x_axis="linear", uid="t")

    d = re.search(r'<path d="([^"]+)"', html).group(1)
    assert d.count("M") == 2 and d.count("L") == 2
    assert 'data-points="4"' in html


def test_markers_links_and_escaping():
    html = chart(
        "a <b> & c",
        [],
        [Dots("d", np.asarray([1.0, 2.0]), np.asarray([3.0, 4.0]), "#f00", links=["t/1.html", "t/2.html"])],
        x_axis="linear",
        uid="m",
    )
    assert html.count("<circle") == 2 and '<a href="t/2.html">' in html
    assert "a &lt;b&gt; &amp; c" in html and 'data-points="2"' in html


def test_an_empty_chart_says_it_drew_nothing():
    html = chart("empty", [Line("a", np.zeros(0), np.zeros(0), "#000")], uid="e")
    assert 'data-points="0"' in html


def test_nice_ticks():
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(-0.3, 0.3, 3) == [-0.2, 0.0, 0.2]
