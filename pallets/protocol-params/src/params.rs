//! The parameter set: one struct with a field per tunable parameter, one change per
//! field, and the rules every set must keep (each field within the runtime's bounds;
//! the relations between fields in [`ProtocolParams::check_relations`]).
//!
//! One macro lists the parameters once, so the struct, the change enum, their names
//! and the bounds check cannot drift apart.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::{
    traits::{Saturating, UniqueSaturatedInto},
    Perbill,
};

/// How a parameter's value reads: the CLI parses and prints each kind its own way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ParamKind {
    /// An amount in the chain's smallest unit.
    Balance,
    /// A number of blocks.
    Blocks,
    /// A share, in parts per billion.
    Share,
    /// A count, or (for `offchain_time_budget`) milliseconds.
    Number,
}

/// Converts a field's value to and from the one raw form (`u128`) the CLI uses.
pub trait RawValue: Sized {
    const KIND: ParamKind;
    fn to_raw(&self) -> u128;
    fn from_raw(raw: u128) -> Option<Self>;
}

impl RawValue for Perbill {
    const KIND: ParamKind = ParamKind::Share;
    fn to_raw(&self) -> u128 {
        self.deconstruct().into()
    }
    fn from_raw(raw: u128) -> Option<Self> {
        let parts = u32::try_from(raw).ok()?;
        (parts <= 1_000_000_000).then(|| Perbill::from_parts(parts))
    }
}

macro_rules! number_value {
    ($ty:ty) => {
        impl RawValue for $ty {
            const KIND: ParamKind = ParamKind::Number;
            fn to_raw(&self) -> u128 {
                (*self).into()
            }
            fn from_raw(raw: u128) -> Option<Self> {
                <$ty>::try_from(raw).ok()
            }
        }
    };
}
number_value!(u32);
number_value!(u64);

/// A balance or a block number: `TryFrom<u128>` and saturating back into it.
fn generic_from_raw<V: TryFrom<u128>>(raw: u128) -> Option<V> {
    V::try_from(raw).ok()
}

macro_rules! protocol_params {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident / $variant:ident : $ty:ident,
    )*) => {
        /// The protocol's tunable parameters (pallet-inference reads each through the
        /// runtime's `Get` adaptors).
        #[derive(
            Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, Copy,
            PartialEq, Eq, Debug,
        )]
        pub struct ProtocolParams<Balance, BlockNumber> {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// One parameter's new value: what a governance motion sets.
        #[derive(
            Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, Copy,
            PartialEq, Eq, Debug,
        )]
        pub enum ParamChange<Balance, BlockNumber> {
            $( $(#[doc = $doc])* $variant($ty), )*
        }

        /// Every parameter's name, in the struct's order (the CLI's spelling is the
        /// same with `-` for `_`).
        pub const PARAM_NAMES: &[&str] = &[$( stringify!($field), )*];

        impl<Balance, BlockNumber> ParamChange<Balance, BlockNumber> {
            /// The parameter's name (a field of [`ProtocolParams`]).
            pub fn name(&self) -> &'static str {
                match self { $( Self::$variant(_) => stringify!($field), )* }
            }
        }

        impl<Balance, BlockNumber> ParamChange<Balance, BlockNumber>
        where
            Balance: TryFrom<u128> + UniqueSaturatedInto<u128> + Copy,
            BlockNumber: TryFrom<u128> + UniqueSaturatedInto<u128> + Copy,
        {
            /// The value in raw form, with how to read it.
            pub fn raw(&self) -> (ParamKind, u128) {
                match self { $( Self::$variant(v) => protocol_params!(@raw $ty, v), )* }
            }

            /// The change that sets parameter `name` to `raw`; `None` for an unknown name
            /// or a value its type cannot hold.
            pub fn from_raw(name: &str, raw: u128) -> Option<Self> {
                match name {
                    $( stringify!($field) =>
                        protocol_params!(@from $ty, raw).map(Self::$variant), )*
                    _ => None,
                }
            }
        }

        impl<Balance: Copy + PartialOrd, BlockNumber: Copy + PartialOrd>
            ProtocolParams<Balance, BlockNumber>
        {
            /// Applies `change`; returns the value it replaced, as a change.
            pub fn apply(&mut self, change: ParamChange<Balance, BlockNumber>)
                -> ParamChange<Balance, BlockNumber>
            {
                match change {
                    $( ParamChange::$variant(v) => {
                        ParamChange::$variant(core::mem::replace(&mut self.$field, v))
                    } )*
                }
            }

            /// The current value of the parameter `change` sets.
            pub fn value_of(&self, change: &ParamChange<Balance, BlockNumber>)
                -> ParamChange<Balance, BlockNumber>
            {
                match change { $( ParamChange::$variant(_) => ParamChange::$variant(self.$field), )* }
            }

            /// Every value, as changes, in the struct's order.
            pub fn values(&self) -> [ParamChange<Balance, BlockNumber>; PARAM_NAMES.len()] {
                [$( ParamChange::$variant(self.$field), )*]
            }

            /// Whether `change`'s value lies within `min..=max` (the same parameter's).
            pub fn admits(min: &Self, max: &Self, change: &ParamChange<Balance, BlockNumber>)
                -> bool
            {
                match change {
                    $( ParamChange::$variant(v) => min.$field <= *v && *v <= max.$field, )*
                }
            }

            /// The first field outside `min..=max`, by name.
            pub fn outside(&self, min: &Self, max: &Self) -> Option<&'static str> {
                $(
                    if self.$field < min.$field || self.$field > max.$field {
                        return Some(stringify!($field));
                    }
                )*
                None
            }
        }
    };
    (@raw Balance, $v:ident) => { (ParamKind::Balance, (*$v).unique_saturated_into()) };
    (@raw BlockNumber, $v:ident) => { (ParamKind::Blocks, (*$v).unique_saturated_into()) };
    (@raw $ty:ident, $v:ident) => { (<$ty as RawValue>::KIND, RawValue::to_raw($v)) };
    (@from Balance, $raw:ident) => { generic_from_raw::<Balance>($raw) };
    (@from BlockNumber, $raw:ident) => { generic_from_raw::<BlockNumber>($raw) };
    (@from $ty:ident, $raw:ident) => { <$ty as RawValue>::from_raw($raw) };
}

