"""Process memory for the benchmarks (imported by the ``bench_*.py`` scripts, not a benchmark itself)."""

from __future__ import annotations

import resource


def rss_mb(field: str = "VmHWM") -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) resident set size of this process in MB.

    Read from /proc/self/status (``VmHWM`` is reset at exec). ``ru_maxrss`` is the fallback, but on Linux a child
    started by fork/vfork + exec inherits the parent's high-water mark there, which would hide a small child's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
