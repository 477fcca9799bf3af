//! Which alert fingerprints may be stored in `alerts` (SQLite), so that a group commit of new
//! alerts does not look each one up: for a fingerprint never seen, the lookup was as much work
//! as the whole append to the intake.
//!
//! A Bloom filter: "absent" is certain, "present" means "look it up". It grows in layers, each
//! twice the one before, so it never needs rebuilding; at about 10 bits an alert (1% false
//! positives a layer), a million alerts cost 1.2 MB. Every fingerprint that reaches `alerts` on
//! SQLite comes through this process's intake (added before its commit) or was there at start
//! (added by a scan in the background, until which every lookup is made): nothing is ever in
//! `alerts` and missing here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bits per alert of a layer: about 1% false positives with [`HASHES`] probes.
const BITS_PER_ALERT: usize = 10;
const HASHES: u64 = 7;
/// The first layer's capacity.
const FIRST_LAYER: usize = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct StoredFingerprints {
    layers: Mutex<Vec<Layer>>,
    /// The start-up scan of `alerts` is done: until then, anything may be stored.
    ready: AtomicBool,
}

#[derive(Debug)]
struct Layer {
    bits: Vec<u64>,
    /// Bits in the layer, less one (a power of two).
    mask: u64,
    capacity: usize,
    len: usize,
}

impl Layer {
    fn new(capacity: usize) -> Self {
        let bits = (capacity * BITS_PER_ALERT).next_power_of_two().max(64);
        Layer {
            bits: vec![0; bits / 64],
            mask: bits as u64 - 1,
            capacity,
            len: 0,
        }
    }

    /// Double hashing: fingerprints are hashes already, and the second probe step comes from
    /// mixing the fingerprint again so that it does not share bits with the first.
    fn probes(&self, fp: u64) -> impl Iterator<Item = u64> + '_ {
        let step = mix(fp) | 1;
        (0..HASHES).map(move |i| fp.wrapping_add(i.wrapping_mul(step)) & self.mask)
    }

    fn insert(&mut self, fp: u64) {
        let probes: Vec<u64> = self.probes(fp).collect();
        for p in probes {
            self.bits[(p / 64) as usize] |= 1 << (p % 64);
        }
        self.len += 1;
    }

    fn contains(&self, fp: u64) -> bool {
        self.probes(fp)
            .all(|p| self.bits[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl StoredFingerprints {
    /// Records fingerprints that are, or are about to be, stored.
    pub(crate) fn insert(&self, fps: impl IntoIterator<Item = u64>) {
        let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        for fp in fps {
            let full = layers.last().is_none_or(|l| l.len >= l.capacity);
            if full {
                let capacity = layers.last().map_or(FIRST_LAYER, |l| l.capacity * 2);
                layers.push(Layer::new(capacity));
            }
            if let Some(l) = layers.last_mut() {
                l.insert(fp);
            }
        }
    }

    /// False only when `fp` is certainly not stored.
    #[cfg(test)]
    fn may_contain(&self, fp: u64) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return true;
        }
        let layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        layers.iter().any(|l| l.contains(fp))
    }

    /// Keeps only the fingerprints that may be stored, under one lock.
    pub(crate) fn retain_maybe_stored(&self, fps: &mut Vec<u64>) {
        if !self.ready.load(Ordering::Acquire) {
            return;
        }
        let layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        fps.retain(|fp| layers.iter().any(|l| l.contains(*fp)));
    }

    /// The start-up scan is done.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        let layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
        layers.iter().map(|l| l.bits.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_the_scan_is_done_anything_may_be_stored() {
        let s = StoredFingerprints::default();
        assert!(s.may_contain(42));
        s.set_ready();
        assert!(!s.may_contain(42));
        s.insert([42]);
        assert!(s.may_contain(42));
    }

    #[test]
    fn what_was_inserted_is_always_found_and_few_others_are() {
        let s = StoredFingerprints::default();
        s.set_ready();
        // Past the first layer, so that a second one is made and both are asked.
        let n = FIRST_LAYER + FIRST_LAYER / 2;
        s.insert((0..n as u64).map(mix));
        assert!((0..n as u64).map(mix).all(|fp| s.may_contain(fp)));
        let mut others: Vec<u64> = (0..100_000u64).map(|i| mix(i + (1 << 40))).collect();
        let asked = others.len();
        s.retain_maybe_stored(&mut others);
        // Two layers of about 1% each.
        assert!(
            others.len() < asked * 3 / 100,
            "{} of {asked}",
            others.len()
        );
        assert!(
            s.bytes() <= 6 * 1024 * 1024,
            "{} bytes for {n} fingerprints",
            s.bytes()
        );
    }
}
