"""A generated corpus for when no real data is at hand: human-readable dates → ISO dates.

The classic attention teaching task: the model must learn to look at the day, month and year
wherever they appear in the source. Deterministic for a given seed.
"""

import datetime
import random

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
FORMATS = [
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    lambda d: f"{d.strftime('%A')}, {MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{d.day}.{d.month}.{str(d.year)[2:]}",
    lambda d: f"the {d.day} of {MONTHS[d.month - 1].lower()} {d.year}",
]


def generate_dates(count, seed=0):
    """Return `(sources, targets)`: `count` human-readable dates and their ISO forms."""
    rng = random.Random(seed)
    start = datetime.date(1950, 1, 1).toordinal()
    end = datetime.date(2049, 12, 31).toordinal()
    sources, targets = [], []
    for _ in range(count):
        day = datetime.date.fromordinal(rng.randint(start, end))
        sources.append(rng.choice(FORMATS)(day))
        targets.append(day.isoformat())
    return sources, targets
