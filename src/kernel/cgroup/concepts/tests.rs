use super::*;

#[test]
fn every_concept_is_in_the_table_once_with_files_for_both_versions() {
    for c in Concept::ALL {
        assert_eq!(TABLE.iter().filter(|s| s.concept == c).count(), 1, "{c:?}");
        assert!(!c.files(CgVersion::V1).is_empty() && !c.files(CgVersion::V2).is_empty());
    }
    assert_eq!(
        Concept::MemoryLimit.file_label(CgVersion::V2),
        "memory.max (v2)"
    );
    assert_eq!(
        Concept::MemoryLimit.file_label(CgVersion::V1),
        "memory.limit_in_bytes (v1)"
    );
    assert_eq!(
        Concept::OomKills.file_label(CgVersion::V2),
        "memory.events oom_kill (v2)"
    );
    assert_eq!(
        Concept::CpuQuota.file_label(CgVersion::V1),
        "cpu.cfs_quota_us + cpu.cfs_period_us (v1)"
    );
    assert_eq!(Concept::CpuUsage.controller(CgVersion::V1), "cpuacct");
    assert_eq!(Concept::CpuUsage.controller(CgVersion::V2), "cpu");
}

#[test]
fn memory_limits_real_contents() {
    // v1 root / unlimited (this machine), v2 unlimited, and set limits.
    let p = |c, v, s| parse(c, v, &[s]).unwrap();
    assert_eq!(
        p(Concept::MemoryLimit, CgVersion::V1, "9223372036854771712\n"),
        Reading::Limit(Max::Unlimited)
    );
    assert_eq!(
        p(Concept::MemoryLimit, CgVersion::V2, "max\n"),
        Reading::Limit(Max::Unlimited)
    );
    assert_eq!(
        p(Concept::MemoryLimit, CgVersion::V1, "31457280\n"),
        Reading::Limit(Max::Value(31457280))
    );
    assert_eq!(
        p(Concept::MemoryLimit, CgVersion::V2, "29999104\n"),
        Reading::Limit(Max::Value(29999104))
    );
    assert_eq!(
        p(Concept::MemoryUsage, CgVersion::V1, "3371008\n"),
        Reading::Bytes(3371008)
    );
    assert_eq!(
        p(Concept::PidsLimit, CgVersion::V2, "max\n"),
        Reading::Limit(Max::Unlimited)
    );
    assert_eq!(
        p(Concept::PidsCurrent, CgVersion::V1, "3\n"),
        Reading::Count(3)
    );
    assert!(parse(Concept::MemoryLimit, CgVersion::V2, &["lots\n"]).is_err());
}

const V1_OOM_CONTROL: &str = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
const V2_MEMORY_EVENTS: &str = "low 0\nhigh 0\nmax 87\noom 1\noom_kill 1\noom_group_kill 0\n";

#[test]
fn oom_counters_real_contents() {
    assert_eq!(
        parse(Concept::OomKills, CgVersion::V1, &[V1_OOM_CONTROL]).unwrap(),
        Reading::Count(1)
    );
    assert_eq!(
        parse(Concept::OomKills, CgVersion::V2, &[V2_MEMORY_EVENTS]).unwrap(),
        Reading::Count(1)
    );
    assert_eq!(
        parse(Concept::MemoryFailcnt, CgVersion::V2, &[V2_MEMORY_EVENTS]).unwrap(),
        Reading::Count(87)
    );
    assert_eq!(
        parse(Concept::MemoryFailcnt, CgVersion::V1, &["1234\n"]).unwrap(),
        Reading::Count(1234)
    );
    // Old kernels (< 4.13) have no oom_kill line: an error, not a silent zero.
    assert!(parse(
        Concept::OomKills,
        CgVersion::V1,
        &["oom_kill_disable 0\nunder_oom 0\n"]
    )
    .is_err());
}

