//! Storage.
pub mod model;
