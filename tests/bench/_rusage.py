"""Runs a command under getrusage(RUSAGE_CHILDREN) and writes its figures as JSON.

Usage: /usr/bin/python3 tests/bench/_rusage.py OUT.json -- CMD ARGS...
Writes {"wall_s", "cpu_s", "user_s", "sys_s", "max_rss_mb", "rc"} to OUT.json, where the CPU
times cover the command and every descendant it waited for (RUSAGE_CHILDREN), and max_rss_mb is
the peak RSS of the largest single process in that tree (Linux ru_maxrss), i.e. peak RSS per
worker. The command's own stdout/stderr pass through.
"""
import json
import resource
import subprocess
import sys
import time

out = sys.argv[1]
assert sys.argv[2] == "--", "usage: _rusage.py OUT.json -- CMD ARGS..."
cmd = sys.argv[3:]
t0 = time.monotonic()
rc = subprocess.call(cmd)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "w") as f:
    json.dump({
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "max_rss_mb": ru.ru_maxrss / 1024,
        "rc": rc,
    }, f)
sys.exit(rc)
