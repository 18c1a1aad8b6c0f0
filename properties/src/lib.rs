//! Property checkers that more than one model (and, later, recorded histories from live clusters)
//! reuse.
//!
//! - [`commitment`]: the agreement property of atomic commitment, shared by the two-phase commit
//!   specifications (`twophase`, `tcommit`) and by the transactional models that run 2PC.

pub mod commitment;