#[test]
fn cpu_real_contents() {
    let v1_stat =
        "nr_periods 120\nnr_throttled 97\nthrottled_time 8812345678\nnr_bursts 0\nburst_time 0\n";
    let v2_stat = "usage_usec 2000390\nuser_usec 1599000\nsystem_usec 401390\ncore_sched.force_idle_usec 0\nnr_periods 40\nnr_throttled 36\nthrottled_usec 3612054\nnr_bursts 0\nburst_usec 0\n";
    let Reading::CpuStat(s1) = parse(Concept::CpuStat, CgVersion::V1, &[v1_stat]).unwrap() else {
        panic!()
    };
    assert_eq!((s1.nr_periods, s1.nr_throttled), (120, 97));
    assert_eq!(
        s1.throttled,
        Time {
            raw: 8812345678,
            unit: TimeUnit::Ns,
            us: 8812345
        }
    );
    let Reading::CpuStat(s2) = parse(Concept::CpuStat, CgVersion::V2, &[v2_stat]).unwrap() else {
        panic!()
    };
    assert_eq!(
        s2.throttled,
        Time {
            raw: 3612054,
            unit: TimeUnit::Us,
            us: 3612054
        }
    );
    // v2 without the cpu controller's throttling lines (no quota ever).
    let bare = "usage_usec 10\nuser_usec 5\nsystem_usec 5\n";
    assert_eq!(
        parse(Concept::CpuStat, CgVersion::V2, &[bare]).unwrap(),
        Reading::CpuStat(CpuStat {
            nr_periods: 0,
            nr_throttled: 0,
            throttled: Time::new(0, TimeUnit::Us)
        })
    );
    assert_eq!(
        parse(Concept::CpuUsage, CgVersion::V2, &[v2_stat]).unwrap(),
        Reading::CpuTime(Time::new(2000390, TimeUnit::Us))
    );
    assert_eq!(
        parse(Concept::CpuUsage, CgVersion::V1, &["5123456789\n"]).unwrap(),
        Reading::CpuTime(Time {
            raw: 5123456789,
            unit: TimeUnit::Ns,
            us: 5123456
        })
    );

    assert_eq!(
        parse(Concept::CpuQuota, CgVersion::V1, &["-1\n", "100000\n"]).unwrap(),
        Reading::CpuQuota(CpuQuota {
            quota_us: None,
            period_us: 100000
        })
    );
    assert_eq!(
        parse(Concept::CpuQuota, CgVersion::V1, &["10000\n", "100000\n"]).unwrap(),
        Reading::CpuQuota(CpuQuota {
            quota_us: Some(10000),
            period_us: 100000
        })
    );
    assert_eq!(
        parse(Concept::CpuQuota, CgVersion::V2, &["max 100000\n"]).unwrap(),
        Reading::CpuQuota(CpuQuota {
            quota_us: None,
            period_us: 100000
        })
    );
    let Reading::CpuQuota(q) =
        parse(Concept::CpuQuota, CgVersion::V2, &["10000 100000\n"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(q.cpus(), Some(0.1));
}

#[test]
fn weight_and_shares_convert_both_ways() {
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(weight_to_shares(100), 2597);
    assert_eq!(weight_to_shares(1), 2);
    assert_eq!(weight_to_shares(10_000), 262_144);
    assert_eq!(
        parse(Concept::CpuWeight, CgVersion::V1, &["1024\n"]).unwrap(),
        Reading::CpuWeight(CpuWeight {
            raw: 1024,
            version: CgVersion::V1,
            weight: 39,
            shares: 1024
        })
    );
    assert_eq!(
        parse(Concept::CpuWeight, CgVersion::V2, &["100\n"]).unwrap(),
        Reading::CpuWeight(CpuWeight {
            raw: 100,
            version: CgVersion::V2,
            weight: 100,
            shares: 2597
        })
    );
}

#[test]
fn writes_per_version() {
    let w = render_write(
        Concept::MemoryLimit,
        CgVersion::V1,
        &Reading::Limit(Max::Value(31457280)),
    )
    .unwrap();
    assert_eq!(
        w,
        vec![(f("memory", "memory.limit_in_bytes"), "31457280".to_string())]
    );
    let w = render_write(
        Concept::MemoryLimit,
        CgVersion::V2,
        &Reading::Limit(Max::Unlimited),
    )
    .unwrap();
    assert_eq!(w[0].1, "max");
    let w = render_write(
        Concept::MemoryLimit,
        CgVersion::V1,
        &Reading::Limit(Max::Unlimited),
    )
    .unwrap();
    assert_eq!(w[0].1, "-1");
    let q = Reading::CpuQuota(CpuQuota {
        quota_us: Some(10000),
        period_us: 100000,
    });
    let w = render_write(Concept::CpuQuota, CgVersion::V1, &q).unwrap();
    assert_eq!(
        w.iter()
            .map(|(f, t)| (f.file, t.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "10000")
        ]
    );
    let w = render_write(Concept::CpuQuota, CgVersion::V2, &q).unwrap();
    assert_eq!(w[0].1, "10000 100000");
    let w = render_write(
        Concept::CpuWeight,
        CgVersion::V1,
        &Reading::CpuWeight(CpuWeight::from_weight(100)),
    )
    .unwrap();
    assert_eq!(w[0].1, "2597");
    assert!(render_write(Concept::OomKills, CgVersion::V2, &Reading::Count(1)).is_err());
}

#[test]
fn sizes_written_any_way() {
    for s in [
        "31457280", "30M", "30m", "30MiB", "30 MiB", " 30M\n", "30720K", "30720KiB",
    ] {
        assert_eq!(parse_size(s).unwrap(), 31_457_280, "{s}");
    }
    for s in ["30000000", "30MB", "30 MB", "30000kB", "0.03GB"] {
        assert_eq!(parse_size(s).unwrap(), 30_000_000, "{s}");
    }
    assert_eq!(parse_size("1.5G").unwrap(), 1_610_612_736);
    for bad in [
        "",
        "M",
        "thirty",
        "30 furlongs",
        "-5M",
        "99999999999999999999",
    ] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn page_rounding_is_the_same_limit() {
    assert!(same_limit(29_999_104, 30_000_000));
    assert!(same_limit(31_457_280, 31_457_280));
    assert!(!same_limit(31_457_280, 30_000_000));
    assert!(!same_limit(29_990_000, 30_000_000));
    assert_eq!(human_bytes(31_457_280), "30.0 MiB");
    assert_eq!(human_bytes(512), "512 B");
}
