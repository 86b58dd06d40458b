use tabmesh_testkit::test;

use tabmesh_base::Hash;
use tabmesh_runtime::{CacheStats, Limits, Runtime, RuntimeError};

use super::support::{call, module, TestHost};

fn app(n: u32) -> Vec<u8> {
    module(
        1,
        &format!(r#"(func (export "run") (drop (i32.const {n})))"#),
    )
}

#[test]
fn a_module_is_compiled_once_and_then_served_from_the_cache() {
    let bytes = app(1);
    let mut rt = Runtime::default();
    let mut host = TestHost::default();
    let hash = rt.load(&bytes).expect("loads");
    assert_eq!(hash, Hash::of(&bytes), "keyed by the SHA-256 of the bytes");
    assert_eq!(rt.load(&bytes), Ok(hash));
    for _ in 0..3 {
        call(&mut rt, &bytes, "run", b"", &mut host).expect("by bytes");
        call(&mut rt, hash, "run", b"", &mut host).expect("by hash");
    }
    assert_eq!(
        rt.cache_stats(),
        CacheStats {
            compiled: 1,
            hits: 7,
            evicted: 0,
            cached: 1
        }
    );
}

#[test]
fn the_least_recently_used_module_is_evicted_first() {
    let mut rt = Runtime::new(Limits {
        max_cached_modules: 2,
        ..Limits::default()
    });
    let mut host = TestHost::default();
    let (a, b, c) = (app(1), app(2), app(3));
    let ha = rt.load(&a).expect("a");
    let hb = rt.load(&b).expect("b");
    call(&mut rt, ha, "run", b"", &mut host).expect("a is used again");
    let hc = rt.load(&c).expect("c evicts b");
    assert!(rt.contains(&ha) && rt.contains(&hc) && !rt.contains(&hb));
    assert_eq!(
        call(&mut rt, hb, "run", b"", &mut host),
        Err(RuntimeError::UnknownModule(hb))
    );
    call(&mut rt, &b, "run", b"", &mut host).expect("reloaded from its bytes");
    let stats = rt.cache_stats();
    assert_eq!((stats.compiled, stats.evicted, stats.cached), (4, 2, 2));
    assert!(rt.unload(&hb));
    assert!(!rt.contains(&hb));
}
