#!/usr/bin/env bash
# Start-to-exit of `true` in a container: `nslab run`, runc, and util-linux `unshare … chroot`.
#
# nslab and runc make the same container: new PID, mount, UTS, IPC, network (only `lo`)
# and cgroup namespaces, pivot_root into one prepared busybox tree, /proc with runc's
# masked and read-only paths, /sys read-only, a minimal /dev (tmpfs, six nodes, devpts,
# /dev/shm), runc's three capabilities and no_new_privs, and a cgroup with three limits
# (memory 100M, CPU 0.5, pids 50) made before and removed after each run. The floor is the
# seeds' mini container: `unshare --pid --fork --mount --uts --ipc --net --mount-proc`
# then `chroot`, its cgroup made by hand as the seeds do.
#
# Usage: sudo bench/container.sh [RUNS]     (writes bench/RESULTS-container.md)
# Installs runc and busybox-static from Debian if absent; needs python3 (the timer).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-300}
[ "$(id -u)" = 0 ] || { echo "bench/container.sh needs root (namespaces, cgroups)" >&2; exit 3; }

command -v python3 >/dev/null || { echo "bench/container.sh needs python3 (its timer)" >&2; exit 3; }
missing=()
command -v runc >/dev/null || missing+=(runc)
file_is_static() { [ -x "$1" ] && ! grep -q "ld-linux" "$1" 2>/dev/null; }
file_is_static /bin/busybox || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${NSLAB:-}" ]; then
    cargo --quiet build-static   # as the README builds it: .cargo/config.toml
    NSLAB=$PWD/target/release/nslab
fi

WORK=$(mktemp -d /var/tmp/nslab-bench-XXXXXX)
CG_NAME=nslab-bench-$$
cleanup() {
    runc --root "$WORK/runc-state" delete -f nslab-bench >/dev/null 2>&1 || true
    for d in "${CG_DIRS[@]:-}"; do [ -n "$d" ] && rmdir "$d" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The root filesystem: static busybox and the two applets used.
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,proc,dev,sys,tmp,etc}
cp /bin/busybox "$ROOTFS/bin/"
ln -s busybox "$ROOTFS/bin/sh"
ln -s busybox "$ROOTFS/bin/true"

# runc: `runc spec`'s config.json, with what nslab does not do taken out (the read-only
# root, /dev/mqueue, /sys/fs/cgroup, the RLIMIT_NOFILE of 1024, a terminal) and what it
# does added: a cgroup namespace, hostname nslab, the three limits. The capabilities are
# nslab run's default (src/kernel/container/caps.rs: runc's own three). runc's device
# cgroup rules stay: runc always writes them, and they are its way of what nslab does with
# `nodev` on every mount but /dev.
CAPS='"CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"'
mkdir -p "$WORK/bundle" "$WORK/runc-state"
cat > "$WORK/bundle/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/true"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=xterm", "HOSTNAME=nslab"],
    "cwd": "/",
    "capabilities": {
      "bounding": [$CAPS], "effective": [$CAPS], "permitted": [$CAPS]
    },
    "noNewPrivileges": true
  },
  "root": {"path": "$ROOTFS", "readonly": false},
  "hostname": "nslab",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid","noexec","nodev","mode=1777","size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "cgroupsPath": "$CG_NAME-runc",
    "resources": {
      "devices": [{"allow": false, "access": "rwm"}],
      "memory": {"limit": 104857600},
      "cpu": {"quota": 50000, "period": 100000},
      "pids": {"limit": 50}
    },
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON

# The unshare line's cgroup, made by hand under this shell's own cgroup, as the seeds do.
CG_DIRS=()
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    own=$(sed -n 's/^0:://p' /proc/self/cgroup)
    dir=/sys/fs/cgroup${own%/}/$CG_NAME
    SETUP="mkdir $dir && echo 104857600 > $dir/memory.max && echo '50000 100000' > $dir/cpu.max && echo 50 > $dir/pids.max"
    JOIN="echo \$\$ > $dir/cgroup.procs"
    CG_DIRS=("$dir")
else
    dir_of() { # the v1 directory of this shell's cgroup for controller $1
        local line
        line=$(grep -E "^[0-9]+:([^:]*,)?$1(,[^:]*)?:" /proc/self/cgroup)
        echo "/sys/fs/cgroup/$1${line##*:}" | sed 's#/$##'
    }
    M=$(dir_of memory)/$CG_NAME C=$(dir_of cpu)/$CG_NAME P=$(dir_of pids)/$CG_NAME
    SETUP="mkdir $M $C $P && echo 104857600 > $M/memory.limit_in_bytes && echo 50000 > $C/cpu.cfs_quota_us && echo 50 > $P/pids.max"
    JOIN="echo \$\$ > $M/cgroup.procs && echo \$\$ > $C/cgroup.procs && echo \$\$ > $P/cgroup.procs"
    CG_DIRS=("$M" "$C" "$P")
