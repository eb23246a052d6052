//! Executing a plan.

pub mod params;
