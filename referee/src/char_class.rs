//! Unicode character classes the canonical tokenizers share, from the generated tables
//! (`unicode_tables.rs`) or spelled out, so no toolchain table decides them.

use crate::unicode_tables::{LETTER, NUMBER};

/// Whether `c` lies in one of `table`'s sorted, disjoint, inclusive ranges.
pub(crate) fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                core::cmp::Ordering::Less
            } else if lo > c {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The Unicode White_Space property (unchanged since Unicode 6.0; `char::is_whitespace`
/// is the same set), spelled out so no toolchain table decides it.
pub(crate) fn is_white_space(c: char) -> bool {
    matches!(c as u32,
        0x09..=0x0D | 0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029
        | 0x202F | 0x205F | 0x3000)
}

/// General category L* (`\p{L}`).
pub(crate) fn is_letter(c: char) -> bool {
    in_table(LETTER, c)
}

/// General category N* (`\p{N}`).
pub(crate) fn is_number(c: char) -> bool {
    in_table(NUMBER, c)
}
