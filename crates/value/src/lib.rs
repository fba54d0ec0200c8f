//! Evidence of value: what Tollgate's own data says a use case, a pod or the whole portfolio is
//! worth.
//!
//! [`kpis::compute`] turns [`Facts`] — sums the ledger and the outcome writer keep as rollups, the
//! registry's value model, the stage history — into the 25 KPIs of the reference
//! (`reference/kpis.md`), each with its definition, its inputs and how many events it rests on,
//! and "n/a" with the reason where the data is not there yet (never a zero that looks measured).
//! The library does no I/O: the control plane gathers the facts for a scope and a window from
//! the store, so the same computation serves the admin API, the CLI report and the tests, which
//! check every KPI against values computed by hand.

pub mod gates;
pub mod kpis;
pub mod portfolio;

pub use kpis::{Facts, ForecastCheck, Kpi, Measure, UseCaseFacts, compute};
