//! Executing a plan.

pub mod db;
pub mod params;
