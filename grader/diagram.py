"""Draw the network diagram of the notebook, source/backprop/network.png, with matplotlib."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

LAYER_SIZES = (4, 6, 6, 6, 1)
LAYER_LABELS = ("x", "ReLU", "ReLU", "ReLU", "y")
UNIT_RADIUS = 0.22
COLUMN_SPACING = 2.4


def unit_positions(size, column):
    """Return the (x, y) centres of one column of units, centred on y = 0."""
    x = column * COLUMN_SPACING
    return [(x, (size - 1) / 2 - row) for row in range(size)]


def draw_unit(axes, centre, is_relu):
    """Draw one unit; a hidden unit shows the shape of the ReLU inside its circle."""
    x, y = centre
    colour = "#dbe9f6" if is_relu else "#f6e7d7"
    axes.add_patch(plt.Circle(centre, UNIT_RADIUS, facecolor=colour, edgecolor="#303030", linewidth=1.2, zorder=3))
    if is_relu:
        half = UNIT_RADIUS * 0.6
        axes.plot([x - half, x, x + half], [y - half / 2, y - half / 2, y + half / 2], color="#303030", linewidth=1.2, zorder=4)


def draw_network(path):
    """Draw the 4-6-6-6-1 network with its layer labels and write it to `path` as PNG."""
    figure, axes = plt.subplots(figsize=(8, 4.4), dpi=100)
    columns = [unit_positions(size, column) for column, size in enumerate(LAYER_SIZES)]

    for column, (left, right) in enumerate(zip(columns, columns[1:])):
        for start in left:
            for end in right:
                axes.annotate(
                    "", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="#9a9a9a", linewidth=0.6, shrinkA=11, shrinkB=11),
                    zorder=1,
                )
        x = (column + 0.5) * COLUMN_SPACING
        axes.text(x, 3.35, f"W{column + 1},b{column + 1}", ha="center", fontsize=12)

    for column, units in enumerate(columns):
        is_hidden = 0 < column < len(columns) - 1
        for centre in units:
            draw_unit(axes, centre, is_hidden)
        axes.text(column * COLUMN_SPACING, -3.45, LAYER_LABELS[column], ha="center", fontsize=12, style="italic")

    axes.set_xlim(-0.6, (len(LAYER_SIZES) - 1) * COLUMN_SPACING + 0.6)
    axes.set_ylim(-3.8, 3.8)
    axes.set_aspect("equal")
    axes.axis("off")
    figure.savefig(path, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)


if __name__ == "__main__":
    draw_network(Path(__file__).resolve().parent.parent / "source" / "backprop" / "network.png")
