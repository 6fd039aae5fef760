//! Desktop memkit: the thread-safe coordinator, heap-backed storage, statistics and reports, and
//! the `memkit` command (arrives with the uploads issue).
