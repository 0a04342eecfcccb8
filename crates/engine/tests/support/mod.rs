//! The shared fixtures live in `pos-testkit`.

pub use pos_testkit::*;
