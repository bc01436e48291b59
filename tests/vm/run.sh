#!/usr/bin/env bash
# nslab's pure cgroup v2 suite: boots a small Linux VM under qemu (cgroup_no_v1=all) and runs
# every scenario of tests/vm/scenarios.txt inside it, in one boot.
#
#   bash tests/vm/run.sh                 # everything
#   bash tests/vm/run.sh lesson1 sanity  # only scenarios whose name matches one of these regexes
#
# Installs what it lacks with apt-get (qemu-system-x86, busybox-static, iproute2, util-linux…),
# fetches the Debian cloud kernel into a cache without installing it, builds nslab, packs an
# initramfs and boots it. See tests/vm/README.md for the variables that tune it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

kernel_pkg=${NSLAB_VM_KERNEL_PKG:-linux-image-cloud-amd64}
cache=${NSLAB_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nslab-vm}
work=${NSLAB_VM_WORK:-$repo/target/vm}
mem=${NSLAB_VM_MEM:-512M}
smp=${NSLAB_VM_SMP:-2}
layouts=${NSLAB_VM_LAYOUT:-systemd}
default_timeout=${NSLAB_VM_TIMEOUT:-180}
scenarios=${NSLAB_VM_SCENARIOS:-$here/scenarios.txt}
verbose=${NSLAB_VM_VERBOSE:-0}
# Modules the lessons need that this kernel builds as modules (their dependencies follow).
# nf_tables, nft_chain_nat and nft_masq: the NAT of `nslab run --net` and lesson 5 step e
# (the guest has no modprobe for the kernel to load them on demand).
modules=${NSLAB_VM_MODULES:-veth bridge overlay nf_tables nft_chain_nat nft_masq}

say() { printf 'vm: %s\n' "$*"; }
die() { printf 'vm: error: %s\n' "$*" >&2; exit 3; }

for layout in $layouts; do
  case "$layout" in systemd | bare) ;; *) die "NSLAB_VM_LAYOUT must be systemd, bare or both ('systemd bare'), not '$layout'" ;; esac
done
if [[ $(id -u) != 0 ]]; then
  # Like the other root tests: say why and skip, do not fail.
  say "skipped: needs root (apt-get installs, the initramfs's /dev/console node): sudo bash tests/vm/run.sh"
  echo "vm: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported (qemu-system-x86 with a Debian amd64 kernel)"
[[ -r $scenarios ]] || die "no scenario file at $scenarios"

