//! Every view rendered at 80 and at 120 columns: each line fits the screen once shown, and
//! the text is snapshot at both widths.

use super::fixtures::*;
use super::*;
use crate::ui::{with_width, VIEW_INDENT};
use std::collections::BTreeSet;
use std::path::Path;

/// The screens the views are laid out for: the projector's, and a laptop's.
const WIDTHS: [usize; 2] = [80, 120];

/// How a view reaches the screen, which decides the columns its body may take.
#[derive(Clone, Copy, Debug)]
enum Shown {
    /// Under a label by `Ui::view` (or a live view's frame), each line after
    /// [`VIEW_INDENT`].
    InView,
    /// On its own, at the left margin: the check report and the watch frame.
    Alone,
}

impl Shown {
    /// The widest a body line may be on a screen `width` columns wide.
    fn bound(self, width: usize) -> usize {
        match self {
            Shown::InView => width - VIEW_INDENT.len(),
            Shown::Alone => width,
        }
    }
}

struct Fixture {
    /// The snapshot's name, before `_at_WIDTH`.
    name: &'static str,
    /// The public functions (`file::function`) that make its text.
    views: &'static [&'static str],
    shown: Shown,
    /// The text, rendered at the width set for the thread.
    render: fn() -> String,
}

fn view(name: &'static str, views: &'static [&'static str], render: fn() -> String) -> Fixture {
    Fixture {
        name,
        views,
        shown: Shown::InView,
        render,
    }
}

fn fixtures() -> Vec<Fixture> {
    vec![
        // cgroup
        view(
            "cgroup_layout_hybrid_apart",
            &["cgroup::render_layout"],
            || {
                let (l, own) = layout_hybrid_apart();
                cgroup::render_layout(&l, &own, "nslab")
            },
        ),
        view(
            "cgroup_layout_hybrid_systemd",
            &["cgroup::render_layout"],
            || {
                let (l, own) = layout_hybrid_systemd();
                cgroup::render_layout(&l, &own, "your shell")
            },
        ),
        view("cgroup_layout_unified", &["cgroup::render_layout"], || {
            let (l, own) = layout_unified();
            cgroup::render_layout(&l, &own, "your shell")
        }),
        view(
            "cgroup_proc_cgroup",
            &["cgroup::render_proc_cgroup"],
            || cgroup::render_proc_cgroup(&layout_hybrid_systemd().1),
        ),
        view("cgroup_oom_kill", &["cgroup::render_oom_kill"], || {
            cgroup::render_oom_kill(&oom_kill())
        }),
        view(
            "cgroup_v1",
            &["cgroup::render_cgroup", "cgroup::render_values"],
            || {
                let (dirs, values) = cgroup_v1();
                cgroup::render_cgroup(&dirs, &values)
            },
        ),
        view("cgroup_values_v2", &["cgroup::render_values"], || {
            cgroup::render_values(&values_v2())
        }),
        view("cgroup_table_of_hog_stalls", &["cgroup::table"], || {
            let (header, rows) = hog_stalls();
            cgroup::table(&header, &rows)
        }),
        // chart
        view("chart_unlimited_hog", &["chart::render"], || {
            chart::render(&HOG, 100, None)
        }),
        view("chart_smooth", &["chart::render"], || {
            chart::render(&SMOOTH, 100, Some(10.0))
        }),
        view("chart_bursty", &["chart::render"], || {
            chart::render(&BURSTY, 100, Some(10.0))
        }),
        view("chart_weights", &["chart::render"], || {
            chart::render(&WEIGHTS, 100, None)
        }),
        view("chart_edges", &["chart::render"], || {
            chart::render(&[], 100, Some(100.0))
        }),
        view("chart_summary", &["chart::summary"], || {
            chart::summary(&SMOOTH, 100)
        }),
        // check
        Fixture {
            name: "check_failing_report",
            views: &["check::report", "check::report_at"],
            shown: Shown::Alone,
            render: || check::report(&failing_report()),
        },
        // container
        view(
            "container_busybox_root",
            &["container::rootfs_summary"],
            || container::rootfs_summary(&busybox_root()),
        ),
        view("container_escapes", &["container::escape"], || {
            let (chroot, pivot) = escapes();
            format!(
                "{}\n{}",
                container::escape(&chroot),
                container::escape(&pivot)
            )
        }),
        view("container_mounts", &["container::mounts"], || {
            let m = container_mounts();
            format!(
                "{}\n{}",
                container::mounts(&m[..3], 10),
                container::mounts(&m, 2)
            )
        }),
        view(
            "container_privileges_and_masks",
            &["container::privileges", "container::masked"],
            || {
                format!(
                    "{}\n{}",
                    container::privileges(&privileges()),
                    container::masked(&masked_paths(), "IN THE CONTAINER (PID 20)")
                )
            },
        ),
        view("container_networks", &["container::networks"], || {
            container::networks(&network_columns())
        }),
        // diff
        view("diff_before_after", &["diff::before_after"], || {
            diff::before_after("pid  100\nnet  200\n", "pid  300\nnet  200\n")
        }),
        view("diff_changes_only", &["diff::changes_only"], || {
            diff::changes_only("x: yes\ny: yes\n", "x: yes\ny: no\n")
        }),
        // ids
        view("ids_inside_and_outside", &["ids::compare"], || {
            let inside = status_ids(0, 0x1ff_ffff_ffff);
            let outside = status_ids(1000, 0x1ff_ffff_ffff);
            let learner = status_ids(1000, 0);
            ids::compare(&[
                ids::Column {
                    label: "inside (PID 812)".into(),
                    ids: &inside,
                },
                ids::Column {
                    label: "from the host".into(),
                    ids: &outside,
                },
                ids::Column {
                    label: "you".into(),
                    ids: &learner,
                },
            ])
        }),
        view("ids_all_capabilities", &["ids::capabilities"], || {
            ids::capabilities(0x1ff_ffff_ffff)
        }),
        // ipc
        view("ipc_objects", &["ipc::objects"], || {
            format!(
                "{}\n{}",
                ipc::objects(&ipc_objects()),
                ipc::objects(&Default::default())
            )
        }),
        view(
            "ipc_queues_and_hostnames",
            &["ipc::mqueue", "ipc::hostnames"],
            || {
                format!(
                    "{}\n{}\n{}",
                    ipc::mqueue("/dev/mqueue", &queue_files()),
                    ipc::mqueue("/mnt", &[]),
                    ipc::hostnames(&hostnames())
                )
            },
        ),
        // mounts
        view("mounts_propagation", &["mounts::table"], || {
            mounts::table(&lesson_mounts(), Some(Path::new(MOUNT_BASE)))
        }),
        view("mounts_overlay_layers", &["mounts::layers"], || {
            let (labels, layers) = overlay_layers();
            mounts::layers(&labels, &layers)
        }),
        // nat
        view("nat_rules", &["nat::rules"], || nat::rules(&nat_rules())),
        // net
        view("net_new_namespace_links", &["net::links"], || {
            net::links(&new_namespace_links(), &|id| {
                (id == 0).then(|| "nslab-blue".to_string())
            })
        }),
        view("net_addresses", &["net::addresses"], || {
            net::addresses(&red_addresses())
        }),
        view("net_ping_counters", &["net::counters"], || {
            let (before, after) = ping_counters();
            net::counters(&before, &after)
        }),
        // ns
        view("ns_three_processes", &["ns::compare"], || {
            let [a, b, c] = ns_sets();
            ns::compare(&[
                ns::Column {
                    label: "nslab (PID 10)".into(),
                    set: &a,
                },
                ns::Column {
                    label: "child (PID 20)".into(),
                    set: &b,
                },
                ns::Column {
                    label: "PID 1".into(),
                    set: &c,
                },
            ])
        }),
        view("ns_links", &["ns::links"], || {
            let mut a = ns_set(10, 4026531835, false);
            a.links[9].inode = None;
            a.links[9].unreadable = Some("no such namespace".into());
            ns::links(&a)
        }),
        view("ns_netns_mount_line", &["ns::mount_line"], || {
            ns::mount_line(NETNS_MOUNT_LINE)
        }),
        // procs
        view("procs_pid_namespace", &["procs::table"], || {
            procs::table(&pid_ns_procs())
        }),
        view("procs_summary", &["procs::summary"], || {
            procs::summary(&sleepers(), 2)
        }),
        // table
        view(
            "table_pads_columns",
            &["table::render", "table::render_at"],
            || {
                table::render(
                    &["A", "LONGER"],
                    &[
                        vec!["wide cell".into(), "x".into()],
                        vec!["b".into(), "y".into()],
                    ],
                )
            },
        ),
        view(
            "table_free_text",
            &["table::render", "table::render_at"],
            || {
                let (header, rows) = processes();
                table::render(&header, &rows)
            },
        ),
        view(
            "table_namespace_columns",
            &["table::render", "table::render_at"],
            || {
                let (header, rows) = namespace_columns();
                table::render(&header, &rows)
            },
        ),
        // topology
        view(
            "topology_two_namespaces",
            &["topology::diagram", "topology::diagram_at"],
            || {
                let boxes = red_blue(true);
                topology::diagram(&boxes, &topology::cables(&boxes, &other_box))
            },
        ),
        view(
            "topology_a_down_end_at_another_height",
            &["topology::diagram", "topology::diagram_at"],
            || {
                let mut boxes = red_blue(false);
                boxes[1].links.reverse();
                topology::diagram(&boxes, &topology::cables(&boxes, &other_box))
            },
        ),
        view(
            "topology_no_cable",
            &["topology::diagram", "topology::diagram_at"],
            || {
                let mut boxes = red_blue(true);
                boxes[1].links[0].peer_index = Some(9);
                topology::diagram(&boxes, &topology::cables(&boxes, &other_box))
            },
        ),
        // watch
        Fixture {
            name: "watch_frame_a_fact_that_differs",
            views: &["watch::frame"],
            shown: Shown::Alone,
            render: || {
                let r = judged(last_fact_wrong(), Some("no-mount-proc"));
                watch::frame(&r, crate::ui::width())
            },
        },
        Fixture {
            name: "watch_frame_facts_not_reached",
            views: &["watch::frame"],
            shown: Shown::Alone,
            render: || {
                let mut facts = expected_facts();
                facts[0].value = "not found".into();
                for f in &mut facts[1..] {
                    f.value = "-".into();
                }
                watch::frame(&judged(facts, Some("nothing-found")), crate::ui::width())
            },
        },
    ]
}

/// Public functions returning a String that are not views, and why.
const NOT_VIEWS: &[(&str, &str)] = &[
    ("mod::millis", "a round-trip time inside a sentence"),
    (
        "cgroup::format_reading",
        "a cell of cgroup::render_values, every kind of reading in cgroup_v1 and cgroup_values_v2",
    ),
    ("chart::percent", "a number inside a sentence or a cell"),
    ("container::human", "a size inside a cell"),
    (
        "nat::nft_syntax",
        "a rule inside a sentence (check 5's judgement) and inside nat::rules",
    ),
    ("watch::sources", "a part of a sentence its caller wraps"),
    (
        "watch::line",
        "one line per change when piped, a log line not laid out to a width",
    ),
];

/// The views files, read at build time.
const SOURCES: &[(&str, &str)] = &[
    ("mod", include_str!("mod.rs")),
    ("cgroup", include_str!("cgroup.rs")),
    ("chart", include_str!("chart.rs")),
    ("check", include_str!("check.rs")),
    ("container", include_str!("container.rs")),
    ("diff", include_str!("diff.rs")),
    ("ids", include_str!("ids.rs")),
    ("ipc", include_str!("ipc.rs")),
    ("mounts", include_str!("mounts.rs")),
    ("nat", include_str!("nat.rs")),
    ("net", include_str!("net.rs")),
    ("ns", include_str!("ns.rs")),
    ("procs", include_str!("procs.rs")),
    ("table", include_str!("table.rs")),
    ("topology", include_str!("topology.rs")),
    ("watch", include_str!("watch.rs")),
];

/// The files of src/views that hold only tests.
const TEST_FILES: [&str; 2] = ["at_widths", "fixtures"];

/// `file::name` of every `pub fn` returning `String` outside a file's tests.
fn string_fns() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (file, source) in SOURCES {
        let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for (at, _) in code.match_indices("pub fn ") {
            let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
            if !code[line_start..at].trim().is_empty() {
                continue;
            }
            let rest = &code[at + "pub fn ".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let signature = rest[..rest.find(['{', ';']).unwrap_or(rest.len())].trim_end();
            if signature.ends_with("-> String") {
                out.insert(format!("{file}::{name}"));
            }
        }
    }
    out
}

#[test]
fn every_view_fits_80_and_120_columns() {
    console::set_colors_enabled(false);
    let fixtures = fixtures();
    let mut names = BTreeSet::new();
    for f in &fixtures {
        assert!(names.insert(f.name), "two fixtures named {}", f.name);
        for w in WIDTHS {
            let text = with_width(w, f.render);
            let bound = f.shown.bound(w);
            for line in text.lines() {
                let cols = console::measure_text_width(line);
                assert!(
                    cols <= bound,
                    "{} at {w} columns: a line of {cols} columns, more than {bound}:\n{line}",
                    f.name
                );
            }
            insta::assert_snapshot!(format!("{}_at_{w}", f.name), text);
        }
    }
}

#[test]
fn every_public_view_has_a_fixture() {
    let found = string_fns();
    let covered: BTreeSet<String> = fixtures()
        .iter()
        .flat_map(|f| f.views.iter().map(|v| v.to_string()))
        .collect();
    let exempt: BTreeSet<String> = NOT_VIEWS.iter().map(|(f, _)| f.to_string()).collect();
    let missing: Vec<&String> = found
        .iter()
        .filter(|f| !covered.contains(*f) && !exempt.contains(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "views without a fixture in at_widths (or a reason in NOT_VIEWS): {missing:?}"
    );
    let unknown: Vec<&String> = covered
        .union(&exempt)
        .filter(|f| !found.contains(*f))
        .collect();
    assert!(
        unknown.is_empty(),
        "named in at_widths but not a pub fn returning String: {unknown:?}"
    );
    let both: Vec<&String> = covered.intersection(&exempt).collect();
    assert!(both.is_empty(), "both a view and not one: {both:?}");
}

#[test]
fn every_views_file_is_scanned() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/views");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    let known: BTreeSet<String> = SOURCES
        .iter()
        .map(|(f, _)| f.to_string())
        .chain(TEST_FILES.iter().map(|f| f.to_string()))
        .collect();
    assert_eq!(on_disk, known, "SOURCES lists every views file");
}
