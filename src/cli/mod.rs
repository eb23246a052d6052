//! The binary's own modules: terminal I/O for the commands that need it.

pub mod check;
pub mod exec;
pub mod test;
