//! Every parser of kernel text and kernel bytes, given any input: none may panic, and the
//! ones a process can steer (its name in `/proc/PID/stat` and in the OOM killer's line)
//! must still read the fields the kernel wrote. The mount table's and the proc
//! connector's parsers have theirs beside them.

use super::cgroup::concepts::{self, CgVersion, Concept};
use super::cgroup::{kmsg, mountinfo};
use super::container::caps;
use super::net::{counters, icmp, route};
use super::{cpuhog, ids, ipc, ns, procs, rootfs};
use proptest::prelude::*;

/// Text like a kernel file's: its separators and digits often, any character sometimes.
fn kernel_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-zA-Z_ :/,=()\\-.\t\n]{0,300}",
        "((Cap|Uid|Gid|NSpid|Name)[a-zA-Z]*:\t[0-9a-f \t]{0,40}\n){0,8}",
        "([0-9]{1,12}(:[a-z_,=]{0,20}:)?[0-9a-z/ ]{0,30}\n){0,8}",
        any::<String>(),
    ]
}

/// An OOM killer's summary line around a process name, as the kernel writes it.
fn oom_line(task: &str, pid: u32) -> String {
    format!(
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
         oom_memcg=/nslab/oom,task_memcg=/nslab/oom,task={task},pid={pid},uid=0"
    )
}

