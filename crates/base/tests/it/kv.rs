use tabmesh_base::{KvRead, MemoryKv, WriteBatch, WriteOp};
use tabmesh_testkit::test;

#[test]
fn batches_apply_in_order_and_prefix_scans_are_sorted() {
    let mut kv = MemoryKv::new();
    let mut b = WriteBatch::new();
    b.put(b"a/2".to_vec(), b"two".to_vec());
    b.put(b"a/1".to_vec(), b"one".to_vec());
    b.put(b"b/1".to_vec(), b"other".to_vec());
    b.put(b"a/3".to_vec(), b"x".to_vec());
    b.delete(b"a/3".to_vec());
    assert_eq!(b.len(), 5);
    assert_eq!(b.ops()[4], WriteOp::Delete(b"a/3".to_vec()));
    kv.apply(&b);
    assert_eq!(kv.len(), 3);
    assert_eq!(kv.get(b"a/1"), Some(b"one".to_vec()));
    assert_eq!(kv.get(b"a/3"), None);
    let scan: Vec<_> = kv.scan_prefix(b"a/").into_iter().map(|(k, _)| k).collect();
    assert_eq!(scan, vec![b"a/1".to_vec(), b"a/2".to_vec()]);
}
