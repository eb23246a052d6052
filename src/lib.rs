//! runbook-compile: executable database runbooks.
//!
//! A runbook is an AsciiDoc or Markdown document whose SQL and shell blocks
//! carry attributes (step id, connection, expected counts, gates). The front
//! ends in [`source`] read a file into a [`document::Document`]; [`compile`]
//! turns it into a [`plan::Plan`], the input of every back end. The library
//! never prints: it returns data and [`diag::Diagnostic`]s.

pub mod check;
pub mod compile;
pub mod diag;
pub mod dialect;
pub mod doctest;
pub mod document;
pub mod exact;
pub mod exec;
pub mod files;
pub mod par;
pub mod plan;
pub mod site;
pub mod source;
pub mod sql;
pub mod template;
