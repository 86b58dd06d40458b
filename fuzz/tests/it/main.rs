//! The fuzz bodies of `tabmesh-fuzz`, run on stable as ordinary tests (native only).
//!
//! One test per target ([`targets`]): every file of `fuzz/corpus/<target>/` (hand-made edge
//! cases and inputs that once broke a contract), every valid seed (made by the real encoders),
//! then seeded random inputs and mutations of the seeds ([`mutate`]; `DetRng`, a fixed seed per
//! target). Each prints one line: how many inputs of each kind it ran, how many failed, how long it
//! took. A failure names the input (corpus file, seed, or generator seed and mutation), its hex
//! and the panic message, and writes it to `target/fuzz-failures/`.
//!
//! Budget: the whole binary within 60 s in a debug build on 2 cores; the counts per target are in
//! [`targets`].

mod corpus;
mod mutate;
mod runner;
mod targets;
