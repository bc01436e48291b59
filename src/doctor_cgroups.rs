//! The cgroup part of `nslab doctor`.

pub fn add_findings(add: &mut dyn FnMut(bool, bool, String, &str)) {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    add(!text.is_empty(), true, format!("cgroups: {} hierarchies", text.lines().count()), "mount cgroupfs");
}
