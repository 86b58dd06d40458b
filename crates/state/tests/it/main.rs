use tabmesh_testkit::test;

// Integration tests of `tabmesh-state`, through its public API only. One binary; the same source
// runs natively and in headless Chromium (no threads, files or clocks).

mod codec;
mod convergence;
mod counter;
mod errors;
mod gc;
mod laws;
mod list;
mod map;
mod merkle;
mod persist;
mod register;
mod set;
mod support;
mod text;

use tabmesh_base::{Hash, MemoryKv};
use tabmesh_state::State;

#[test]
fn an_empty_state_has_the_zero_root_and_reopens_empty() {
    let s = State::new(support::PREFIX);
    assert_eq!(s.root_hash(), Hash::ZERO);
    assert!(s.is_empty());
    let reopened = State::open(support::PREFIX, &MemoryKv::new()).expect("open empty");
    assert_eq!(reopened.root_hash(), Hash::ZERO);
    assert_eq!(s.register("title").expect("handle").get(), None);
    assert_eq!(s.text("doc").expect("handle").to_string(), "");
}