fi
cat > "$WORK/unshare.sh" <<SH
$SETUP
unshare --pid --fork --mount --uts --ipc --net --mount-proc sh -c '$JOIN && exec chroot $ROOTFS /bin/true'
rc=\$?
rmdir ${CG_DIRS[*]}
exit \$rc
SH

NSLAB_CMD="$NSLAB run --rootfs $ROOTFS --memory 100M --cpus 0.5 --pids 50 -- /bin/true"
RUNC_CMD="runc --root $WORK/runc-state run --bundle $WORK/bundle nslab-bench"
UNSHARE_CMD="sh $WORK/unshare.sh"
# Each must work before it is timed.
for c in "$NSLAB_CMD" "$RUNC_CMD" "$UNSHARE_CMD"; do
    $c || { echo "failed: $c" >&2; exit 1; }
done

# Interleaved runs: this is a shared VM whose speed drifts over seconds, so the three lines
# take turns run by run (A B C, B C A, C A B, ...), and the medians are taken over all
# runs: every line sees the same slow and fast moments. The timer (python3) starts each
# with posix_spawn and times it to its exit, nothing else in between.
#
# Two ways of starting: back to back, and spaced (each run 50 ms after the previous one
# ended, the pause not timed). They differ for one kernel reason: a write to
# `cgroup.procs` takes a system-wide lock that first waits for an RCU grace period, unless
# a writer took it moments before (the kernel's rcu_sync then stays "passed" for a while).
# Back to back, runc and the unshare line find it warm; spaced, as when a person or a
# script doing other work starts containers, each pays the wait.
NAMES=("nslab run" "runc run" "unshare + chroot")
MODES=(back-to-back spaced)
WARMUP=3
for mode in "${MODES[@]}"; do
    python3 - "$mode" "$RUNS" "$WARMUP" "${NAMES[@]}" > "$WORK/summary-$mode.txt" \
        3<<<"$NSLAB_CMD" 4<<<"$RUNC_CMD" 5<<<"$UNSHARE_CMD" <<'PY'
import os, shlex, statistics, sys, time
mode, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = sys.argv[4:7]
cmds = [shlex.split(os.fdopen(fd).read()) for fd in (3, 4, 5)]
devnull = os.open("/dev/null", os.O_RDWR)
def once(argv):
    if mode == "spaced":
        time.sleep(0.05)
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ,
                          file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                        (os.POSIX_SPAWN_DUP2, devnull, 1)])
    _, status = os.waitpid(pid, 0)
    t = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {shlex.join(argv)}")
    return t * 1000
times = [[] for _ in names]
for r in range(warmup + runs):
    for k in range(3):
        i = (k + r) % 3
        t = once(cmds[i])
        if r >= warmup:
            times[i].append(t)
for name, t in zip(names, times):
    q = statistics.quantiles(t, n=4)
    print(f"{name}|{statistics.median(t):.2f}|{statistics.mean(t):.2f}|{statistics.stdev(t):.2f}|{min(t):.2f}|{q[0]:.2f}|{q[2]:.2f}|{max(t):.2f}|{len(t)}")
