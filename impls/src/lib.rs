//! The TCP runtime that drives the same stateright actors the models define, and the runtimes of the
//! data-processing papers. Not written yet: the workspace member exists so that the dependency
//! direction (`models <- impls`) is fixed from the start.
