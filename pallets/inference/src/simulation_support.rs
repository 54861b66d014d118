//! What the adversarial simulation of the game uses: a seeded generator, call helpers and the
//! attacker that bonds again whenever it has been deactivated.

#![allow(clippy::unwrap_used)]

use crate::{mock::*, Executors};
use frame_support::BoundedVec;

/// splitmix64: small, seeded, good enough for a simulation.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn bounded<S: frame_support::traits::Get<u32>>(v: Vec<u8>) -> BoundedVec<u8, S> {
    v.try_into().unwrap()
}

pub fn signed(who: AccountId) -> RuntimeOrigin {
    RuntimeOrigin::signed(who)
}

/// Each of `adversaries` that was deactivated and may leave withdraws and bonds again
/// (while it has the funds): a determined attacker keeps coming back. Returns how many did.
pub fn rebond_deactivated(adversaries: impl Iterator<Item = AccountId>, now: u64) -> u64 {
    let mut rebonds = 0;
    for who in adversaries {
        let Some(info) = Executors::<Test>::get(who) else {
            continue;
        };
        if let crate::ExecutorStatus::Deactivated { until } = info.status {
            if now >= until
                && info.obligations == 0
                && Inference::withdraw_bond(signed(who)).is_ok()
                && bond_and_serve(who, 1_000).is_ok()
            {
                rebonds += 1;
            }
        }
    }
    rebonds
}
