//! Tests of the VM-FT model.
