//! System update rules (being written).
