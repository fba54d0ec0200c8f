//! Evaluations: proving a use case works before it goes further, and watching that it still does.
//!
//! A [`Suite`] is YAML a promptfoo user reads at a glance — prompts, the routes to try, tests with
//! variables (inline or from CSV/JSONL datasets) and weighted assertions, a pass rate — checked
//! with the path of every mistake before anything is sent ([`suite`]). The [`run`] module sends
//! every test × prompt × route through a [`Target`] (the gateway itself: the use case's policy,
//! budgets and audit apply, and the requests are tagged as evaluation) with a bound on
//! concurrency, and judges each output with its [`assertion`]s; [`report`] turns the results into
//! the matrix, JSON and JUnit XML.
//!
//! The library does no I/O of its own besides reading a suite's datasets: where cases go is the
//! caller's [`Target`], so the CLI, the server's scheduled runs and the tests share one runner.

pub mod assertion;
pub mod fairness;
pub mod pattern;
pub mod report;
pub mod run;
pub mod suite;
pub mod text;

pub use assertion::{Assertion, Kind, Services, Verdict, parse_verdict};
pub use run::{Answer, CaseResult, ChatCall, RunOptions, RunReport, Status, Target, run};
pub use suite::{Problem, Suite, SuiteError, resolve};
