#!/usr/bin/env bash
# Start-to-exit of `true` in a container: `nslab run`, runc, and util-linux `unshare … chroot`.
#
# Each line makes the same container: new PID, mount, UTS and IPC namespaces, a root
# filesystem (one prepared busybox tree, shared by all three), /proc for the new PID
# namespace, and a cgroup with three limits (memory 100M, CPU 0.5, pids 50) that is made
# before and removed after each run. nslab and runc use pivot_root; the unshare line is the
# seeds' mini container (`unshare --pid --fork --mount --uts --ipc --mount-proc` then
# `chroot`), with its cgroup made by hand as the seeds do.
#
# Usage: sudo bench/container.sh [RUNS]     (writes bench/RESULTS-container.md)
# Installs hyperfine, runc and busybox-static from Debian if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-300}
[ "$(id -u)" = 0 ] || { echo "bench/container.sh needs root (namespaces, cgroups)" >&2; exit 3; }

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
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

# runc: a bundle with the equivalent config.json (no network namespace, no extra mounts).
mkdir -p "$WORK/bundle" "$WORK/runc-state"
cat > "$WORK/bundle/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/true"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SYS_ADMIN"],
      "effective": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SYS_ADMIN"],
      "permitted": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SYS_ADMIN"]
    },
    "noNewPrivileges": false
  },
  "root": {"path": "$ROOTFS", "readonly": false},
  "hostname": "nslab",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}],
    "cgroupsPath": "$CG_NAME-runc",
    "resources": {
      "memory": {"limit": 104857600},
      "cpu": {"quota": 50000, "period": 100000},
      "pids": {"limit": 50}
    }
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
unshare --pid --fork --mount --uts --ipc --mount-proc sh -c '$JOIN && exec chroot $ROOTFS /bin/true'
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

# Interleaved rounds: this is a shared VM whose speed drifts over seconds, so each round
# times the three lines one after the other (in turn first), and the medians are taken
# over all rounds: every line sees the same slow and fast moments.
#
# Two ways of starting: back to back, and spaced (each run 50 ms after the previous one
# ended, the pause not timed). They differ for one kernel reason: a write to
# `cgroup.procs` takes a system-wide lock that first waits for an RCU grace period, unless
# a writer took it moments before (the kernel's rcu_sync then stays "passed" for a while).
# Back to back, runc and the unshare line find it warm; spaced, as when a person or a
# script doing other work starts containers, each pays the wait.
ROUNDS=${ROUNDS:-10}
PER=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
NAMES=("nslab run" "runc run" "unshare + chroot")
CMDS=("$NSLAB_CMD" "$RUNC_CMD" "$UNSHARE_CMD")
MODES=(back-to-back spaced)
for mode in "${MODES[@]}"; do
    prepare=()
    [ "$mode" = spaced ] && prepare=(--prepare "sleep 0.05")
    for r in $(seq "$ROUNDS"); do
        args=()
        for k in 0 1 2; do
            i=$(( (k + r) % 3 ))
            args+=(-n "${NAMES[$i]}" "${CMDS[$i]}")
        done
        hyperfine -N --warmup 3 "${prepare[@]}" --runs "$PER" \
            --export-json "$WORK/$mode-$r.json" "${args[@]}" >/dev/null
    done
    python3 - "$WORK" "$ROUNDS" "$mode" > "$WORK/summary-$mode.txt" <<'PY'
import json, statistics, sys
work, rounds, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times = {}
for r in range(1, rounds + 1):
    for res in json.load(open(f"{work}/{mode}-{r}.json"))["results"]:
        times.setdefault(res["command"], []).extend(res["times"])
for name in ["nslab run", "runc run", "unshare + chroot"]:
    t = [x * 1000 for x in times[name]]
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

\`/bin/true\` in a container with new PID, mount, UTS and IPC namespaces, a busybox root
filesystem, /proc for the new PID namespace and a cgroup with memory 100M, CPU 0.5 and
pids 50 (made before and removed after each run). Measured with hyperfine by
\`bench/container.sh\`: for each way of starting, $ROUNDS interleaved rounds of $PER runs of
each line (3 warm-up runs each), medians over all $((ROUNDS * PER)) runs of a line.

Machine: $(nproc) CPUs, kernel $(uname -r), cgroup $( [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo "v1 (hybrid)"),
$(runc --version | head -1), $(hyperfine --version), $(unshare --version), $(date -u +%Y-%m-%d).

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
\`nslab run\` makes PID 1 with one clone(2) that carries the namespace flags, and creates the cgroup (on v1 a directory per
hierarchy, under nslab's shared \`nslab\` parent, made and removed when no other run uses
it) while PID 1 builds its whole root, pivot_root included, on another CPU (it moves off
nslab's CPU first and back before the command starts: a new process is otherwise often put
on its parent's CPU, and the two take turns there). PID 1 keeps a descriptor on each cgroup
filesystem it joins through, so only the joins and the execve wait for the cgroup. PID 1 joins on v1 by writing \`0\` to \`tasks\`: a move of the calling thread only, which the
kernel makes without the system-wide lock that a \`cgroup.procs\` write takes and waits an RCU
grace period for (7 to 20 ms on this machine). runc pays that wait (it writes
\`cgroup.procs\` in every v1 hierarchy mounted), the start of its Go runtime twice and its
re-exec as \`runc init\`; the unshare line pays it too (\`echo \$\$ > cgroup.procs\`), and three
execs (sh, unshare, chroot). On cgroup v2 there is no \`tasks\` file: nslab makes the cgroup
first and creates PID 1 inside it (clone3 with \`CLONE_INTO_CGROUP\`), so it never moves.
nslab's ledger is rewritten in place (no file created or renamed per entry), since on this
machine /run is ext4 and a rename costs a journal update. The machine is a shared 2-CPU VM
whose speed drifts: hence the interleaved rounds and medians.
MD
cat bench/RESULTS-container.md