# ---------------------------------------------------------------- host tools
# Each real tool the guest gets, with the Debian package that ships it. Real tools (not busybox
# applets) because learners type these and their options differ from busybox's.
declare -A tool_pkg=(
  [qemu-system-x86_64]=qemu-system-x86
  [busybox]=busybox-static
  [bash]=bash
  [ip]=iproute2
  [nft]=nftables
  [unshare]=util-linux
  [nsenter]=util-linux
  [lsns]=util-linux
  [setpriv]=util-linux
  [ipcmk]=util-linux
  [ipcs]=util-linux
  [ipcrm]=util-linux
  [mount]=mount
  [umount]=mount
  [timeout]=coreutils
  [stat]=coreutils
  [comm]=coreutils
  [tail]=coreutils
  [head]=coreutils
  [pgrep]=procps
  [chroot]=coreutils
  [ps]=procps
  [objcopy]=binutils
  [readelf]=binutils
)
missing=()
for t in "${!tool_pkg[@]}"; do
  command -v "$t" >/dev/null 2>&1 || missing+=("${tool_pkg[$t]}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi
for t in "${!tool_pkg[@]}"; do command -v "$t" >/dev/null || die "$t still missing after installing ${tool_pkg[$t]}"; done

# ---------------------------------------------------------------- kernel (cached, not installed)
# The meta package names the versioned image; `apt-get download` + `dpkg-deb -x` keeps the
# host's /boot and package database untouched.
kdir=$(find "$cache" -maxdepth 1 -type d -name 'linux-image-*' 2>/dev/null | sort -V | tail -n1 || true)
if [[ -z $kdir || ! -f $kdir/.complete || ${NSLAB_VM_REFRESH:-0} == 1 ]]; then
  mkdir -p "$cache"
  versioned=$(apt-cache depends "$kernel_pkg" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}' || true)
  if [[ -z $versioned ]]; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    versioned=$(apt-cache depends "$kernel_pkg" | awk '/Depends: linux-image-/ {print $2; exit}')
  fi
  [[ -n $versioned ]] || die "cannot tell which kernel image $kernel_pkg depends on"
  kdir=$cache/$versioned
  if [[ ! -f $kdir/.complete ]]; then
    say "fetching $versioned into $cache"
    rm -rf "$kdir" && mkdir -p "$kdir"
    # _apt cannot write into root's cache dir; download from a world-writable scratch dir.
    dl=$(mktemp -d) && chmod 777 "$dl"
    (cd "$dl" && apt-get download -qq "$versioned" >/dev/null 2>&1) || die "apt-get download $versioned failed"
    dpkg-deb -x "$dl"/"$versioned"_*.deb "$kdir" && rm -rf "$dl"
    touch "$kdir/.complete"
  fi
fi
vmlinuz=$(find "$kdir/boot" -name 'vmlinuz-*' | head -n1)
kver=${vmlinuz##*/vmlinuz-}
[[ -f $vmlinuz ]] || die "no vmlinuz in $kdir"

# ---------------------------------------------------------------- nslab build
mkdir -p "$work"
# By default the ordinary dev build (the host suite already compiled it) with its shared libraries
# copied like any other tool's; NSLAB_VM_STATIC=1 builds a static binary instead.
cd "$repo"
if [[ ${NSLAB_VM_STATIC:-0} == 1 ]]; then
  say "building nslab (static)"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" cargo build --target x86_64-unknown-linux-gnu \
    >"$work/build.log" 2>&1 || { cat "$work/build.log"; die "cargo build failed"; }
  nslab_bin=$repo/target/x86_64-unknown-linux-gnu/debug/nslab
  ! readelf -l "$nslab_bin" | grep -q INTERP || die "$nslab_bin is not static"
else
  say "building nslab"
  cargo build >"$work/build.log" 2>&1 || { cat "$work/build.log"; die "cargo build failed"; }
  nslab_bin=$repo/target/debug/nslab
fi
[[ -x $nslab_bin ]] || die "no nslab binary at $nslab_bin"

# ---------------------------------------------------------------- scenarios
# Format (one per line, '#' comments): NAME | EXPECTED-EXIT | TIMEOUT-S or - | COMMAND…
# Validated here so a typo fails fast on the host instead of inside the guest.
mkdir -p "$work"
selected=$work/scenarios.txt
: >"$selected"
declare -A seen=()
names=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
  lineno=$((lineno + 1))
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  IFS='|' read -r name expect tmo cmd <<<"$line"
  name=$(echo "$name" | xargs) expect=$(echo "$expect" | xargs) tmo=$(echo "$tmo" | xargs)
  cmd=${cmd#"${cmd%%[![:space:]]*}"}
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "$scenarios:$lineno: bad scenario name '$name'"
  [[ $expect =~ ^[0-9]+$ ]] || die "$scenarios:$lineno: expected exit '$expect' is not a number"
  [[ $tmo == - || $tmo =~ ^[0-9]+$ ]] || die "$scenarios:$lineno: timeout '$tmo' is not seconds or -"
  [[ -n $cmd ]] || die "$scenarios:$lineno: no command"
  [[ -z ${seen[$name]:-} ]] || die "$scenarios:$lineno: scenario '$name' declared twice"
  seen[$name]=1
  if (($#)); then
    keep=0
    for pat in "$@"; do [[ $name =~ $pat ]] && keep=1; done
    ((keep)) || continue
  fi
  [[ $tmo == - ]] && tmo=$default_timeout
  printf '%s|%s|%s|%s\n' "$name" "$expect" "$tmo" "$cmd" >>"$selected"
  names+=("$name")
done <"$scenarios"
((${#names[@]})) || die "no scenario matches: $*"

# ---------------------------------------------------------------- initramfs
root=$work/root
rm -rf "$root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,usr/libexec/busybox,proc,sys,dev,tmp,run,etc,newroot,root,mnt,var/tmp}
# Merged /usr like Debian, so the paths ldd reports exist as they do on the host.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
# The kernel opens /dev/console for init's stdio before anything is mounted.
mknod -m 600 "$root/dev/console" c 5 1

# copy_elf SRC: put SRC and every shared library it loads at the same path in the guest.
copy_elf() {
  local src=$1 dst lib
  dst=$root$(readlink -f "$(dirname "$src")")/$(basename "$src")
  [[ -e $dst ]] && return 0
  mkdir -p "$(dirname "$dst")" && cp -L "$src" "$dst"
  # ldd prints "name => /path (addr)" or "/path (addr)"; the vdso has no path.
  while read -r lib; do
    [[ -n $lib ]] && copy_elf "$lib"
  done < <(ldd "$src" 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) {print $i; break}}')
}

busybox=$(command -v busybox)
copy_elf "$busybox"
for t in bash ip nft unshare nsenter lsns setpriv ipcmk ipcs ipcrm mount umount timeout chroot stat comm head tail ps pgrep; do copy_elf "$(command -v "$t")"; done
# Busybox supplies the rest (cat, sleep, grep…) from a directory at the END of the guest PATH,
# so the real tools above always win.
for a in $("$busybox" --list); do ln -s "$(readlink -f "$busybox")" "$root/usr/libexec/busybox/$a"; done
ln -s bash "$root/usr/bin/sh" 2>/dev/null || true
copy_elf "$nslab_bin"
# Without its debug info the initramfs is a third of the size, and loads faster.
objcopy --strip-debug "$nslab_bin" "$root/usr/local/bin/nslab"
rm -f "$root$(readlink -f "$(dirname "$nslab_bin")")/nslab"

# Kernel modules with their dependencies, listed dependencies first for insmod.
mods_src=$kdir/lib/modules/$kver
mod_order=()
declare -A mod_done=()
add_module() {
  local m=$1 f dep
  [[ -n ${mod_done[$m]:-} ]] && return 0
  mod_done[$m]=1
  f=$(find "$mods_src" -name "$m.ko" -o -name "$m.ko.*" | head -n1)
  [[ -n $f ]] || die "module $m not found in $mods_src"
  [[ $f == *.ko ]] || die "$f is compressed; busybox insmod needs plain .ko"
  for dep in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dep"; done
  mkdir -p "$root/lib/modules/$kver"
  cp "$f" "$root/lib/modules/$kver/"
  mod_order+=("$m")
}
for m in $modules; do add_module "$m"; done
printf '%s\n' "${mod_order[@]}" >"$root/etc/nslab-vm-modules"

cp "$here/guest/init" "$root/init"
cp "$here/guest/stage2" "$root/usr/libexec/vm-stage2"
cp "$here/guest/wait-for" "$here/guest/hint-is" "$here/guest/ns-init" "$here/guest/enable-at-root" "$here/guest/says" "$root/usr/local/bin/"
chmod 755 "$root/init" "$root/usr/libexec/vm-stage2" "$root"/usr/local/bin/*
cp "$selected" "$root/etc/nslab-vm-scenarios"
echo "v2guest" >"$root/etc/hostname"
# ada (UID 1000) is the learner of the lessons done without root (lesson 8), through setpriv.
printf 'root:x:0:0:root:/root:/bin/bash\nada:x:1000:1000:ada:/tmp:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nada:x:1000:\nnogroup:x:65534:\n' >"$root/etc/group"

initrd=$work/initrd.cpio
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "$busybox" cpio -o -H newc >"$initrd" 2>/dev/null)
say "initramfs $(du -h "$initrd" | cut -f1) for kernel $kver, ${#names[@]} scenario(s)"

# ---------------------------------------------------------------- boot
# KVM only where the CPU offers virtualisation; /dev/kvm alone is not enough (it exists here but
# cannot run a stock kernel).
if [[ -w /dev/kvm ]] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then
  accel=(-accel kvm -cpu host)
else
  accel=(-accel tcg -cpu max)
fi
# The guest times each scenario out itself; this only bounds a guest that hangs or dies: the
# sum of the scenarios' timeouts, at most NSLAB_VM_BOOT_TIMEOUT (20 min) so CI is not held up.
total_timeout=$((120 + $(awk -F'|' '{s += $3 + 15} END {print s}' "$selected")))
((total_timeout <= ${NSLAB_VM_BOOT_TIMEOUT:-1200})) || total_timeout=${NSLAB_VM_BOOT_TIMEOUT:-1200}

# boot LAYOUT: one guest running every selected scenario; adds to passed/failed/failed_names.
passed=0 failed=0
failed_names=()
boot() {
  local layout=$1 console=$work/console-$1.log
  local cmdline="console=ttyS0 quiet panic=-1 cgroup_no_v1=all nslab.layout=$layout"
  say "booting, cgroup layout $layout (${accel[1]}, $smp CPUs, $mem; console in $console)"
  local start qemu_status n r rc want tag env_ok=1
  start=$(date +%s)

  # Markers are printed live so a CI log shows progress; the whole console is kept in $console.
  set +e
  # --foreground keeps qemu in our process group, so Ctrl-C (or a CI runner's group kill) reaches it.
  timeout --foreground -k 10 "$total_timeout" qemu-system-x86_64 -machine pc "${accel[@]}" -m "$mem" -smp "$smp" \
    -nodefaults -no-reboot -nographic -serial stdio -monitor none \
    -kernel "$vmlinuz" -initrd "$initrd" -append "$cmdline" </dev/null 2>&1 |
    sed -u 's/\r//g; s/\x1bc//g; s/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$console" | {
    leaked=
    while IFS= read -r l; do
      if [[ $verbose == 1 ]]; then
        printf '  | %s\n' "$l"
      elif [[ $l == NSLAB-VM-INFO* ]]; then
        printf 'vm: guest %s\n' "${l#NSLAB-VM-INFO }"
      elif [[ $l == NSLAB-VM-RESULT* ]]; then
        read -r _ n rc want secs _ <<<"$l"
        st=PASS why=
        [[ $rc == "$want" ]] || st=FAIL
        [[ " $leaked " == *" $n "* ]] && st=FAIL why=", left nslab objects behind"
        printf 'vm: %s %s (exit %s, expected %s, %ss%s)\n' "$st" "$n" "$rc" "$want" "$secs" "$why"
      elif [[ $l == NSLAB-VM-LEAK* ]]; then
        printf 'vm: %s\n' "${l#NSLAB-VM-}"
        read -r _ n _ <<<"$l"
        leaked+=" $n"
      fi
    done
  }
  qemu_status=${PIPESTATUS[0]}
  set -e
  say "guest ran $(($(date +%s) - start)) s (qemu exit $qemu_status)"

  # ---------------------------------------------------------------- verdict
  # qemu's own exit status says nothing about the guest: the console markers do.
  tag=
  [[ $layouts == *" "* ]] && tag="@$layout"
  for n in "${names[@]}"; do
    r=$(grep -E "^NSLAB-VM-RESULT $n " "$console" | tail -n1 || true)
    if [[ -z $r ]]; then
      failed=$((failed + 1)) failed_names+=("$n$tag(no result: guest died or timed out)")
      continue
    fi
    read -r _ _ rc want _ <<<"$r"
    if [[ $rc == "$want" ]] && ! grep -qE "^NSLAB-VM-LEAK $n " "$console"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1)) failed_names+=("$n$tag")
    fi
  done
  grep -q '^NSLAB-VM-INFO .*cgroupfs=cgroup2fs' "$console" || env_ok=0
  if ((failed > failed_before)) || ((!env_ok)); then
    echo "---------------------------------------------------------------- guest console ($layout)"
    cat "$console"
    echo "---------------------------------------------------------------- end of guest console"
    ((env_ok)) || { say "the guest did not report a pure cgroup v2 hierarchy (cgroupfs=cgroup2fs)"; failed=$((failed + 1)) failed_names+=("guest$tag(not pure v2)"); }
  fi
}

for layout in $layouts; do
  failed_before=$failed
  boot "$layout"
done
((failed)) && say "failed: ${failed_names[*]}"
echo "vm: $passed passed, $failed failed"
((failed == 0)) || exit 1
