//! The hogs: one that climbs past the limit and is killed (step c), its kill read back
//! from the cgroup and the kernel's log (step d), and one a higher limit lets live (step e).

use super::limit::{hog_goal, survivor_limit};
use super::{climb, read_count, OomLesson, MEMORY_VIEW, PAUSE, STEP};
use crate::kernel::cgroup::concepts::human_bytes;
use crate::kernel::cgroup::{kmsg, Concept, Max, Reading};
use crate::kernel::hog::{self, HogEnd, HogEvent, MemoryHog};
use crate::lesson::Stage;
use crate::views;
use anyhow::{Context, Result};

impl OomLesson {
    pub(super) fn step_c(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_cgroup(stage)?;
        let limit = self.limit;
        let (dir, _) = self.mem_dir()?;
        let cg = self.cg.as_ref().expect("ensured above");
        self.before_values = Some(views::cgroup::render_values(&cg.read_all(&MEMORY_VIEW)));
        self.kills_before = read_count(cg, Concept::OomKills);
        self.seq_before = kmsg::last_seq();
        stage.command(&format!(
            "sudo sh -c 'echo $$ > {}/cgroup.procs; exec tail /dev/zero'",
            dir.display()
        ));
        let goal = hog_goal(limit);
        let mut hog = MemoryHog::spawn(goal, STEP, PAUSE)?;
        let pid = hog.pid();
        hog.start_in(cg)?;
        stage.syscalls();
        stage.say(&format!(
            "The hog is PID {pid}, now in the cgroup and nowhere else in the memory hierarchy. It will try to take {} \
             against a limit of {}.",
            human_bytes(goal),
            human_bytes(limit)
        ));
        let ev = climb(stage, &mut hog, cg, limit)?;
        if let HogEvent::Holding(_) = ev {
            // Not what a limit below the goal should allow; step d says so. Let it go now.
            hog.release()?;
        }
        self.end = Some((pid, ev));
        Ok(())
    }

    pub(super) fn step_d(&mut self, stage: &mut Stage) -> Result<()> {
        if self.end.is_none() {
            stage.say("Running the hog of step c first.");
            self.step_c(stage)?;
        }
        let (pid, ev) = self.end.clone().expect("ran above");
        let (dir, version) = self.mem_dir()?;
        let cg = self.cg.as_ref().expect("made with the hog");
        match &ev {
            HogEvent::Ended(end) => say_end(stage, pid, end),
            HogEvent::Holding(n) | HogEvent::Progress(n) => stage.say(&format!(
                "The hog was NOT killed: it holds {} under this cgroup's limit. Is swap taking the excess? \
                 (memory.swap.max / memory.memsw.limit_in_bytes)",
                human_bytes(*n)
            )),
        }
        let oom_file = Concept::OomKills.files(version)[0].file;
        let layout = self.layout.clone().context("layout read in step c")?;
        let path = layout.path_in_hierarchy("memory", &dir).unwrap_or_default();
        stage.command(&format!(
            "cat {}/{oom_file}\nsudo dmesg | grep -A1 'oom_memcg={path}'",
            dir.display()
        ));
        let after = views::cgroup::render_values(&cg.read_all(&MEMORY_VIEW));
        stage.before_after(
            "The cgroup before the hog and after its end",
            self.before_values.as_deref().unwrap_or(""),
            &after,
        );
        let kills = read_count(cg, Concept::OomKills);
        let peak = match cg.read(Concept::MemoryPeak) {
            Ok(Reading::Bytes(p)) => format!(", and the peak was {}", human_bytes(p)),
            _ => String::new(),
        };
        stage.say(&format!(
            "oom_kill went from {} to {kills} ({}); usage hit the limit {} time(s) ({}){peak}.",
            self.kills_before,
            Concept::OomKills.file_label(version),
            read_count(cg, Concept::MemoryFailcnt),
            Concept::MemoryFailcnt.file_label(version),
        ));
        match kmsg::oom_kills_in(&path) {
            None => stage.say(
                "The kernel's log (/dev/kmsg) cannot be read here, so its line for this kill cannot be shown; \
                 on a machine where it can, `sudo dmesg` shows it.",
            ),
            Some(kills) => match kills.iter().rev().find(|k| Some(k.seq) > self.seq_before && k.pid == pid) {
                Some(k) => {
                    stage.view("The kernel's own report, from /dev/kmsg", &views::cgroup::render_oom_kill(k));
                    stage.say(&format!(
                        "constraint={}: the limit of a memory cgroup was hit, not the machine's memory. oom_memcg={} is the \
                         cgroup whose limit it was, and pid={} ({}) the hog.",
                        k.constraint,
                        k.oom_memcg.as_deref().unwrap_or("?"),
                        k.pid,
                        k.task
                    ));
                }
                None => stage.say("The kernel's log has no line for this kill (the log may have been cleared)."),
            },
        }
        Ok(())
    }

