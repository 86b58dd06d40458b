use tabmesh_testkit::test;

use tabmesh_base::{EntityId, Hash};
use tabmesh_state::{Action, State, TrieSlot};

use super::support::{assert_same, Replica};

/// Walks `from`'s Merkle tries against `to`'s from the root, skipping equal subtrees, and returns
/// the full states of every entity whose hash differs (what a sync protocol would ship).
fn diff(from: &State, to: &State) -> Vec<Action> {
    let mut out = Vec::new();
    let mut stack: Vec<(Option<EntityId>, Vec<u8>)> = vec![(None, Vec::new())];
    while let Some((owner, path)) = stack.pop() {
        let Some(node) = from.trie_node(owner.as_ref(), &path) else {
            continue;
        };
        if to.trie_node(owner.as_ref(), &path).map(|n| n.hash()) == Some(node.hash()) {
            continue;
        }
        for (nib, slot) in node.slots() {
            match slot {
                TrieSlot::Subtree(h) => {
                    let mut deeper = path.clone();
                    deeper.push(nib);
                    let theirs = to.trie_node(owner.as_ref(), &deeper).map(|n| n.hash());
                    if theirs != Some(h) {
                        stack.push((owner, deeper));
                    }
                }
                TrieSlot::Entity(id, full) => {
                    let mine = from.entity_hashes(&id).expect("listed entity exists");
                    assert_eq!(mine.full, full);
                    let theirs = to.entity_hashes(&id);
                    if theirs.map(|t| t.full) == Some(full) {
                        continue;
                    }
                    if theirs.map(|t| t.own) != Some(mine.own) {
                        out.push(from.entity(&id).expect("exists").clone());
                    }
                    if theirs.map(|t| t.children) != Some(mine.children) {
                        stack.push((Some(id), Vec::new()));
                    }
                }
            }
        }
    }
    out
}

fn trie_depth(s: &State, owner: Option<&EntityId>) -> usize {
    let mut max = 0;
    let mut stack = vec![Vec::new()];
    while let Some(path) = stack.pop() {
        let Some(node) = s.trie_node(owner, &path) else {
            continue;
        };
        max = max.max(path.len() + 1);
        for (nib, slot) in node.slots() {
            if let TrieSlot::Subtree(_) = slot {
                let mut deeper = path.clone();
                deeper.push(nib);
                stack.push(deeper);
            }
        }
    }
    max
}

#[test]
fn the_root_and_children_hashes_are_the_top_trie_nodes() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut m = t.map("m")?;
        for i in 0..50u32 {
            m.insert(&i.to_le_bytes(), b"v")?;
        }
        Ok(())
    });
    let root = a.state.trie_node(None, &[]).expect("root node");
    assert_eq!(root.hash(), a.state.root_hash());
    let m = a.state.map("m").expect("handle").id();
    let h = a.state.entity_hashes(&m).expect("hashes");
    assert_eq!(
        a.state.trie_node(Some(&m), &[]).expect("node").hash(),
        h.children
    );
    assert_ne!(h.children, Hash::ZERO);
    assert_eq!(a.state.children(Some(&m)).count(), 50);
    let mut ids: Vec<EntityId> = a.state.children(Some(&m)).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted, "children iterate in id order");
    ids.dedup();
    assert_eq!(ids.len(), 50);
}

#[test]
fn a_wide_map_has_a_logarithmic_trie() {
    let mut a = Replica::new(1, 0);
    a.write(1_000, |t| {
        let mut m = t.map("wide")?;
        for i in 0..4096u32 {
            m.insert(&i.to_le_bytes(), b"")?;
        }
        Ok(())
    });
    let m = a.state.map("wide").expect("handle");
    assert_eq!(m.len(), 4096);
    // log16(4096) = 3 levels when balanced; hashed ids add at most a few.
    let depth = trie_depth(&a.state, Some(&m.id()));
    assert!((3..=7).contains(&depth), "trie depth {depth}");
}

#[test]
fn a_merkle_walk_finds_exactly_what_differs() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    let base = a.write(1_000, |t| {
        let mut m = t.map("kv")?;
        for i in 0..500u32 {
            m.insert(&i.to_le_bytes(), b"v")?;
        }
        t.text("doc")?.insert(0, "shared text")
    });
    b.receive(1_001, &base);
    assert_eq!(a.state.root_hash(), b.state.root_hash());
    assert!(diff(&a.state, &b.state).is_empty());
    // Diverge: a few writes on each side, never exchanged as actions.
    a.write(2_000, |t| {
        t.map("kv")?.insert(&7u32.to_le_bytes(), b"a-side")?;
        t.text("doc")?.insert(0, "A:")
    });
    b.write(2_000, |t| {
        let mut m = t.map("kv")?;
        m.delete(&8u32.to_le_bytes())?;
        m.insert(&9_999u32.to_le_bytes(), b"new")?;
        Ok(())
    });
    assert_ne!(a.state.root_hash(), b.state.root_hash());
    let to_b = diff(&a.state, &b.state);
    let to_a = diff(&b.state, &a.state);
    // Equal subtrees were skipped: only changed entries, their containers and new elements.
    assert!(to_b.len() <= 6, "shipped {} states to b", to_b.len());
    assert!(to_a.len() <= 6, "shipped {} states to a", to_a.len());
    b.receive(3_000, &to_b);
    a.receive(3_000, &to_a);
    assert_same(&a.state, &b.state, "repaired");
    assert_eq!(
        b.state.text("doc").expect("handle").to_string(),
        "A:shared text"
    );
    assert_eq!(a.state.map("kv").expect("handle").len(), 500);
}

#[test]
fn metadata_is_covered_by_the_hash() {
    let mut a = Replica::new(1, 0);
    let mut b = Replica::new(2, 0);
    a.write(1_000, |t| t.register("r")?.set(b"same"));
    b.write(2_000, |t| t.register("r")?.set(b"same"));
    assert_eq!(
        a.state.register("r").expect("h").get(),
        b.state.register("r").expect("h").get()
    );
    assert_ne!(a.state.root_hash(), b.state.root_hash());
}
