#!/usr/bin/env bash
# Every test nslab has, on a fresh machine: installs what is missing, then formatting, lints,
# unit and snapshot tests, the root integration tests (real namespaces and cgroups; they
# skip with a reason when not run as root, and as root a test that cannot run fails), the
# book, and the pure cgroup v2 VM suite.
#
#   ./test.sh            everything
#   NSLAB_SKIP_VM=1 ./test.sh    everything but the VM suite
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n==> %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }

# --- what the tests need beyond the Rust toolchain -----------------------------------
missing=()
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
command -v ps >/dev/null || missing+=(procps)
command -v chroot >/dev/null || missing+=(coreutils)
[ -x /bin/busybox ] || missing+=(busybox-static)
# Bonus 5b's tests do the exercise with iptables (iptables-nft) and inspect with nft.
command -v iptables >/dev/null || missing+=(iptables)
command -v nft >/dev/null || missing+=(nftables)
# A closed terminal is tested in a real one.
command -v tmux >/dev/null || missing+=(tmux)
# The README's build links the C library in statically, and is checked with readelf.
[ "$(cc -print-file-name=libc.a 2>/dev/null)" != libc.a ] || missing+=(libc6-dev)
command -v readelf >/dev/null || missing+=(binutils)
if ((${#missing[@]})); then
  if is_root; then
    say "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 3
  fi
fi
if ! command -v mdbook >/dev/null; then
  say "installing mdbook"
  cargo install mdbook --version 0.4.48 --locked --no-default-features --features search
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# --- the Rust suite -----------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --check
say "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
if is_root; then
  # Root and the tools above are here: a test that would skip for want of them fails.
  export NSLAB_TESTS_STRICT=1
else
  echo "note: not root: the tests that create namespaces and cgroups will skip (run ./test.sh as root for all)"
fi
say "cargo test"
cargo test
say "cargo build-static (the README's build: one executable, no shared libraries, position-independent)"
cargo build-static
if readelf -l target/release/nslab | grep -q INTERP; then
  echo "target/release/nslab asks for a dynamic loader: it is not static" >&2
  exit 1
fi
# nslab runs as root: its own code is placed at random too (static-pie: ELF type DYN
# without a dynamic loader).
if ! readelf -h target/release/nslab | grep -qE 'Type:[[:space:]]+DYN'; then
  echo "target/release/nslab is linked at a fixed address: it must be position-independent" >&2
  exit 1
fi

# --- the book ---------------------------------------------------------------------------
say "mdbook build book"
mdbook build book

# --- pure cgroup v2, in a VM --------------------------------------------------------------
if [ -f tests/vm/run.sh ] && [ -z "${NSLAB_SKIP_VM:-}" ]; then
  # Both guest layouts: cgroups laid out by systemd, and everything in the root cgroup.
  say "VM suite (pure cgroup v2, systemd and bare layouts)"
  NSLAB_VM_LAYOUT="${NSLAB_VM_LAYOUT:-systemd bare}" bash tests/vm/run.sh
fi
say "all tests passed"
