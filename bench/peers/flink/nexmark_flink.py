"""Runs Sluice's Nexmark queries in Apache Flink SQL, local mode, over Sluice's NDJSON files.

Called by run.sh (which picks the venv made by install.sh); `sluice-bench run --system flink`
calls run.sh. One process, one JVM: the Flink gateway JVM starts once ("start-up"), then for
each query:

1. a counting run (unless --no-count): `SELECT COUNT(*) FROM (<query>)`, whose final value
   is the net number of result rows (inserts minus retractions), the figure the harness
   checks. It also serves as the JVM/JIT warm-up for the timed runs that follow;
2. --warmup untimed runs into a blackhole sink;
3. --repetitions timed runs into a blackhole sink (as the Flink Nexmark benchmark does).

Each timed run prints one JSON object on its own line to stdout (and to --out, if given):
  {"query", "events", "rep", "wall_s", "result_rows", "startup_s", "job_overhead_s",
   "cpu_s", "peak_rss_mb", "parallelism", "flink_version"}
- wall_s: from job submission until the job has finished (`TableResult.wait()`): plan
  optimisation, code generation, start of the local mini cluster, reading and parsing the
  input files, the query, the sink. The JVM start-up is not included (see startup_s).
- job_overhead_s: wall time of a trivial job (one VALUES row into a blackhole) measured the
  same way; the fixed cost included in every wall_s.
- cpu_s / peak_rss_mb: user+system CPU seconds of the Flink JVM during the run, and its
  peak resident set (VmHWM, reset before each run), from /proc.
Everything else (logs) goes to stderr. Exit status 0 only if every run succeeded.
"""

import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES = ["q0", "q1", "q2", "q5", "q7", "q8", "q11"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"nexmark_flink: {msg}", file=sys.stderr, flush=True)


def fail(msg):
    log(msg)
    sys.exit(2)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="NDJSON file or directory of NDJSON files (sluice-bench generate --format ndjson)")
    p.add_argument("--queries", default=",".join(QUERIES), help="comma-separated, of " + ",".join(QUERIES))
    p.add_argument("--events", type=int, default=0, help="events in the input (0 = count the lines)")
    p.add_argument("--parallelism", type=int, default=os.cpu_count() or 1)
    p.add_argument("--warmup", type=int, default=0, help="untimed blackhole runs per query after the counting run")
    p.add_argument("--repetitions", type=int, default=3, help="timed blackhole runs per query")
    p.add_argument("--no-count", action="store_true", help="skip the counting run (result_rows = null)")
    p.add_argument("--explain", action="store_true", help="print each query's plan to stderr")
    p.add_argument("--out", help="also append the JSON lines to this file")
    return p.parse_args()


def input_files(path):
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*")) if os.path.isfile(f) and not os.path.basename(f).startswith((".", "_")))
    elif os.path.isfile(path):
        files = [path]
    else:
        fail(f"input `{path}` does not exist; generate it with `sluice-bench generate nexmark --format ndjson --out {path}`")
    if not files:
        fail(f"input directory `{path}` holds no files; generate it with `sluice-bench generate nexmark --format ndjson`")
    return files


def count_lines(files):
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            while True:
                block = fh.read(1 << 20)
                if not block:
                    break
                n += block.count(b"\n")
    return n


def read_sql(name, path=None):
    with open(os.path.join(HERE, "sql", name + ".sql")) as fh:
        text = fh.read()
    # Drop comment lines: execute_sql takes one statement at a time.
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    if path is not None:
        body = body.replace("${PATH}", path)
    return [s.strip() for s in body.split(";") if s.strip()]


