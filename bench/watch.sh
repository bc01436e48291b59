#!/usr/bin/env bash
# Benchmark (not a test): `nslab check --watch` as a learner meets it.
#   1. From a learner's action to the new verdict on nslab's output: a memory limit written
#      to a learner's cgroup (check 3 watches it: inotify), a link set up or down in a
#      learner's network namespace (check 2 watches it: rtnetlink inside that namespace),
#      and a process written into a learner's CPU cgroup, then ended (check 4: inotify on
#      cgroup.procs, then the kernel's process events). Each action alternates two values,
#      spaced 300-500 ms, and is timed from just before the write (or the `ip` command, or
#      the kill) to the JSON line (`--watch --json`) that shows it. Check 4 measures the
#      cgroup's CPU share over 1.5 s each time it judges: its figure includes that window.
#   2. An idle watch: nslab's own CPU time (utime + stime of /proc/PID/stat) over a window
#      in which nothing changes, as a share of one CPU.
# Needs root. Writes bench/RESULTS-watch.md. Goals: median <= 100 ms; idle <= 1% of a CPU.
#
#   sudo bench/watch.sh              # 40 actions of each kind, 20 s idle
#   ACTIONS=100 IDLE=60 sudo bench/watch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ACTIONS=${ACTIONS:-40}
IDLE=${IDLE:-20}
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 3; }

cargo --quiet build-static   # as the README builds it: .cargo/config.toml
NSLAB=$PWD/target/release/nslab
WORK=$(mktemp -d /tmp/nslabt-bench.XXXXXX)
export NSLAB_RUN_DIR=$WORK/runs NSLAB_PROGRESS=$WORK/progress.json

# The learner's objects this script makes, removed on every exit.
if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
  CG=/sys/fs/cgroup/memory${own%/}/wbench-$$ LIMIT_FILE=memory.limit_in_bytes
  own=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3}' /proc/self/cgroup)
  # The cpu hierarchy's mount (cpu, or cpu,cpuacct where the two are mounted together).
  cpu_mnt=$(awk '$0 ~ / - cgroup / && $NF ~ /(^|,)cpu(,|$)/ {print $5; exit}' /proc/self/mountinfo)
  CPU_CG=$cpu_mnt${own%/}/wbench-cpu-$$
  QUOTA_FILE=cpu.cfs_quota_us QUOTA=50000
else
  CG=/sys/fs/cgroup/wbench-$$ LIMIT_FILE=memory.max
  CPU_CG=/sys/fs/cgroup/wbench-cpu-$$ QUOTA_FILE=cpu.max QUOTA="50000 100000"
  for c in memory cpu; do
    grep -qw $c /sys/fs/cgroup/cgroup.subtree_control || echo +$c > /sys/fs/cgroup/cgroup.subtree_control
  done
