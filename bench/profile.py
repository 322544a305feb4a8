#!/usr/bin/env python3
"""Perfornium's marginal self cost per request by component, from two callgrind runs of different
lengths (bench/instructions.sh PROFILE=1): each function's instructions in the long run minus the
short run, divided by the extra requests, then summed by the component its symbol belongs to.
Writes Markdown to stdout. Usage: profile.py SHORT.callgrind LONG.callgrind LABEL"""
import collections
import re
import subprocess
import sys

# First match wins; the pattern is searched in "file:function".
COMPONENTS = [
    ("HDR recording", r"hdrhistogram"),
    ("metrics: samples, status counts, per-second timeline (perfornium::metrics)", r"perfornium::metrics"),
    ("hyper client (request encoding, response parsing, dispatch)", r"hyper::|hyper_util::|want::|http_body|httparse"),
    ("perfornium fast HTTP/1.1 path (perfornium::engine::fast)", r"perfornium::engine::fast"),
    ("http types: HeaderMap, Uri, Request (http crate)", r"\bhttp::"),
    ("tokio I/O driver and sockets (tokio::io/net, mio)", r"tokio::(io|net)|mio::|tokio::runtime::io"),
    ("tokio timers (tokio::time)", r"tokio::time|tokio::runtime::time"),
    ("tokio channels (tokio::sync)", r"tokio::sync"),
    ("tokio task scheduling (runtime, tasks, wakers)", r"tokio::"),
    ("futures channels", r"futures_channel|futures_util"),
    ("allocation (malloc/free/realloc)", r"malloc|free|realloc|__rust_alloc|__rust_dealloc|__rdl_|alloc::alloc|calloc|_int_"),
    ("memory copies (memcpy/memmove/memset)", r"mem(cpy|move|set|cmp)|__memcpy|__memset"),
    ("string/number formatting (core::fmt)", r"core::fmt|alloc::fmt|alloc::string"),
    ("bytes buffers", r"\bbytes::"),
    ("perfornium engine: VU loop, step send (perfornium::engine)", r"perfornium::engine"),
    ("clock reads (Instant::now, clock_gettime, vdso)", r"clock_gettime|Instant|vdso|timespec"),
    ("system-call wrappers (libc read/write/epoll)", r"epoll|\bread\b|\bwrite\b|\bsend|\brecv|syscall|__libc|libc\.so"),
    ("rest of perfornium", r"perfornium"),
    ("Rust std/core/alloc (collections, RawVec)", r"std::|core::|alloc::"),
]


def self_costs(path):
    """{function: self Ir} from callgrind_annotate."""
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", "--show-percs=no", path],
        capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = re.sub(r"\s*\[[^\]]*\]\s*$", "", m.group(2))
        costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def requests(path):
    """The request count saved beside a callgrind file by bench/instructions.sh."""
    return int(open(path + ".requests").read())


short, long_, label = sys.argv[1:]
a, b = self_costs(short), self_costs(long_)
extra = requests(long_) - requests(short)
by = collections.Counter()
top = collections.Counter()
for fn in set(a) | set(b):
    d = (b.get(fn, 0) - a.get(fn, 0)) / extra
    comp = next((c for c, pat in COMPONENTS if re.search(pat, fn)), "other")
    by[comp] += d
    top[fn] += d
total = sum(by.values())
print("# Where perfornium's instructions per request go\n")
print(f"Written by `PROFILE=1 bench/instructions.sh` (`bench/profile.py`), build: {label}. Marginal self cost "
      f"(callgrind Ir, user space) per request over {extra} extra requests, by the component each function "
      "belongs to (inlined code counts in the function it was inlined into).\n")
print("| component | Ir/request | share |\n|---|---|---|")
for comp, v in by.most_common():
    print(f"| {comp} | {v:.0f} | {100 * v / total:.1f}% |")
print(f"| **total** | **{total:.0f}** | |\n")
print("## The 30 costliest functions\n\n| function | Ir/request |\n|---|---|")
for fn, v in top.most_common(30):
    print(f"| `{fn[:140].replace('|', '¦')}` | {v:.0f} |")
