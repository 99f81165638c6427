//! LLM providers.
pub mod offline;
