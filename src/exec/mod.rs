//! Executing a plan.

pub mod clock;
pub mod db;
pub mod engine;
pub mod fixture;
pub mod guard;
pub mod journal;
pub mod params;
pub mod registry;
pub mod resume;
pub mod run;
pub mod secret;
pub mod shown;