protocol_params! {
    /// The least bond an executor registers with (and keeps, to stay active).
    min_executor_bond / MinExecutorBond: Balance,
    /// Blocks an unbonding executor's bond stays held (slashable) after it leaves.
    unbonding_period / UnbondingPeriod: BlockNumber,
    /// Blocks an assigned executor has to post its result.
    execution_timeout / ExecutionTimeout: BlockNumber,
    /// Blocks a posted result stays open to challenge.
    challenge_period / ChallengePeriod: BlockNumber,
    /// Blocks each party of a dispute game has per move.
    move_timeout / MoveTimeout: BlockNumber,
    /// Blocks a settled request and its result stay in state before pruning.
    result_retention / ResultRetention: BlockNumber,
    /// Taken from an executor's bond for a missed execution deadline.
    missed_deadline_slash / MissedDeadlineSlash: Balance,
    /// Taken from an executor's bond for a result proven wrong.
    result_slash / ResultSlash: Balance,
    /// Taken from an executor's bond for an assignment it hands back.
    release_slash / ReleaseSlash: Balance,
    /// The winner's share of what the loser of a dispute game forfeits.
    challenge_reward / ChallengeReward: Perbill,
    /// The requester's share of a wrong result's slash.
    requester_compensation / RequesterCompensation: Perbill,
    /// The protocol's cut of each request's fee (burnt).
    protocol_fee / ProtocolFee: Perbill,
    /// Deadlines an executor may miss in a row before it stops serving a model.
    max_missed_in_row / MaxMissedInRow: u32,
    /// The storage deposit every request holds until it is pruned...
    request_deposit_base / RequestDepositBase: Balance,
    /// ...plus this per byte of its input and its result's largest size.
    deposit_per_byte / DepositPerByte: Balance,
    /// The share of results each watcher re-checks off chain.
    watch_share / WatchShare: Perbill,
    /// The most models a node runs off chain after each block.
    max_offchain_runs / MaxOffchainRuns: u32,
    /// Milliseconds after which a node starts no more off-chain runs in a block.
    offchain_time_budget / OffchainTimeBudget: u64,
    /// Blocks after which an off-chain transaction that did not land is sent again.
    offchain_retry_blocks / OffchainRetryBlocks: u32,
}

/// A relation between parameters that a set broke.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BrokenRelation {
    /// `release_slash > missed_deadline_slash`: handing an assignment back would cost
    /// more than missing it, so executors would sit on work they cannot do.
    ReleaseAboveMissedSlash,
    /// `challenge_reward + requester_compensation > 100%`: the shares would pay out more
    /// than the slash takes.
    SlashSharesAboveWhole,
    /// `unbonding_period < execution_timeout + challenge_period`: an executor could
    /// leave with its bond before its last result's window closes.
    UnbondingTooShort,
    /// `result_slash` or `missed_deadline_slash` above `min_executor_bond`: a
    /// minimally bonded executor could not pay the slash its fault costs.
    SlashAboveMinBond,
    /// `offchain_retry_blocks` not below `move_timeout` and `execution_timeout`: one
    /// dropped transaction would hold an honest node's later ones (queued behind its
    /// nonce) past a deadline, and it would lose a game or miss an execution.
    RetryNotBeforeDeadlines,
}

impl<Balance, BlockNumber> ProtocolParams<Balance, BlockNumber>
where
    Balance: Copy + PartialOrd,
    BlockNumber: Copy + PartialOrd + Saturating + From<u32>,
{
    /// Checks the relations between parameters that every set must keep.
    pub fn check_relations(&self) -> Result<(), BrokenRelation> {
        if self.release_slash > self.missed_deadline_slash {
            return Err(BrokenRelation::ReleaseAboveMissedSlash);
        }
        if self
            .challenge_reward
            .deconstruct()
            .saturating_add(self.requester_compensation.deconstruct())
            > Perbill::one().deconstruct()
        {
            return Err(BrokenRelation::SlashSharesAboveWhole);
        }
        if self.unbonding_period < self.execution_timeout.saturating_add(self.challenge_period) {
            return Err(BrokenRelation::UnbondingTooShort);
        }
        if self.result_slash > self.min_executor_bond
            || self.missed_deadline_slash > self.min_executor_bond
        {
            return Err(BrokenRelation::SlashAboveMinBond);
        }
        let retry = BlockNumber::from(self.offchain_retry_blocks);
        if retry >= self.move_timeout || retry >= self.execution_timeout {
            return Err(BrokenRelation::RetryNotBeforeDeadlines);
        }
        Ok(())
    }
}