fi
A=wbench-a-$$ B=wbench-b-$$
cleanup() {
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rmdir "$CG" 2>/dev/null || true
  # The sleep the join case moved here is ended by the script before it exits.
  rmdir "$CPU_CG" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM HUP
mkdir "$CG"
echo 30M > "$CG/$LIMIT_FILE"
mkdir "$CPU_CG"
echo "$QUOTA" > "$CPU_CG/$QUOTA_FILE"
# Lesson 2's exercise without the second address: check 2 judges it, never passes, and
# the link state is one of its facts.
ip netns add "$A"; ip netns add "$B"
ip link add wbench-va type veth peer name wbench-vb
ip link set wbench-va netns "$A"; ip link set wbench-vb netns "$B"
ip -n "$A" addr add 10.231.0.1/24 dev wbench-va
ip -n "$A" link set wbench-va up; ip -n "$B" link set wbench-vb up

python3 - "$NSLAB" "$CG" "$LIMIT_FILE" "$A" "$ACTIONS" "$IDLE" "$WORK/results" "$CPU_CG" <<'EOF'
import atexit, json, os, random, statistics, subprocess, sys, threading, time, queue
nslab, cg, limit_file, ns_a, actions, idle, out, cpu_cg = sys.argv[1:]
actions, idle = int(actions), int(idle)

def watch(args):
    p = subprocess.Popen([nslab, "check", *args, "--watch", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # However this script ends, the watch it started ends with it.
    atexit.register(lambda: p.poll() is None and p.terminate())
    q = queue.Queue()
    def read():
        for line in p.stdout:
            q.put((time.monotonic(), json.loads(line)))
    threading.Thread(target=read, daemon=True).start()
    return p, q

def fact(report, name):
    return next((f["value"] for f in report["facts"] if f["name"] == name), None)

def until(q, pred, limit=10.0):
    end = time.monotonic() + limit
    while True:
        t, r = q.get(timeout=max(0.01, end - time.monotonic()))
        if pred(r):
            return t

def run(args, act, seen, measured=None):
    p, q = watch(args)
    until(q, lambda r: not r.get("measuring"))  # the first full verdict
    times, full = [], []
    for i in range(actions):
        time.sleep(random.uniform(0.3, 0.5))
        value = i % 2
        t0 = time.monotonic()
        act(value)
        t1 = until(q, lambda r: seen(r, value))
        times.append((t1 - t0) * 1000)
        # Check 4 shows a join at once and measures the share after: until that verdict too.
        if measured and measured(value):
            t2 = until(q, lambda r: not r.get("measuring"))
            full.append((t2 - t0) * 1000)
    return (p, times, full) if measured else (p, times)

def set_limit(v):
    with open(os.path.join(cg, limit_file), "w") as f:
        f.write("40M" if v == 0 else "30M")

def set_link(v):
    subprocess.run(["ip", "-n", ns_a, "link", "set", "wbench-va", "down" if v == 0 else "up"], check=True)

p, cgroup_ms = run(["3", "--cgroup", cg], set_limit,
                   lambda r, v: (fact(r, "memory limit") == "30 MB") == (v == 1))
# Idle: nothing changes; nslab's own CPU time over the window.
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
c0, w0 = cpu(p.pid), time.monotonic()
time.sleep(idle)
idle_share = (cpu(p.pid) - c0) / (time.monotonic() - w0) * 100
p.terminate(); p.wait()
p, link_ms = run(["2"], set_link,
                 lambda r, v: (fact(r, "link state") == "both UP") == (v == 1))
p.terminate(); p.wait()

# A process joining the CPU cgroup (written into cgroup.procs), then ending.
joined = []
def end_joined():
    for s in joined:
        s.kill(); s.wait()
    joined.clear()
atexit.register(end_joined)
def join_or_end(v):
    if v == 0:
        s = subprocess.Popen(["sleep", "1000"])
        joined.append(s)
        with open(os.path.join(cpu_cg, "cgroup.procs"), "w") as f:
            f.write(str(s.pid))
    else:
        end_joined()
p, join_ms, join_full_ms = run(["4", "--cgroup", cpu_cg], join_or_end,
                 lambda r, v: (fact(r, "processes inside") == "at least one") == (v == 0),
                 measured=lambda v: v == 0)
p.terminate(); p.wait()

def line(name, ms):
    ms = sorted(ms)
    return (f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | "
            f"{ms[int(len(ms) * 0.9) - 1]:.1f} | {ms[-1]:.1f} |")
with open(out, "w") as f:
    f.write("| action | n | median ms | p90 ms | max ms |\n|---|---|---|---|---|\n")
    f.write(line("memory limit written (check 3)", cgroup_ms) + "\n")
    f.write(line("link set up/down in the learner's namespace (check 2)", link_ms) + "\n")
    f.write(line("a process joining a CPU cgroup, then ending (check 4: shown at once)", join_ms) + "\n")
    f.write(line("a process joining, until check 4's measured verdict (its 1.5 s sample)", join_full_ms) + "\n")
    f.write(f"\nIdle watch (check 3), {idle} s: {idle_share:.2f}% of one CPU\n")
EOF

{
  echo "# check --watch: from a learner's action to the new verdict"
  echo
  echo "$(date -u +%Y-%m-%d), $(uname -r), $(nproc) CPUs; \`sudo bench/watch.sh\` (ACTIONS=$ACTIONS IDLE=$IDLE)."
  echo
  cat "$WORK/results"
} > bench/RESULTS-watch.md
cat bench/RESULTS-watch.md