PY
done
field() { awk -F'|' -v n="$2" -v f="$3" '$1 == n { print $f }' "$WORK/summary-$1.txt"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r <= g) ? "met" : "NOT met" }'; }
MEDIANS=""
RATIOS=""
TABLES=""
for mode in "${MODES[@]}"; do
    NS=$(field "$mode" "nslab run" 2); RC=$(field "$mode" "runc run" 2); US=$(field "$mode" "unshare + chroot" 2)
    R_RUNC=$(ratio "$NS" "$RC"); R_UNSHARE=$(ratio "$NS" "$US")
    MEDIANS+="| $mode | $NS ms | $RC ms | $US ms |"$'\n'
    RATIOS+="- $mode: nslab / runc **$R_RUNC** (goal ≤ 0.15: $(verdict "$R_RUNC" 0.15)); nslab / unshare + chroot **$R_UNSHARE** (goal ≤ 1.6: $(verdict "$R_UNSHARE" 1.6))"$'\n'
    TABLES+=$'\n'"$mode, in ms:"$'\n\n'"| | median | mean ± σ | min | 25 % | 75 % | max | runs |"$'\n'"|---|---:|---:|---:|---:|---:|---:|---:|"$'\n'
    TABLES+=$(awk -F'|' '{ printf "| `%s` | %s | %s ± %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$WORK/summary-$mode.txt")$'\n'
done

# nslab's spaced median over its back-to-back one: what a moment of idleness costs it.
# Noise can make it nil or negative: then say so rather than print "-0.05 ms more".
IDLE_COST=$(awk -v a="$(field spaced "nslab run" 2)" -v b="$(field back-to-back "nslab run" 2)" \
    'BEGIN { d = a - b; if (d > 0) printf "%.2f ms more", d; else printf "no more than back to back" }')

cat > bench/RESULTS-container.md <<MD
# Container start-to-exit: \`nslab run\` vs runc vs unshare + chroot

\`/bin/true\` in a container, made alike by \`nslab run\` (its defaults) and runc (\`runc spec\`'s
config.json with nslab's differences, see \`bench/container.sh\`): new PID, mount, UTS, IPC,
network (only \`lo\`) and cgroup namespaces, pivot_root into a busybox root filesystem,
/proc with runc's masked and read-only paths, /sys read-only, a minimal /dev (tmpfs, six
nodes, devpts, /dev/shm), runc's three capabilities (CAP_AUDIT_WRITE, CAP_KILL,
CAP_NET_BIND_SERVICE) and no_new_privs, and a cgroup with memory 100M, CPU 0.5 and pids
50 (made before and removed after each run). The floor: \`unshare --pid --fork --mount
--uts --ipc --net --mount-proc\` then \`chroot ROOT /bin/true\`, with the same cgroup made by
hand (no masks, no /dev, no capabilities dropped). Timed by \`bench/container.sh\` (python3,
posix_spawn to exit): the three lines take turns run by run ($WARMUP warm-up turns), $RUNS
runs of each line for each way of starting, medians over them.

Machine: $(nproc) CPUs, kernel $(uname -r), cgroup $( [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo "v1 (hybrid)"),
$(runc --version | head -1), $(unshare --version), $(python3 --version), $(date -u +%Y-%m-%d);
load average just after (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg).

Medians:

| starts | \`nslab run\` | \`runc run\` | \`unshare … chroot\` (+ cgroup by hand) |
|---|---:|---:|---:|
$MEDIANS
$RATIOS
Back to back, each start follows the previous one at once; spaced, each starts 50 ms after
the previous one ended (the pause is not timed), as when a person or a script doing other
work starts containers. The difference is the kernel's: a \`cgroup.procs\` write waits for
an RCU grace period unless another writer took the same lock moments before, which back
to back is always the case. nslab never writes \`cgroup.procs\` on v1 (see below): spaced,
it pays only the slower start of a machine that was idle for a moment ($IDLE_COST here).
$TABLES
Where the time goes: \`nslab\` is one static executable (\`cargo build-static\`, as the
README builds it), so its start loads no shared library; it is position-independent
(static-pie), relocating itself at each start, since nslab runs as root.
\`nslab run\` makes PID 1 with one clone(2) that carries the namespace flags but the network's,
moves it to the other CPU at once (a new process is otherwise put on its parent's CPU and
waits there while the parent runs on), and while PID 1 builds its whole root, pivot_root
included, makes its network namespace (\`unshare(CLONE_NEWNET)\`, the dearest part of a start,
handed to PID 1 with pidfd_getfd) and the cgroup (on v1 a directory per hierarchy, under
nslab's shared \`nslab\` parent, made and removed when no other run uses it). PID 1 takes back
its CPUs before the command starts. PID 1 keeps a descriptor on each cgroup
filesystem it joins through, so only the joins and the execve wait for the cgroup. PID 1 joins on v1 by writing \`0\` to \`tasks\`: a move of the calling thread only, which the
kernel makes without the system-wide lock that a \`cgroup.procs\` write takes and waits an RCU
grace period for (7 to 20 ms on this machine). runc pays that wait (it writes
\`cgroup.procs\` in every v1 hierarchy mounted), the start of its Go runtime twice and its
re-exec as \`runc init\`; the unshare line pays it too (\`echo \$\$ > cgroup.procs\`), and three
execs (sh, unshare, chroot). On cgroup v2 there is no \`tasks\` file: nslab makes the cgroup
first and creates PID 1 inside it (clone3 with \`CLONE_INTO_CGROUP\`), so it never moves.
nslab's ledger is rewritten in place (no file created or renamed per entry), since on this
machine /run is ext4 and a rename costs a journal update. The machine is a shared 2-CPU VM
whose speed drifts: hence the interleaved runs and medians.
MD
cat bench/RESULTS-container.md
