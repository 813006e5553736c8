//! The lab file: `spec` (serde types as written) → `validate` → `model` (ids, parsed values).
//! `diag` places every problem at `file:line:col` with its JSON path. Nothing here runs a lab.

pub mod diag;
pub mod impair;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod spec;
pub mod validate;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use model::*;
pub use validate::{app_for_host, forward_for_lab, load_bytes, load_file, load_str, LoadError};

/// The JSON Schema of the lab format, for editors.
#[must_use]
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(spec::LabSpec)).unwrap_or_default()
}