    pub(super) fn step_e(&mut self, stage: &mut Stage) -> Result<()> {
        self.ensure_cgroup(stage)?;
        let limit = self.limit;
        let goal = hog_goal(limit);
        let high = survivor_limit(limit);
        let (dir, version) = self.mem_dir()?;
        let limit_file = Concept::MemoryLimit.files(version)[0].file;
        let cg = self.cg.as_ref().expect("ensured above");
        stage.command(&format!(
            "echo {high} | sudo tee {d}/{limit_file}\nsudo sh -c 'echo $$ > {d}/cgroup.procs; head -c {goal} /dev/zero | tail > /dev/null'",
            d = dir.display()
        ));
        cg.set(Concept::MemoryLimit, &Reading::Limit(Max::Value(high)))?;
        let kills_before = read_count(cg, Concept::OomKills);
        let mut hog = MemoryHog::spawn(goal, STEP, PAUSE)?;
        let pid = hog.pid();
        hog.start_in(cg)?;
        stage.syscalls();
        let ev = climb(stage, &mut hog, cg, high)?;
        match ev {
            HogEvent::Holding(n) => {
                stage.view(
                    &format!("The cgroup while PID {pid} holds its memory"),
                    &views::cgroup::render_values(&cg.read_all(&MEMORY_VIEW)),
                );
                let avail = hog::mem_available()
                    .map(human_bytes)
                    .unwrap_or_else(|| "?".into());
                stage.say(&format!(
                    "The same hog now holds all {} it wanted, under a limit of {}; oom_kill is still {}. The machine has \
                     {avail} available, as it had when the first hog died: the limit, not the machine, decided.",
                    human_bytes(n),
                    human_bytes(high),
                    read_count(cg, Concept::OomKills)
                ));
                let end = hog.release()?;
                stage.say(&format!(
                    "Told to finish, it exited with status {}.",
                    end.shell_status
                ));
            }
            HogEvent::Ended(end) => {
                say_end(stage, pid, &end);
                stage.say(&format!(
                    "Even {} was not enough here (oom_kill {} → {}).",
                    human_bytes(high),
                    kills_before,
                    read_count(cg, Concept::OomKills)
                ));
            }
            HogEvent::Progress(_) => {}
        }
        Ok(())
    }
}

fn say_end(stage: &Stage, pid: i32, end: &HogEnd) {
    match (end.signal, end.code) {
        (Some(sig), _) if end.killed_by_sigkill() => stage.say(&format!(
            "The hog (PID {pid}) was killed by {} after touching {}. A shell prints `Killed`, and `echo $?` gives {} \
             (128 + {}).",
            sig.as_str(),
            human_bytes(end.touched),
            end.shell_status,
            sig as i32
        )),
        (Some(sig), _) => stage.say(&format!(
            "The hog (PID {pid}) ended by {}, not by the OOM killer's SIGKILL.",
            sig.as_str()
        )),
        (None, Some(code)) => stage.say(&format!("The hog (PID {pid}) exited by itself with status {code}.")),
        _ => stage.say(&format!("The hog (PID {pid}) ended.")),
    }
}
