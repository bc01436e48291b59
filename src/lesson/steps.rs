//! A lesson's steps as one table: id, title, whether it needs the keyboard, the function.

use super::Stage;
use anyhow::Result;
use std::marker::PhantomData;

/// One step of lesson `L`: the `## Step {id}: {title}` section of its lesson.md and the code
/// that does it.
pub struct Step<L> {
    pub id: char,
    pub title: &'static str,
    /// Needs a person at the terminal (a shell inside, a mystery to solve): skipped under `--yes`.
    pub keyboard: bool,
    pub run: fn(&mut L, &mut Stage) -> Result<()>,
}

/// A lesson's code: the state its steps carry from one to the next.
pub trait Lesson: Sized + 'static {
    const STEPS: &'static [Step<Self>];

    /// Options of this lesson's own, added to `nslab lesson` (lesson 3's `--limit`).
    fn options() -> Vec<clap::Arg> {
        Vec::new()
    }

    /// The lesson's state before its first step, from its options. Parsing only: nothing
    /// on the system is made here (that is what steps are for).
    fn start(options: &clap::ArgMatches) -> Result<Self>;
}

/// A step as the engine sees it, without the lesson's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepInfo {
    pub id: char,
    pub title: &'static str,
    pub keyboard: bool,
}

/// A lesson started and running: steps run one by one on its state.
pub trait Run {
    fn run_step(&mut self, id: char, stage: &mut Stage) -> Result<()>;
}

/// The steps of some lesson, its type erased so that every lesson's info has the same type.
pub trait Steps: Sync {
    fn list(&self) -> Vec<StepInfo>;
    fn options(&self) -> Vec<clap::Arg>;
    fn start(&self, options: &clap::ArgMatches) -> Result<Box<dyn Run>>;
}

/// The steps of lesson `L`: `steps: &Table::<MyLesson>::OF` in its info.
pub struct Table<L>(PhantomData<fn() -> L>);

impl<L: Lesson> Table<L> {
    pub const OF: Table<L> = Table(PhantomData);
}

struct Running<L>(L);

impl<L: Lesson> Run for Running<L> {
    fn run_step(&mut self, id: char, stage: &mut Stage) -> Result<()> {
        let step = L::STEPS
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| anyhow::anyhow!("this lesson has no step '{id}'"))?;
        (step.run)(&mut self.0, stage)
    }
}

impl<L: Lesson> Steps for Table<L> {
    fn list(&self) -> Vec<StepInfo> {
        L::STEPS
            .iter()
            .map(|s| StepInfo {
                id: s.id,
                title: s.title,
                keyboard: s.keyboard,
            })
            .collect()
    }

    fn options(&self) -> Vec<clap::Arg> {
        L::options()
    }

    fn start(&self, options: &clap::ArgMatches) -> Result<Box<dyn Run>> {
        Ok(Box::new(Running(L::start(options)?)))
    }
}

/// An exercise done by hand only (bonuses 2b and 5b): nothing for nslab to run.
pub struct NoSteps;

impl Steps for NoSteps {
    fn list(&self) -> Vec<StepInfo> {
        Vec::new()
    }

    fn options(&self) -> Vec<clap::Arg> {
        Vec::new()
    }

    fn start(&self, _: &clap::ArgMatches) -> Result<Box<dyn Run>> {
        anyhow::bail!("this exercise has no steps for nslab to run")
    }
}
