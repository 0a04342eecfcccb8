//! Image flashing (being written).
