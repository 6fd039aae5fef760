//! A simulated GPU device for memkit: real bytes behind every memory object, a GPU timeline the
//! test advances by hand, fault injection and misuse detection (arrives with the pools issue).
#![forbid(unsafe_code)]
