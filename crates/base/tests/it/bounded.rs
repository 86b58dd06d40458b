use std::collections::BTreeMap;

use tabmesh_base::make_room;
use tabmesh_testkit::test;

#[test]
fn the_oldest_entry_goes_only_when_a_new_key_would_pass_the_bound() {
    let mut m: BTreeMap<u8, u64> = [(1, 30), (2, 10), (3, 20)].into();
    make_room(&mut m, &2, 3, |t| *t);
    assert_eq!(m.len(), 3, "an existing key needs no room");
    make_room(&mut m, &9, 4, |t| *t);
    assert_eq!(m.len(), 3, "room left");
    make_room(&mut m, &9, 3, |t| *t);
    assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
}
