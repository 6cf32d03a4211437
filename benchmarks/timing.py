"""Wall times of repeated calls, and the peak resident memory of this process."""

from __future__ import annotations

import time
from pathlib import Path


def repeat(fn, runs):
    """Wall times in seconds of ``runs`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def alternating(fns, runs):
    """Wall times in seconds of ``runs`` calls of each of ``fns`` (by name), taken in turn after one untimed
    warm-up call of each, so that the machine's drift hits all of them alike."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def budgeted(fn, runs, budget):
    """Wall times in seconds of calls of ``fn`` within a time budget (s).

    A first call that takes at least ``budget`` is the only measurement (first-use costs are a small part of it);
    a shorter one is an untimed warm-up, and timed calls follow until there are ``runs`` of them or they have taken
    ``budget`` in all.
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first >= budget:
        return [first]
    times = []
    while len(times) < runs and sum(times) < budget:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def peak_rss_mib():
    """Peak resident memory of this process so far (``VmHWM``, MiB): its own, where ``ru_maxrss`` of a child on
    Linux starts from the parent's resident size at the fork."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
