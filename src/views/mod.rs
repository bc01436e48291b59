//! Pure rendering of captured state: plain data in, `String` out (no colour codes),
//! snapshot-tested with insta.

pub mod cgroup;