proptest! {
    #[test]
    fn kmsg_records_and_oom_lines_parse_without_panicking(raw in kernel_text(), body in "[a-z_,=/0-9]{0,120}") {
        if let Some(rec) = kmsg::parse_record(&raw) {
            let _ = kmsg::parse_oom_kill(&rec);
        }
        let rec = kmsg::Record { seq: 1, usec: 2, message: format!("oom-kill:{body}") };
        let _ = kmsg::parse_oom_kill(&rec);
    }

    /// A process may name itself `a,pid=1,oom_memcg=/x`: the line still says whom the
    /// kernel killed and where.
    #[test]
    fn a_process_name_cannot_stand_for_another_field_of_the_oom_line(
        task in "[ -~]{0,15}", pid in 1u32..4_194_304
    ) {
        let rec = kmsg::Record { seq: 1, usec: 2, message: oom_line(&task, pid) };
        let kill = kmsg::parse_oom_kill(&rec).expect("a well-formed line parses");
        prop_assert_eq!(kill.pid, pid as i32);
        prop_assert_eq!(kill.task, task);
        prop_assert_eq!(kill.oom_memcg.as_deref(), Some("/nslab/oom"));
        prop_assert_eq!(kill.constraint, "CONSTRAINT_MEMCG");
    }

    #[test]
    fn proc_status_and_id_files_parse_without_panicking(
        text in kernel_text(), name in proptest::option::of("[a-z:]{0,8}"), id in any::<u32>()
    ) {
        let _ = ids::parse_status(&text);
        let _ = ids::parse_id_map(&text);
        let _ = ids::parse_subids(&text, name.as_deref(), id);
        let _ = caps::parse_status(&text);
    }

    #[test]
    fn cgroup_tables_parse_without_panicking(text in kernel_text()) {
        let _ = mountinfo::parse_mountinfo(&text);
        let _ = mountinfo::parse_proc_cgroup(&text);
    }

    #[test]
    fn cgroup_files_parse_without_panicking(
        a in kernel_text(), b in "[0-9max ]{0,30}", c in any::<String>()
    ) {
        for concept in Concept::ALL {
            for v in [CgVersion::V1, CgVersion::V2] {
                let _ = concepts::parse(concept, v, &[a.as_str(), b.as_str(), c.as_str()]);
                let _ = concepts::parse(concept, v, &[b.as_str()]);
                let _ = concepts::parse(concept, v, &[]);
            }
        }
        let _ = concepts::parse_max(&b, "memory.max");
        let _ = concepts::parse_cpu_max(&b);
        let _ = concepts::parse_procs(&a);
    }

    #[test]
    fn sizes_parse_without_panicking(text in "[0-9.]{0,30} ?[kKmMgGtTiBb]{0,3}", any_text in any::<String>()) {
        let _ = concepts::parse_size(&text);
        let _ = concepts::parse_size(&any_text);
    }

    /// A size in a unit is exactly that many bytes, or "too large": never a wrapped number.
    #[test]
    fn a_size_in_a_unit_is_its_bytes_or_too_large(n in any::<u64>(), unit in 0usize..5) {
        let (suffix, mult) = [("", 1u64), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("TiB", 1 << 40)][unit];
        match (concepts::parse_size(&format!("{n}{suffix}")), n.checked_mul(mult)) {
            (Ok(bytes), Some(want)) => prop_assert_eq!(bytes, want),
            (Err(e), None) => prop_assert!(e.to_string().contains("too large"), "{}", e),
            (got, want) => prop_assert!(false, "{n}{suffix}: {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn net_files_and_packets_parse_without_panicking(
        text in kernel_text(), packet in proptest::collection::vec(any::<u8>(), 0..120),
        id in any::<u16>(), seq in any::<u16>()
    ) {
        let _ = route::parse_proc_route(&text);
        let _ = counters::parse_net_dev(&text);
        let mut ipv4 = packet.clone();
        if let Some(b) = ipv4.first_mut() {
            *b = 0x40 | (*b & 0x0f);
        }
        if ipv4.len() > 9 {
            ipv4[9] = 1;
        }
        let _ = icmp::parse_reply(&packet, id, seq);
        let _ = icmp::parse_reply(&ipv4, id, seq);
    }

    #[test]
    fn proc_counters_and_ipc_tables_parse_without_panicking(text in kernel_text()) {
        let _ = cpuhog::parse_schedstat(&text);
        let _ = cpuhog::parse_stat_cpu_ticks(&text);
        let _ = ipc::parse_shm(&text);
        let _ = ipc::parse_msg(&text);
        let _ = ns::parse_link_target(&text);
        let _ = procs::parse_start_time(&text);
    }

    /// A process's name sits in `/proc/PID/stat` between parentheses and may hold `) `
    /// and digits of its own: the start time is still field 22.
    #[test]
    fn a_process_name_cannot_shift_the_start_time(comm in "[ -~]{0,15}", start in any::<u64>()) {
        let stat = format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {start} 8392704 200 18446744073709551615"
        );
        prop_assert_eq!(procs::parse_start_time(&stat), Some(start));
    }

    /// ELF images whose header says 64-bit little-endian, then anything: offsets and sizes
    /// pointing anywhere are refused, never followed out of the file.
    #[test]
    fn elf_headers_parse_without_panicking(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        any_bytes in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        let mut image = b"\x7fELF\x02\x01\x01\x00".to_vec();
        image.extend(tail);
        let _ = rootfs::parse_elf(&image);
        let _ = rootfs::parse_elf(&any_bytes);
    }

    /// Well-formed program headers and dynamic entries whose offsets, sizes and addresses
    /// are near the file's end or anywhere at all.
    #[test]
    fn elf_segments_and_dynamic_entries_parse_without_panicking(
        phs in proptest::collection::vec((0u32..5, number(), number(), number()), 0..5),
        dynamic in proptest::collection::vec((prop_oneof![Just(0u64), Just(1), Just(5), any::<u64>()], number()), 0..8),
        strings in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        let mut image = vec![0u8; 64];
        image[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
        image[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        image[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        image[0x38..0x3a].copy_from_slice(&(phs.len() as u16).to_le_bytes());
        for (kind, offset, vaddr, filesz) in &phs {
            let mut ph = [0u8; 56];
            ph[..4].copy_from_slice(&kind.to_le_bytes());
            ph[8..16].copy_from_slice(&offset.to_le_bytes());
            ph[16..24].copy_from_slice(&vaddr.to_le_bytes());
            ph[32..40].copy_from_slice(&filesz.to_le_bytes());
            image.extend(ph);
        }
        for (tag, val) in &dynamic {
            image.extend(tag.to_le_bytes());
            image.extend(val.to_le_bytes());
        }
        image.extend(strings);
        let _ = rootfs::parse_elf(&image);
    }
}

/// An offset, size or address: within a small file, at the edges of a u64, or anything.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..700,
        Just(u64::MAX),
        (u64::MAX - 64)..=u64::MAX,
        any::<u64>()
    ]
}
