//! memkit's shared test models: shadow implementations that property tests and fuzz targets drive
//! in lockstep with the real code, so a failure found by one reproduces in the other.

pub mod bench_report;
pub mod coordinator_fuzz;
pub mod fuzz_seed_files;
pub mod pool_model;
pub mod ring_model;
pub mod ring_producer_model;
pub mod suballocator_model;
pub mod transfer_model;
pub mod workloads;
