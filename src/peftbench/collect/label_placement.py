"""Text labels beside plotted points that never overlap each other, the points or the panel's edge.

Each label tries positions around its point, nearest first (right-above, right-below, left-above,
..., then farther out, with a thin leader line), and takes the first one that is free; a label with
no free position is left out, so the reader gets fewer labels rather than a pile of unreadable ones.
Colour and marker still identify every point.

Positions are tested in display pixels, so the figure's layout must be final first: `freeze_layout`
draws the figure once and switches its layout engine off (a later re-layout would move the panels
and could undo the check).
"""

from __future__ import annotations

from typing import Any

# (horizontal alignment, vertical alignment, x direction, y direction): the eight places around a point.
DIRECTIONS = (
    ("left", "bottom", 1, 1),
    ("left", "top", 1, -1),
    ("right", "bottom", -1, 1),
    ("right", "top", -1, -1),
    ("center", "bottom", 0, 1),
    ("center", "top", 0, -1),
    ("left", "center", 1, 0),
    ("right", "center", -1, 0),
)
DISTANCES = (6.0, 12.0, 20.0, 30.0)  # points from the marker's centre
MARKER_HALF_SIZE = 4.0  # points: the box around each marker that labels keep out of
LEADER = {"arrowstyle": "-", "color": "0.55", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 3}


def freeze_layout(figure: Any) -> Any:
    """Lay the figure out once and keep it so; returns the renderer label positions are measured with."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # a Figure made without pyplot has no canvas that can measure text
    figure.draw_without_rendering()
    figure.set_layout_engine("none")
    return canvas.get_renderer()


def place_labels(ax: Any, points: list[tuple[float, float, str]], renderer: Any, fontsize: float = 6) -> int:
    """Annotate each (x, y, text) where it overlaps nothing already there; returns how many were left out."""
    ax.set_xlim(ax.get_xlim())  # the limits as drawn stay: autoscaling later would move the points
    ax.set_ylim(ax.get_ylim())
    scale = ax.figure.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    taken = [_marker_box(ax, x, y, scale) for x, y, _ in points]
    left_out = 0
    for x, y, text in points:
        box = _first_free_place(ax, x, y, text, fontsize, renderer, frame, taken)
        if box is None:
            left_out += 1
        else:
            taken.append(box)
    return left_out


def _first_free_place(
    ax: Any, x: float, y: float, text: str, fontsize: float, renderer: Any, frame: Any, taken: list
) -> Any | None:
    from matplotlib.text import Text

    for distance in DISTANCES:
        for ha, va, dx, dy in DIRECTIONS:
            label = ax.annotate(
                text,
                (x, y),
                xytext=(dx * distance, dy * distance),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=fontsize,
                alpha=0.8,
                arrowprops=LEADER if distance > DISTANCES[0] else None,
            )
            label.update_positions(renderer)
            box = Text.get_window_extent(label, renderer)  # the text alone, not its leader line
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                return box
            label.remove()
    return None


def _marker_box(ax: Any, x: float, y: float, scale: float) -> Any:
    from matplotlib.transforms import Bbox

    px, py = ax.transData.transform((x, y))
    half = MARKER_HALF_SIZE * scale
    return Bbox.from_extents(px - half, py - half, px + half, py + half)
