"""The dashboard's sent/failed chart, laid out here and drawn by a template as inline SVG.

No JavaScript and no library: the numbers become rectangles in a viewBox
that scales with the card.
"""

from dataclasses import dataclass

from apps.delivery.selectors import DayCount

# About the card's width on a laptop, so the text is drawn near its own size.
WIDTH, HEIGHT = 1000, 200
# Room for the scale on the left and the day labels below.
LEFT, BOTTOM, TOP = 40, 26, 10
BAR_GAP = 3


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int


@dataclass(frozen=True)
class ChartDay:
    day: DayCount
    sent: Bar
    failed: Bar
    label_x: float
    # Every other day is labelled, so the labels never overlap.
    labelled: bool


@dataclass(frozen=True)
class DailyChart:
    days: list[ChartDay]
    scale_max: int
    total_sent: int
    total_failed: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    baseline: int = HEIGHT - BOTTOM
    middle_y: float = TOP + (HEIGHT - BOTTOM - TOP) / 2

    @property
    def empty(self) -> bool:
        return not (self.total_sent or self.total_failed)

    @property
    def scale_middle(self) -> int:
        return self.scale_max // 2


def _nice_max(value: int) -> int:
    """The scale's top: an even number (so its middle is whole) not below the highest bar."""
    value = max(value, 2)
    return value + value % 2


def daily_chart(counts: list[DayCount]) -> DailyChart:
    scale_max = _nice_max(max((max(c.sent, c.failed) for c in counts), default=0))
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(counts), 1)
    bar_width = (slot - 3 * BAR_GAP) / 2

    def bar(x: float, count: int) -> Bar:
        height = plot_height * count / scale_max
        # A day with some failures shows at least a sliver, however many were sent.
        if count:
            height = max(height, 2)
        return Bar(
            x=round(x, 1),
            y=round(HEIGHT - BOTTOM - height, 1),
            width=round(bar_width, 1),
            height=round(height, 1),
            count=count,
        )

    days = []
    last = len(counts) - 1
    for n, count in enumerate(counts):
        x = LEFT + n * slot + BAR_GAP
        days.append(
            ChartDay(
                day=count,
                sent=bar(x, count.sent),
                failed=bar(x + bar_width + BAR_GAP, count.failed),
                label_x=round(LEFT + (n + 0.5) * slot, 1),
                labelled=(last - n) % 2 == 0,
            )
        )
    return DailyChart(
        days=days,
        scale_max=scale_max,
        total_sent=sum(c.sent for c in counts),
        total_failed=sum(c.failed for c in counts),
    )
