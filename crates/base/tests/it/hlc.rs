use tabmesh_base::{ClockReport, Hlc, HlcClock, MAX_DRIFT_MS};
use tabmesh_testkit::test;

#[test]
fn tick_is_strictly_increasing_even_when_the_wall_clock_goes_back() {
    let mut c = HlcClock::new();
    let a = c.tick(10_000);
    let b = c.tick(10_000);
    let d = c.tick(5_000); // wall clock jumped back
    let e = c.tick(20_000);
    assert!(a < b && b < d && d < e);
    assert_eq!(d.wall_ms, 10_000);
    assert_eq!(e, Hlc::new(20_000, 0));
}

#[test]
fn observe_moves_the_clock_past_a_remote_stamp_within_drift() {
    let mut c = HlcClock::new();
    let remote = Hlc::new(10_000 + MAX_DRIFT_MS, 7);
    assert_eq!(
        c.observe(Hlc::new(10_000 + MAX_DRIFT_MS - 1, 7), 10_000),
        ClockReport::InRange
    );
    assert_eq!(
        c.observe(Hlc::new(10_000 + MAX_DRIFT_MS, 0), 10_000),
        ClockReport::InRange
    );
    assert!(c.tick(10_000) > Hlc::new(10_000 + MAX_DRIFT_MS, 0));
    // Exactly at the ceiling with a logical part is beyond it.
    assert!(matches!(
        c.observe(remote, 10_000),
        ClockReport::FarAhead { .. }
    ));
}

#[test]
fn a_far_future_remote_stamp_is_reported_and_does_not_drag_the_clock() {
    let mut c = HlcClock::new();
    let now = 1_000_000;
    let far = Hlc::new(now + 3_600_000, 0);
    assert_eq!(
        c.observe(far, now),
        ClockReport::FarAhead {
            ahead_ms: 3_600_000
        }
    );
    // The local clock stopped at now + MAX_DRIFT_MS.
    assert_eq!(c.last(), Hlc::new(now + MAX_DRIFT_MS, 0));
    let next = c.tick(now);
    assert!(next < far);
    assert_eq!(next, Hlc::new(now + MAX_DRIFT_MS, 1));
}

#[test]
fn logical_overflow_carries_into_the_wall_part() {
    let mut c = HlcClock::resume(Hlc::new(5, u32::MAX));
    assert_eq!(c.tick(0), Hlc::new(6, 0));
}

#[test]
fn hlc_round_trips_through_the_codec() {
    let h = Hlc::new(u64::MAX - 3, 42);
    let mut w = tabmesh_base::codec::Writer::unversioned();
    h.encode(&mut w);
    let bytes = w.finish();
    assert_eq!(bytes.len(), Hlc::ENCODED_LEN);
    let mut r = tabmesh_base::codec::Reader::unversioned(&bytes);
    assert_eq!(Hlc::decode(&mut r), Ok(h));
    assert_eq!(r.finish(), Ok(()));
}

#[test]
fn the_successor_of_the_largest_stamp_is_not_smaller() {
    assert_eq!(Hlc::MAX.successor(), Hlc::MAX);
    assert_eq!(Hlc::new(u64::MAX, 7).successor(), Hlc::new(u64::MAX, 8));
    let mut c = HlcClock::resume(Hlc::MAX);
    assert_eq!(c.tick(0), Hlc::MAX);
}
