//! This run's number among the live runs of its lesson, and the names that gives what it
//! makes: the first run keeps the names its text shows, a second beside it adds `-2`.

use std::sync::atomic::{AtomicU32, Ordering};

/// The most runs of one lesson at once: `nslab-blue0-99` still fits an interface name.
pub const MAX: u32 = 99;

static NUMBER: AtomicU32 = AtomicU32::new(1);

/// Set once, when the run has claimed its number.
pub fn set(n: u32) {
    NUMBER.store(n.clamp(1, MAX), Ordering::Relaxed);
}

pub fn number() -> u32 {
    NUMBER.load(Ordering::Relaxed)
}

/// `base` as this run names it: `nslab-red`, or `nslab-red-2` in a second run.
pub fn named(base: &str) -> String {
    named_as(base, number())
}

fn named_as(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// Is `name` what some run names `base`: `mystery`, `mystery-2`, …?
pub fn is_named(name: &str, base: &str) -> bool {
    match name.strip_prefix(base) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (2..=MAX).contains(&n) && rest == format!("-{n}")),
        None => false,
    }
}

/// A name a lesson gives what it makes, shown and compared as this run names it.
#[derive(Clone, Copy, Debug)]
pub struct Named(pub &'static str);

impl Named {
    /// As the lesson's texts write it (the first run's name).
    pub const fn base(self) -> &'static str {
        self.0
    }

    /// As this run names it.
    pub fn get(self) -> String {
        named(self.0)
    }
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.get())
    }
}

impl PartialEq<Named> for str {
    fn eq(&self, other: &Named) -> bool {
        *self == other.get()
    }
}

impl PartialEq<Named> for String {
    fn eq(&self, other: &Named) -> bool {
        *self == other.get()
    }
}

impl PartialEq<Named> for &String {
    fn eq(&self, other: &Named) -> bool {
        **self == other.get()
    }
}

impl From<Named> for String {
    fn from(n: Named) -> String {
        n.get()
    }
}

/// `text` with each of `names` as run `n` names it; whole names only, so `nslab-red` is
/// not the start of `nslab-red0` and `nslab/oom` not that of `nslab/oom-x`.
pub fn rename_in(text: &str, names: &[&str], n: u32) -> String {
    if n <= 1 || names.is_empty() {
        return text.to_string();
    }
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    'scan: while !rest.is_empty() {
        let before = out.chars().next_back();
        if !before.is_some_and(part_of_name) {
            for name in names {
                if let Some(after) = rest.strip_prefix(name) {
                    if !after.chars().next().is_some_and(part_of_name) {
                        out.push_str(&named_as(name, n));
                        rest = after;
                        continue 'scan;
                    }
                }
            }
        }
        let c = rest.chars().next().expect("rest is not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["nslab-red", "nslab-red0", "nslab/oom"];

    #[test]
    fn a_second_run_names_whole_names_with_its_number() {
        let text = "sudo ip link set nslab-red0 netns nslab-red\n\
                    CG=/sys/fs/cgroup/memory/nslab/oom; ls /run/netns/nslab-red`";
        assert_eq!(
            rename_in(text, &NAMES, 2),
            "sudo ip link set nslab-red0-2 netns nslab-red-2\n\
             CG=/sys/fs/cgroup/memory/nslab/oom-2; ls /run/netns/nslab-red-2`"
        );
        assert_eq!(rename_in(text, &NAMES, 1), text, "the first run keeps them");
        assert_eq!(
            rename_in("xnslab-red nslab-redder nslab/oom-kill", &NAMES, 3),
            "xnslab-red nslab-redder nslab/oom-kill",
            "only whole names"
        );
        assert_eq!(named_as("oom", 2), "oom-2");
        assert!(is_named("mystery", "mystery") && is_named("mystery-2", "mystery"));
        assert!(!is_named("mystery-1", "mystery") && !is_named("mystery-02", "mystery"));
        assert!(!is_named("mystery-x", "mystery") && !is_named("mysteryx", "mystery"));
        assert_eq!(
            named_as("nslab-blue0", MAX).len(),
            14,
            "an interface name fits 15 bytes"
        );
    }

    proptest::proptest! {
        /// Any text: renamed without a panic, and the first run's text unchanged.
        #[test]
        fn any_text_renames(text in ".{0,80}", n in 1u32..=MAX) {
            let renamed = rename_in(&text, &NAMES, n);
            if n == 1 {
                proptest::prop_assert_eq!(renamed, text);
            }
        }
    }
}
