//! Root filesystem tests: ELF headers read, libraries resolved, applet paths kept inside.

use super::build::is_inside_path;
use super::elf::parse_elf;
use super::host::{is_static_elf, libraries_needed};
use super::*;

#[test]
fn reads_a_dynamic_program() {
    // /bin/ls on every Debian-like host: dynamically linked against libc.
    let data = std::fs::read("/bin/ls").expect("/bin/ls");
    let info = parse_elf(&data).unwrap();
    let interp = info.interp.expect("ls has a program interpreter");
    assert!(interp.contains("ld-linux"), "{interp}");
    assert!(
        info.needed.iter().any(|n| n.starts_with("libc.so")),
        "{:?}",
        info.needed
    );
    assert!(!is_static_elf(Path::new("/bin/ls")));
}

#[test]
fn resolves_libraries_transitively() {
    let libs = libraries_needed(Path::new("/bin/ls")).unwrap();
    assert!(
        libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
        "{libs:?}"
    );
    assert!(
        libs.iter()
            .any(|l| l.to_string_lossy().contains("ld-linux")),
        "{libs:?}"
    );
    assert!(libs.iter().all(|l| l.exists()));
}

#[test]
fn static_busybox_is_static() {
    if !Path::new(BUSYBOX).exists() {
        crate::testing::skip(&format!(
            "{BUSYBOX} absent (test.sh installs busybox-static)"
        ));
        return;
    }
    let info = parse_elf(&std::fs::read(BUSYBOX).unwrap()).unwrap();
    // Debian's `busybox` (not -static) is dynamic: then this reports it so.
    assert_eq!(is_static_elf(Path::new(BUSYBOX)), info.interp.is_none());
}

#[test]
fn rejects_non_elf_and_truncated() {
    assert!(parse_elf(b"#!/bin/sh\necho hi\n").is_err());
    let data = std::fs::read("/bin/ls").unwrap();
    assert!(parse_elf(&data[..0x30]).is_err());
    let mut be = data[..64].to_vec();
    be[5] = 2;
    assert!(parse_elf(&be).is_err());
}

#[test]
fn hostile_offsets_give_an_error_not_a_panic() {
    let data = std::fs::read("/bin/ls").unwrap();
    // Every aligned 8-byte word of the header and program headers, set to values that
    // wrap or point past the file.
    for at in (0..data.len().min(0x400)).step_by(8) {
        for v in [
            u64::MAX,
            u64::MAX - 7,
            1 << 63,
            data.len() as u64,
            0x4000_0000,
        ] {
            let mut d = data.clone();
            d[at..at + 8].copy_from_slice(&v.to_le_bytes());
            let _ = parse_elf(&d);
        }
    }
}

#[test]
fn applet_paths_stay_inside_the_root() {
    for ok in ["bin/ls", "usr/sbin/ip", "sbin/init"] {
        assert!(is_inside_path(ok), "{ok}");
    }
    for bad in [
        "",
        "/etc/passwd",
        "../etc/passwd",
        "bin/../../etc",
        "/",
        "./bin/x",
    ] {
        assert!(!is_inside_path(bad), "{bad}");
    }
}
