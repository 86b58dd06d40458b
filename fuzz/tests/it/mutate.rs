//! Seeded random inputs and mutations of valid ones.

use tabmesh_base::codec::VERSION;
use tabmesh_base::DetRng;

/// Bytes chosen more often than at random: the boundaries of tags, lengths and booleans.
const INTERESTING: [u8; 9] = [0, 1, 2, 0x0f, 0x10, 0x7f, 0x80, 0xfe, 0xff];

/// A random input: mostly short, sometimes up to 4 KiB; usually starting with the codec's version
/// byte so it reaches past the first check.
pub(crate) fn random_input(rng: &mut DetRng) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => rng.index(8),
        1 => rng.index(64),
        2 => rng.index(512),
        _ => rng.index(4096),
    };
    let mut v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    if let Some(first) = v.first_mut() {
        if rng.chance(0.75) {
            *first = VERSION;
        }
    }
    v
}

/// One to four mutations of a random seed: bit flips, byte sets, truncations, insertions,
/// deletions, duplicated chunks, corrupted length fields, splices with another seed, moved 32-byte
/// windows (ids). Returns the input and what was done to which seed.
pub(crate) fn mutate(rng: &mut DetRng, seeds: &[Vec<u8>]) -> (Vec<u8>, String) {
    let j = rng.index(seeds.len());
    let mut v = seeds[j].clone();
    let mut how = Vec::new();
    for _ in 0..=rng.below(3) {
        how.push(step(rng, &mut v, seeds));
    }
    (v, format!("seed #{j}: {}", how.join(", ")))
}

fn step(rng: &mut DetRng, v: &mut Vec<u8>, seeds: &[Vec<u8>]) -> String {
    let len = v.len();
    match rng.below(10) {
        0 if len > 0 => {
            let (pos, bit) = (rng.index(len), rng.below(8));
            v[pos] ^= 1 << bit;
            format!("flip bit {bit} of byte {pos}")
        }
        1 if len > 0 => {
            let pos = rng.index(len);
            v[pos] = if rng.chance(0.5) {
                INTERESTING[rng.index(INTERESTING.len())]
            } else {
                rng.next_u64() as u8
            };
            format!("set byte {pos} to {:#04x}", v[pos])
        }
        2 => {
            let to = rng.index(len + 1);
            v.truncate(to);
            format!("truncate to {to}")
        }
        3 => {
            let pos = rng.index(len + 1);
            let n = 1 + rng.index(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            v.splice(pos..pos, bytes);
            format!("insert {n} bytes at {pos}")
        }
        4 if len > 0 => {
            let pos = rng.index(len);
            let n = (1 + rng.index(16)).min(len - pos);
            v.drain(pos..pos + n);
            format!("delete {n} bytes at {pos}")
        }
        5 if len > 0 => {
            let from = rng.index(len);
            let n = (1 + rng.index(64)).min(len - from);
            let chunk = v[from..from + n].to_vec();
            let to = rng.index(len + 1);
            v.splice(to..to, chunk);
            format!("copy {n} bytes from {from} to {to}")
        }
        6 | 7 if len >= 4 => length_field(rng, v),
        8 => {
            let other = &seeds[rng.index(seeds.len())];
            let a = rng.index(len + 1);
            let b = rng.index(other.len() + 1);
            v.truncate(a);
            v.extend_from_slice(&other[b..]);
            format!("splice at {a} with another seed from {b}")
        }
        9 if len >= 64 => {
            let from = rng.index(len - 31);
            let to = rng.index(len - 31);
            let window: Vec<u8> = v[from..from + 32].to_vec();
            v[to..to + 32].copy_from_slice(&window);
            format!("copy 32 bytes from {from} over {to}")
        }
        _ => {
            v.push(rng.next_u64() as u8);
            "append a byte".to_string()
        }
    }
}

/// Corrupts a little-endian `u32` that looks like a length prefix (its value fits in what follows
/// it), or any four bytes when none does.
fn length_field(rng: &mut DetRng, v: &mut [u8]) -> String {
    let len = v.len();
    let read = |v: &[u8], p: usize| u32::from_le_bytes([v[p], v[p + 1], v[p + 2], v[p + 3]]);
    let candidates: Vec<usize> = (0..=len - 4)
        .filter(|&p| {
            let n = read(v, p) as usize;
            n > 0 && n <= len - p - 4
        })
        .collect();
    let pos = if !candidates.is_empty() && rng.chance(0.8) {
        candidates[rng.index(candidates.len())]
    } else {
        rng.index(len - 3)
    };
    let old = read(v, pos);
    let rest = (len - pos - 4) as u32;
    let choices = [
        0,
        old.wrapping_sub(1),
        old.wrapping_add(1),
        rest,
        rest.wrapping_add(1),
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
        0x0100_0000,
    ];
    let new = choices[rng.index(choices.len())];
    v[pos..pos + 4].copy_from_slice(&new.to_le_bytes());
    format!("set the u32 at {pos} from {old} to {new}")
}

/// The base64url alphabet (no padding) of invite links.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = B64.iter().position(|x| *x == c)?;
        bits = bits << 6 | v as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

/// An invite link's mutation: the bytes under its base64url are mutated (as [`mutate`] does),
/// then encoded again behind the prefix, so the input reaches the invitation's decoder.
pub(crate) fn mutate_link(rng: &mut DetRng, seeds: &[Vec<u8>]) -> (Vec<u8>, String) {
    const PREFIX: &str = "tabmesh-invite:";
    let payloads: Vec<Vec<u8>> = seeds
        .iter()
        .filter_map(|s| std::str::from_utf8(s).ok()?.strip_prefix(PREFIX))
        .filter_map(b64_decode)
        .collect();
    assert!(!payloads.is_empty(), "no plain invite link among the seeds");
    let (bytes, how) = mutate(rng, &payloads);
    let link = format!("{PREFIX}{}", b64_encode(&bytes));
    (link.into_bytes(), format!("the link's bytes, {how}"))
}