def jvm_pid():
    """The Flink gateway JVM: the java process whose parent is this Python process."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if b"java" in fh.read().split(b"\0")[0]:
                    return int(entry)
        except (OSError, ValueError, IndexError):
            continue
    return None


def cpu_seconds(pid):
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


def reset_peak_rss(pid):
    if pid is None:
        return
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_mb(pid):
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def count_rows(t_env, select):
    """Net result rows of `select` (inserts minus retractions): the last value of a global
    COUNT(*) over it, collected to Python (a handful of updates, thanks to mini-batch)."""
    last = None
    with t_env.execute_sql(f"SELECT COUNT(*) FROM ({select})").collect() as rows:
        for row in rows:
            if row.get_row_kind().name in ("INSERT", "UPDATE_AFTER"):
                last = row[0]
    return 0 if last is None else int(last)


def main():
    args = parse_args()
    queries = [q.strip() for q in args.queries.split(",") if q.strip()]
    unknown = [q for q in queries if q not in QUERIES]
    if unknown:
        fail(f"unknown queries {unknown}; use some of {','.join(QUERIES)}")
    files = input_files(args.input)
    events = args.events or count_lines(files)
    if args.parallelism < 1:
        fail(f"--parallelism is {args.parallelism}; use at least 1")

    started = time.perf_counter()
    try:
        from pyflink.table import EnvironmentSettings, TableDescriptor, TableEnvironment
        from pyflink.version import __version__ as flink_version
    except ImportError as e:
        fail(f"pyflink is not importable ({e}); run bench/peers/flink/install.sh first")

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    # The Flink Nexmark benchmark's settings (nexmark-flink conf/sql-client-defaults.yaml and
    # flink-conf.yaml) that apply to a local run; no checkpoints (runs are shorter than its
    # 3 min interval) and the default heap state backend.
    for key, value in {
        "parallelism.default": str(args.parallelism),
        "pipeline.object-reuse": "true",
        "table.local-time-zone": "UTC",
        "table.exec.mini-batch.enabled": "true",
        "table.exec.mini-batch.allow-latency": "2 s",
        "table.exec.mini-batch.size": "50000",
        "table.optimizer.distinct-agg.split.enabled": "true",
    }.items():
        conf.set(key, value)
    path = args.input if os.path.isdir(args.input) else files[0]
    for stmt in read_sql("source", path):
        t_env.execute_sql(stmt)
    pid = jvm_pid()
    startup_s = time.perf_counter() - started
    log(f"Flink {flink_version} up in {startup_s:.1f} s (JVM pid {pid}), {events} events in {len(files)} file(s), parallelism {args.parallelism}")

    def timed(table, descriptor):
        reset_peak_rss(pid)
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        table.execute_insert(descriptor).wait()
        wall = time.perf_counter() - t0
        cpu1 = cpu_seconds(pid)
        cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        return wall, cpu, peak_rss_mb(pid)

    blackhole = TableDescriptor.for_connector("blackhole").build()
    overhead_s, _, _ = timed(t_env.sql_query("SELECT * FROM (VALUES (1)) AS t(x)"), blackhole)
    overhead_s, _, _ = timed(t_env.sql_query("SELECT * FROM (VALUES (1)) AS t(x)"), blackhole)
    log(f"job overhead {overhead_s:.2f} s")

    out = open(args.out, "a") if args.out else None
    for q in queries:
        (select,) = read_sql(q)
        table = t_env.sql_query(select)
        result_rows = None
        if args.explain:
            print(table.explain(), file=sys.stderr)
        if not args.no_count:
            t0 = time.perf_counter()
            result_rows = count_rows(t_env, select)
            log(f"{q}: {result_rows} result rows (counting run {time.perf_counter() - t0:.2f} s)")
        for _ in range(args.warmup):
            timed(table, blackhole)
        for rep in range(args.repetitions):
            wall, cpu, rss = timed(table, blackhole)
            row = {
                "query": q,
                "events": events,
                "rep": rep,
                "wall_s": wall,
                "result_rows": result_rows,
                "startup_s": startup_s,
                "job_overhead_s": overhead_s,
                "cpu_s": cpu,
                "peak_rss_mb": rss,
                "parallelism": args.parallelism,
                "flink_version": flink_version,
            }
            line = json.dumps(row)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()
            log(f"{q} rep {rep}: {wall:.2f} s, {events / wall:,.0f} events/s")
    if out:
        out.close()


if __name__ == "__main__":
    main()
