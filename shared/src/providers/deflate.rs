//! A fast zlib compressor for short inputs that emits, byte for byte, what flate2 with the
//! zlib-rs 0.6.8 backend emits at `Compression::default()` (level 6) with the zlib wrapper.
//!
//! Agora tokens are `"007" + base64(zlib(payload))`, so the compressed bytes are part of the
//! token and must not change. For a ~150-byte payload zlib-rs takes ~7 µs (resetting its
//! 64Ki-entry hash table, its level-6 parse, Huffman trees for a block that ends up fixed or
//! stored); this module re-implements the same pipeline with tables sized for the input:
//!
//! * the 2-byte zlib header `78 9c`;
//! * zlib-rs's `deflate_medium` LZ77 parse: its multiplicative 4-byte hash, the same hash chain
//!   updates (`quick_insert_string`/`insert_string`, including the "head == string" quirk), the
//!   same `longest_match` (chain 128, nice 128, first strictly longer match wins, lookahead clamp,
//!   which candidates get the `cur_match >= strstart` check), the one-step look-ahead with
//!   `fizzle_matches`, and the dropping of the look-ahead match whenever the lookahead falls
//!   below `MIN_LOOKAHEAD`;
//! * a single final block (inputs this short never fill zlib-rs's 16Ki-symbol buffer), stored,
//!   fixed or dynamic exactly as `zng_tr_flush_block` chooses. The fixed-code length is exact and
//!   cheap; a provable lower bound of the dynamic length ([`dynamic_bits_lower_bound`]) settles
//!   most blocks, and otherwise a port of zlib's tree construction (heap order with depth
//!   tie-breaking, length limiting, bit-length tree) gives the exact length and trees;
//! * the big-endian Adler-32 trailer.
//!
//! zlib-rs never clears its window between streams, and its look-ahead match search (whose
//! `lookahead` is that of the previous position) may compare past the end of the input, against
//! stale bytes of earlier streams. When a candidate matches up to the end of the input there,
//! the output is still determined (see [`Found::PastEnd`]); any other read past the end would
//! make the output depend on the compressor's history, and [`compress`] returns `None` so that
//! the caller uses its own compressor. (The differential tests never reach that case.) It also
//! returns `None` for inputs longer than [`MAX_INPUT`].

use std::cell::RefCell;

/// Longest input the fast path accepts.
pub const MAX_INPUT: usize = 1024;

const STD_MIN_MATCH: usize = 3;
const STD_MAX_MATCH: usize = 258;
const WANT_MIN_MATCH: usize = 4;
const MIN_LOOKAHEAD: usize = STD_MAX_MATCH + STD_MIN_MATCH + 1;
const W_SIZE: usize = 1 << 15;
const WINDOW_SIZE: usize = 2 * W_SIZE;
const MAX_DIST: usize = W_SIZE - MIN_LOOKAHEAD;

// Level 6 of zlib-rs's configuration table: deflate_medium(good 8, lazy 16, nice 128, chain 128).
const GOOD_MATCH: usize = 8;
const MAX_INSERT_LENGTH: usize = 16;
const NICE_MATCH: usize = 128;
const MAX_CHAIN: u16 = 128;

const LITERALS: usize = 256;
const END_BLOCK: usize = 256;
const LENGTH_CODES: usize = 29;
const L_CODES: usize = LITERALS + 1 + LENGTH_CODES;
const D_CODES: usize = 30;
const BL_CODES: usize = 19;
const HEAP_SIZE: usize = 2 * L_CODES + 1;
const MAX_BITS: usize = 15;
const MAX_BL_BITS: u16 = 7;
const REP_3_6: usize = 16;
const REPZ_3_10: usize = 17;
const REPZ_11_138: usize = 18;

const EXTRA_LBITS: [u8; LENGTH_CODES] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const EXTRA_DBITS: [u8; D_CODES] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const EXTRA_BLBITS: [u8; BL_CODES] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
const BL_ORDER: [u8; BL_CODES] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// zlib's `_length_code` and `base_length`, as `tr_static_init` builds them.
const LENGTH_TABLES: ([u8; 256], [u8; LENGTH_CODES]) = {
    let mut length_code = [0u8; 256];
    let mut base_length = [0u8; LENGTH_CODES];
    let mut length = 0usize;
    let mut code = 0;
    while code < LENGTH_CODES - 1 {
        base_length[code] = length as u8;
        let mut n = 0;
        while n < (1 << EXTRA_LBITS[code]) {
            length_code[length] = code as u8;
            length += 1;
            n += 1;
        }
        code += 1;
    }
    // Length 258 (lc 255) uses the last code rather than code 27 with extra bits 31.
    length_code[length - 1] = code as u8;
    (length_code, base_length)
};
const LENGTH_CODE: [u8; 256] = LENGTH_TABLES.0;
const BASE_LENGTH: [u8; LENGTH_CODES] = LENGTH_TABLES.1;

/// zlib's `_dist_code` and `base_dist`.
const DIST_TABLES: ([u8; 512], [u16; D_CODES]) = {
    let mut dist_code = [0u8; 512];
    let mut base_dist = [0u16; D_CODES];
    let mut dist = 0usize;
    let mut code = 0;
    while code < 16 {
        base_dist[code] = dist as u16;
        let mut n = 0;
        while n < (1 << EXTRA_DBITS[code]) {
            dist_code[dist] = code as u8;
            dist += 1;
            n += 1;
        }
        code += 1;
    }
    dist >>= 7;
    while code < D_CODES {
        base_dist[code] = (dist << 7) as u16;
        let mut n = 0;
        while n < (1 << (EXTRA_DBITS[code] - 7)) {
            dist_code[256 + dist] = code as u8;
            dist += 1;
            n += 1;
        }
        code += 1;
    }
    (dist_code, base_dist)
};
const DIST_CODE: [u8; 512] = DIST_TABLES.0;
const BASE_DIST: [u16; D_CODES] = DIST_TABLES.1;

const fn d_code(dist: usize) -> usize {
    (if dist < 256 {
        DIST_CODE[dist]
    } else {
        DIST_CODE[256 + (dist >> 7)]
    }) as usize
}

/// The fixed literal/length code lengths of RFC 1951 (zlib-rs's STATIC_LTREE lengths).
const STATIC_LLEN: [u8; L_CODES + 2] = {
    let mut t = [0u8; L_CODES + 2];
    let mut n = 0;
    while n < L_CODES + 2 {
        t[n] = if n <= 143 {
            8
        } else if n <= 255 {
            9
        } else if n <= 279 {
            7
        } else {
            8
        };
        n += 1;
    }
    t
};

/// The fixed literal/length codes, bit-reversed as zlib sends them.
const STATIC_LCODE: [u16; L_CODES + 2] = {
    let mut bl_count = [0u16; MAX_BITS + 1];
    let mut n = 0;
    while n < L_CODES + 2 {
        bl_count[STATIC_LLEN[n] as usize] += 1;
        n += 1;
    }
    let mut next_code = [0u16; MAX_BITS + 1];
    let mut code = 0u16;
    let mut bits = 1;
    while bits <= MAX_BITS {
        code = (code + bl_count[bits - 1]) << 1;
        next_code[bits] = code;
        bits += 1;
    }
    let mut t = [0u16; L_CODES + 2];
    let mut n = 0;
    while n < L_CODES + 2 {
        let len = STATIC_LLEN[n] as u32;
        t[n] = next_code[len as usize].reverse_bits() >> (16 - len);
        next_code[len as usize] += 1;
        n += 1;
    }
    t
};

/// Every fixed distance code is 5 bits long.
const STATIC_DLEN: [u8; D_CODES] = [5; D_CODES];

/// Tests build zlib's trees even when the lower bound decides, to check the bound.
const VERIFY_BOUND: bool = cfg!(test);

/// Test-only counters of which branches the differential tests reach.
#[cfg(test)]
pub(crate) mod stats {
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub static STORED: AtomicUsize = AtomicUsize::new(0);
    pub static FIXED: AtomicUsize = AtomicUsize::new(0);
    pub static DYNAMIC: AtomicUsize = AtomicUsize::new(0);
    pub static BL_OVERFLOW: AtomicUsize = AtomicUsize::new(0);
    pub static LOOK_AHEAD: AtomicUsize = AtomicUsize::new(0);
    pub static FIZZLED: AtomicUsize = AtomicUsize::new(0);
    pub static DISCARDED_NEXT: AtomicUsize = AtomicUsize::new(0);
    pub static CHAIN_EXHAUSTED: AtomicUsize = AtomicUsize::new(0);
    pub static MATCH_258: AtomicUsize = AtomicUsize::new(0);
    pub static HISTORY_DEPENDENT: AtomicUsize = AtomicUsize::new(0);
    pub static PAST_END: AtomicUsize = AtomicUsize::new(0);
    pub static BOUND_DECIDES: AtomicUsize = AtomicUsize::new(0);

    pub fn hit(c: &AtomicUsize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

macro_rules! stat {
    ($name:ident) => {
        #[cfg(test)]
        stats::hit(&stats::$name);
    };
}

/// Compresses `input` exactly as flate2 (zlib-rs 0.6.8, level 6, zlib wrapper) does, or returns
/// `None` when the input is longer than [`MAX_INPUT`] or the exact zlib-rs output could depend on
/// stale window bytes of the compressor's previous streams.
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() > MAX_INPUT {
        return None;
    }
    SCRATCH.with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        s.compress(input)
    })
}

thread_local! {
    static SCRATCH: RefCell<Box<Scratch>> = RefCell::new(Box::new(Scratch::new()));
}

/// Hash-head slots: open addressing keyed by the 16-bit zlib-rs hash; at most half full.
const HEAD_SLOTS: usize = 2 * MAX_INPUT;

/// One tree node as zlib keeps it: `a` is freq then code, `b` is dad then len.
#[derive(Clone, Copy, Default)]
struct Node {
    a: u16,
    b: u16,
}

/// A symbol of the single block: `dist == 0` is the literal `lc`, otherwise a match of length
/// `lc + 3` at distance `dist`.
#[derive(Clone, Copy, Default)]
struct Sym {
    dist: u16,
    lc: u8,
}

struct Scratch {
    head: [u32; HEAD_SLOTS],
    prev: [u16; MAX_INPUT],
    hashes: [u16; MAX_INPUT],
    syms: [Sym; MAX_INPUT],
    ltree: [Node; HEAP_SIZE],
    dtree: [Node; 2 * D_CODES + 1],
    bltree: [Node; 2 * BL_CODES + 1],
    heap: Heap,
    used: Used,
    leaves: Groups,
    merged: Groups,
}

/// Result of [`Chains::longest_match`].
enum Found {
    /// zlib-rs's `(length, match_start)`.
    Match(usize, u16),
    /// In the look-ahead search only: a candidate matches every remaining input byte, and
    /// zlib-rs would compare further, with stale window bytes, so the length and start of its
    /// result depend on the compressor's history. That result never reaches the output: see
    /// the handling in [`Scratch::parse`].
    PastEnd,
}

#[derive(Clone, Copy, Default, Debug)]
struct Match {
    match_start: u16,
    match_length: u16,
    strstart: u16,
    orgstart: u16,
}

#[inline(always)]
fn hash(val: u32) -> u32 {
    val.wrapping_mul(2654435761) >> 16
}

/// zlib-rs's hash chains over the input, with a small hash-head table.
struct Chains<'a> {
    win: &'a [u8],
    /// The hash of the 4 bytes at each position that has 4 bytes.
    hashes: &'a [u16],
    head: &'a mut [u32],
    mask: usize,
    prev: &'a mut [u16],
}

impl Chains<'_> {
    /// `StandardHashCalc::quick_insert_string`: returns the previous head (0 = none).
    #[inline(always)]
    fn insert(&mut self, p: usize) -> Option<u16> {
        let h = *self.hashes.get(p)? as u32;
        let entry = (h << 16) | 0x8000 | p as u32;
        let mut i = h as usize & self.mask;
        loop {
            let e = self.head[i];
            if e == 0 {
                // head[h] == 0: zlib-rs stores p unless p == 0 (then head stays 0).
                if p != 0 {
                    self.prev[p] = 0;
                    self.head[i] = entry;
                }
                return Some(0);
            }
            if e >> 16 == h {
                let head = (e & 0x7fff) as u16;
                if head as usize != p {
                    self.prev[p] = head;
                    self.head[i] = entry;
                }
                return Some(head);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// `StandardHashCalc::insert_string`.
    #[inline(always)]
    fn insert_run(&mut self, p: usize, count: usize) -> Option<()> {
        for q in p..p + count {
            self.insert(q)?;
        }
        Some(())
    }

    /// `longest_match` at level 6 with `prev_length == 0`. `lookahead` is zlib-rs's
    /// `state.lookahead`, which for the look-ahead search is that of the previous position.
    /// `None` when zlib-rs's result would depend on stale bytes past the end of the input in a
    /// way this module does not model.
    fn longest_match(
        &self,
        strstart: usize,
        lookahead: usize,
        mut cur_match: u16,
        mut match_start: u16,
    ) -> Option<Found> {
        let win = self.win;
        let n = win.len();
        let mut best_len = STD_MIN_MATCH - 1;
        let mut chain_length = MAX_CHAIN;
        if best_len >= GOOD_MATCH {
            chain_length >>= 2;
        }
        let limit = strstart.saturating_sub(MAX_DIST) as u16;
        // zlib-rs checks `cur_match >= strstart` only for the first candidate and for those
        // following a candidate that passed its quick check; skipped ones go on unchecked.
        let mut check = true;
        loop {
            let cur = cur_match as usize;
            if check && cur >= strstart {
                return Some(Found::Match(best_len, match_start));
            }
            // Bytes both strings have inside the input; zlib-rs compares at most 258.
            let lim = STD_MAX_MATCH.min(n - strstart).min(n.checked_sub(cur)?);
            let p = common_prefix(&win[cur..cur + lim], &win[strstart..strstart + lim]);
            if p == lim && lim < STD_MAX_MATCH && lim < lookahead {
                // zlib-rs would go on comparing stale bytes past the end of the input.
                if cur < strstart {
                    // The string matches up to the end of the input (only possible in the
                    // look-ahead search, whose `lookahead` is stale).
                    return Some(Found::PastEnd);
                }
                stat!(HISTORY_DEPENDENT);
                return None;
            }
            // The quick check: with best_len < 8, the first 8 bytes (a prefix longer than
            // best_len, or all 8 equal); otherwise the first 8 bytes and the 8 ending at
            // offset best_len.
            let pass = if best_len < 8 {
                p > best_len
            } else if p > best_len {
                true
            } else if p >= 8 {
                let e = best_len;
                if cur + e >= n || strstart + e >= n {
                    stat!(HISTORY_DEPENDENT);
                    return None;
                }
                win[cur + e - 7..=cur + e] == win[strstart + e - 7..=strstart + e]
            } else {
                false
            };
            if p > best_len {
                match_start = cur_match;
                if p >= lookahead {
                    return Some(Found::Match(lookahead, match_start));
                }
                best_len = p;
                if best_len >= NICE_MATCH {
                    return Some(Found::Match(best_len, match_start));
                }
            }
            check = pass;
            chain_length -= 1;
            if chain_length > 0 {
                cur_match = self.prev[cur];
                if cur_match > limit {
                    continue;
                }
            } else {
                stat!(CHAIN_EXHAUSTED);
            }
            return Some(Found::Match(best_len, match_start));
        }
    }

    /// `insert_match` of deflate_medium.
    #[inline(always)]
    fn insert_match(&mut self, lookahead: usize, mut m: Match) -> Option<()> {
        if lookahead <= m.match_length as usize + WANT_MIN_MATCH {
            return Some(());
        }
        if (m.match_length as usize) < WANT_MIN_MATCH {
            m.strstart += 1;
            m.match_length = m.match_length.checked_sub(1)?;
            if m.match_length > 0 && m.strstart >= m.orgstart {
                if m.strstart + m.match_length > m.orgstart {
                    self.insert_run(m.strstart as usize, m.match_length as usize)?;
                } else {
                    self.insert_run(m.strstart as usize, (m.orgstart - m.strstart + 1) as usize)?;
                }
            }
            return Some(());
        }
        if m.match_length as usize <= 16 * MAX_INSERT_LENGTH && lookahead >= WANT_MIN_MATCH {
            m.match_length -= 1;
            m.strstart += 1;
            if m.strstart >= m.orgstart {
                if m.strstart + m.match_length > m.orgstart {
                    self.insert_run(m.strstart as usize, m.match_length as usize)?;
                } else {
                    self.insert_run(m.strstart as usize, (m.orgstart - m.strstart + 1) as usize)?;
                }
            } else if m.orgstart < m.strstart + m.match_length {
                self.insert_run(
                    m.orgstart as usize,
                    (m.strstart + m.match_length - m.orgstart) as usize,
                )?;
            }
        } else {
            m.strstart += m.match_length;
            if m.strstart as usize >= STD_MIN_MATCH - 2 {
                self.insert(m.strstart as usize + 2 - STD_MIN_MATCH)?;
            }
        }
        Some(())
    }
}

/// Length of the common prefix of two equally long slices.
#[inline(always)]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let len = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= len {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap())
            ^ u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < len && a[i] == b[i] {
        i += 1;
    }
    i
}

/// `fizzle_matches` of deflate_medium.
fn fizzle_matches(window: &[u8], max_dist: usize, current: &mut Match, next: &mut Match) {
    if current.match_length <= 1 {
        return;
    }
    if current.match_length > 1 + next.match_start {
        return;
    }
    if current.match_length > 1 + next.strstart {
        return;
    }
    let m = window[next.match_start as usize + 1 - current.match_length as usize];
    let orig = window[next.strstart as usize + 1 - current.match_length as usize];
    if m != orig {
        return;
    }

    let limit = next.strstart.saturating_sub(max_dist as u16);
    let mut c = *current;
    let mut n = *next;
    let mut m = window[..n.match_start as usize].iter().rev();
    let mut orig = window[..n.strstart as usize].iter().rev();
    let mut changed = 0;
    while m.next() == orig.next() {
        if c.match_length < 1 {
            break;
        }
        if n.strstart <= limit {
            break;
        }
        if n.match_length >= 256 {
            break;
        }
        if n.match_start <= 1 {
            break;
        }
        n.strstart -= 1;
        n.match_start -= 1;
        n.match_length += 1;
        c.match_length -= 1;
        changed += 1;
    }
    if changed == 0 {
        return;
    }
    if c.match_length <= 1 && n.match_length != 2 {
        stat!(FIZZLED);
        n.orgstart += 1;
        *current = c;
        *next = n;
    }
}

/// zlib's Huffman heap (`Heap` in zlib-rs), with each entry packing the node's sort key (freq,
/// depth) above its index, `freq << 18 | depth << 10 | node`, so that sifting reads no other
/// array. `heap[len + 1]` is kept at `u32::MAX`, a right son that never wins.
struct Heap {
    heap: [u32; L_CODES + 2],
    heap_len: usize,
    /// Nodes in order of removal, filled downwards from HEAP_SIZE (zlib's `heap[heap_max..]`).
    sorted: [u16; HEAP_SIZE],
    heap_max: usize,
}

const NODE_BITS: u32 = 10;

#[inline(always)]
fn entry(freq: u16, depth: u32, node: usize) -> u32 {
    ((freq as u32) << 18) | (depth << NODE_BITS) | node as u32
}

/// The static part of a tree description.
struct Desc {
    /// Static code lengths (empty for the bit-length tree).
    stree_len: &'static [u8],
    extra: &'static [u8],
    base: usize,
    elems: usize,
    max_length: u16,
}

const L_DESC: Desc = Desc {
    stree_len: &STATIC_LLEN,
    extra: &EXTRA_LBITS,
    base: LITERALS + 1,
    elems: L_CODES,
    max_length: MAX_BITS as u16,
};
const D_DESC: Desc = Desc {
    stree_len: &STATIC_DLEN,
    extra: &EXTRA_DBITS,
    base: 0,
    elems: D_CODES,
    max_length: MAX_BITS as u16,
};
const BL_DESC: Desc = Desc {
    stree_len: &[],
    extra: &EXTRA_BLBITS,
    base: 0,
    elems: BL_CODES,
    max_length: MAX_BL_BITS,
};

/// Bit lengths of the current block: `opt_len` (dynamic trees) and `static_len`, wrapping like
/// zlib-rs's usize fields.
#[derive(Default)]
struct Lens {
    opt: usize,
    stat: usize,
}

impl Heap {
    fn new() -> Self {
        Heap {
            heap: [0; L_CODES + 2],
            heap_len: 0,
            sorted: [0; HEAP_SIZE],
            heap_max: 0,
        }
    }

    /// `pqdownheap`: ties go to the right son, and `v` stays above sons with an equal key.
    #[inline(always)]
    fn pqdownheap(&mut self, mut k: usize) {
        let len = self.heap_len;
        let heap = &mut self.heap[..len + 2];
        let v = heap[k];
        let v_key = v >> NODE_BITS;
        loop {
            let j = k << 1;
            if j > len {
                break;
            }
            let (left, right) = (heap[j], heap[j + 1]);
            let (son, at) = if right >> NODE_BITS <= left >> NODE_BITS {
                (right, j + 1)
            } else {
                (left, j)
            };
            if v_key <= son >> NODE_BITS {
                break;
            }
            heap[k] = son;
            k = at;
        }
        heap[k] = v;
    }

    fn construct_huffman_tree(&mut self, tree: &mut [Node], mut node: usize) {
        loop {
            // pqremove
            let n = self.heap[1];
            self.heap[1] = self.heap[self.heap_len];
            self.heap[self.heap_len] = u32::MAX;
            self.heap_len -= 1;
            self.pqdownheap(1);
            let m = self.heap[1];

            let (ni, mi) = ((n & 0x3ff) as usize, (m & 0x3ff) as usize);
            self.heap_max -= 1;
            self.sorted[self.heap_max] = ni as u16;
            self.heap_max -= 1;
            self.sorted[self.heap_max] = mi as u16;
            let freq = tree[ni].a.wrapping_add(tree[mi].a);
            tree[node].a = freq;
            let depth = ((n >> NODE_BITS) & 0xff).max((m >> NODE_BITS) & 0xff) + 1;
            tree[ni].b = node as u16;
            tree[mi].b = node as u16;
            self.heap[1] = entry(freq, depth, node);
            node += 1;
            self.pqdownheap(1);
            if self.heap_len < 2 {
                break;
            }
        }
        self.heap_max -= 1;
        self.sorted[self.heap_max] = (self.heap[1] & 0x3ff) as u16;
    }
}

/// `build_tree` up to the code lengths: returns max_code and the number of codes of each
/// length (for [`gen_codes`], needed only to emit dynamic trees), and updates `lens`. `used`
/// has a bit for each symbol of nonzero frequency; the others must have length 0 already.
fn build_tree(
    heap: &mut Heap,
    tree: &mut [Node],
    used: &[u64],
    desc: &Desc,
    lens: &mut Lens,
) -> (usize, [u16; MAX_BITS + 1]) {
    let mut max_code: isize = -1;
    heap.heap_len = 0;
    heap.heap_max = HEAP_SIZE;
    for_each_bit(used, |n| {
        heap.heap_len += 1;
        heap.heap[heap.heap_len] = entry(tree[n].a, 0, n);
        max_code = n as isize;
    });
    while heap.heap_len < 2 {
        heap.heap_len += 1;
        let node = if max_code < 2 {
            max_code += 1;
            max_code as usize
        } else {
            0
        };
        tree[node].a = 1;
        heap.heap[heap.heap_len] = entry(1, 0, node);
        lens.opt = lens.opt.wrapping_sub(1);
        if !desc.stree_len.is_empty() {
            lens.stat = lens.stat.wrapping_sub(desc.stree_len[node] as usize);
        }
    }
    heap.heap[heap.heap_len + 1] = u32::MAX;
    let max_code = max_code as usize;
    let mut k = heap.heap_len / 2;
    while k >= 1 {
        heap.pqdownheap(k);
        k -= 1;
    }
    heap.construct_huffman_tree(tree, desc.elems);
    (max_code, gen_bitlen(heap, tree, max_code, desc, lens))
}

fn gen_bitlen(
    heap: &mut Heap,
    tree: &mut [Node],
    max_code: usize,
    desc: &Desc,
    lens: &mut Lens,
) -> [u16; MAX_BITS + 1] {
    let max_length = desc.max_length;
    let mut bl_count = [0u16; MAX_BITS + 1];
    tree[heap.sorted[heap.heap_max] as usize].b = 0;
    let mut overflow: i32 = 0;
    for h in heap.heap_max + 1..HEAP_SIZE {
        let n = heap.sorted[h] as usize;
        let mut bits = tree[tree[n].b as usize].b + 1;
        if bits > max_length {
            bits = max_length;
            overflow += 1;
        }
        tree[n].b = bits;
        if n > max_code {
            continue;
        }
        bl_count[bits as usize] += 1;
        let xbits = if n >= desc.base {
            desc.extra[n - desc.base] as usize
        } else {
            0
        };
        let f = tree[n].a as usize;
        lens.opt = lens.opt.wrapping_add(f * (bits as usize + xbits));
        if !desc.stree_len.is_empty() {
            lens.stat = lens
                .stat
                .wrapping_add(f * (desc.stree_len[n] as usize + xbits));
        }
    }
    if overflow == 0 {
        return bl_count;
    }
    stat!(BL_OVERFLOW);
    loop {
        let mut bits = max_length as usize - 1;
        while bl_count[bits] == 0 {
            bits -= 1;
        }
        bl_count[bits] -= 1;
        bl_count[bits + 1] += 2;
        bl_count[max_length as usize] -= 1;
        overflow -= 2;
        if overflow <= 0 {
            break;
        }
    }
    let mut h = HEAP_SIZE;
    for bits in (1..=max_length).rev() {
        let mut n = bl_count[bits as usize];
        while n != 0 {
            h -= 1;
            let m = heap.sorted[h] as usize;
            if m > max_code {
                continue;
            }
            if tree[m].b != bits {
                lens.opt = lens.opt.wrapping_add(bits.wrapping_mul(tree[m].a) as usize);
                lens.opt = lens
                    .opt
                    .wrapping_sub(tree[m].b.wrapping_mul(tree[m].a) as usize);
                tree[m].b = bits;
            }
            n -= 1;
        }
    }
    bl_count
}

fn gen_codes(tree: &mut [Node], max_code: usize, bl_count: &[u16; MAX_BITS + 1]) {
    let mut next_code = [0u16; MAX_BITS + 1];
    let mut code = 0u16;
    for bits in 1..=MAX_BITS {
        code = code.wrapping_add(bl_count[bits - 1]) << 1;
        next_code[bits] = code;
    }
    for node in &mut tree[..=max_code] {
        let len = node.b;
        if len == 0 {
            continue;
        }
        node.a = next_code[len as usize].reverse_bits() >> (16 - len);
        next_code[len as usize] = next_code[len as usize].wrapping_add(1);
    }
}

/// `scan_tree`: counts the bit-length symbols of `tree` into `bl_tree` freqs.
fn scan_tree(bl_tree: &mut [Node], tree: &mut [Node], max_code: usize) {
    let mut prevlen: isize = -1;
    let mut nextlen = tree[0].b;
    let mut count: u16 = 0;
    let mut max_count = 7;
    let mut min_count = 4;
    if nextlen == 0 {
        max_count = 138;
        min_count = 3;
    }
    tree[max_code + 1].b = 0xffff;
    for n in 0..=max_code {
        let curlen = nextlen as isize;
        nextlen = tree[n + 1].b;
        count += 1;
        if count < max_count && curlen == nextlen as isize {
            continue;
        } else if count < min_count {
            bl_tree[curlen as usize].a += count;
        } else if curlen != 0 {
            if curlen != prevlen {
                bl_tree[curlen as usize].a += 1;
            }
            bl_tree[REP_3_6].a += 1;
        } else if count <= 10 {
            bl_tree[REPZ_3_10].a += 1;
        } else {
            bl_tree[REPZ_11_138].a += 1;
        }
        count = 0;
        prevlen = curlen;
        if nextlen == 0 {
            max_count = 138;
            min_count = 3;
        } else if curlen == nextlen as isize {
            max_count = 6;
            min_count = 3;
        } else {
            max_count = 7;
            min_count = 4;
        }
    }
}

/// Calls `f` with the index of every set bit.
#[inline(always)]
fn for_each_bit(words: &[u64], mut f: impl FnMut(usize)) {
    for (i, &word) in words.iter().enumerate() {
        let mut w = word;
        while w != 0 {
            f(i * 64 + w.trailing_zeros() as usize);
            w &= w - 1;
        }
    }
}

/// Calls `f(length, set)` for each run of equal bits among bits 0..end (end >= 1).
#[inline(always)]
fn for_each_run(words: &[u64], end: usize, mut f: impl FnMut(usize, bool)) {
    let mut set = words[0] & 1 == 1;
    let mut start = 0;
    let mut carry = words[0] & 1;
    for (i, &w) in words.iter().enumerate() {
        if i * 64 >= end {
            break;
        }
        // Bit j of `edges`: bit j differs from bit j - 1 (a run starts at j).
        let mut edges = w ^ (w << 1 | carry);
        carry = w >> 63;
        let left = end - i * 64;
        if left < 64 {
            edges &= (1 << left) - 1;
        }
        while edges != 0 {
            let at = i * 64 + edges.trailing_zeros() as usize;
            f(at - start, set);
            start = at;
            set = !set;
            edges &= edges - 1;
        }
    }
    f(end - start, set);
}

/// zlib's `static_len` of the block: the fixed-code bits of every symbol. (build_tree's forced
/// distance nodes subtract and then add back the same bits.)
fn static_bits(ltree: &[Node], dtree: &[Node], used: &Used) -> usize {
    let mut bits = 0;
    for_each_bit(&used.lit, |c| {
        let extra = if c > LITERALS {
            EXTRA_LBITS[c - LITERALS - 1] as usize
        } else {
            0
        };
        bits += ltree[c].a as usize * (STATIC_LLEN[c] as usize + extra);
    });
    for_each_bit(&[used.dist as u64], |c| {
        bits += dtree[c].a as usize * (STATIC_DLEN[c] as usize + EXTRA_DBITS[c] as usize);
    });
    bits
}

/// Which literal/length and distance codes the block uses.
#[derive(Clone, Copy, Default)]
struct Used {
    lit: [u64; 5],
    dist: u32,
}

/// Weights for [`huffman_bits`]: counts of the weights below 32, the others listed.
struct Weights {
    small: [u16; 32],
    big: [u16; L_CODES],
    nbig: usize,
}

impl Weights {
    fn new() -> Self {
        Weights {
            small: [0; 32],
            big: [0; L_CODES],
            nbig: 0,
        }
    }

    #[inline(always)]
    fn add(&mut self, w: u16) {
        if w < 32 {
            self.small[w as usize] += 1;
        } else {
            self.big[self.nbig] = w;
            self.nbig += 1;
        }
    }
}

/// Groups of equal weights `(weight, count)`, as queues for [`huffman_bits`].
type Groups = [(u32, u32); L_CODES + 2];

/// Cost in bits of an optimal (unrestricted) Huffman code for the weights: a lower bound of any
/// prefix code's, so of zlib's length-limited one. Unique, whatever the tie-breaking. Two-queue
/// construction over groups of equal weights (pairs of a group merge at once).
fn huffman_bits(weights: &mut Weights, leaves: &mut Groups, merged: &mut Groups) -> usize {
    let mut nl = 0;
    let mut total = 0;
    for (w, &c) in weights.small.iter().enumerate().skip(1) {
        if c > 0 {
            leaves[nl] = (w as u32, c as u32);
            nl += 1;
            total += c as usize;
        }
    }
    let big = &mut weights.big[..weights.nbig];
    big.sort_unstable();
    for &w in big.iter() {
        if nl > 0 && leaves[nl - 1].0 == w as u32 {
            leaves[nl - 1].1 += 1;
        } else {
            leaves[nl] = (w as u32, 1);
            nl += 1;
        }
        total += 1;
    }
    let (mut lh, mut mh, mut mt) = (0, 0, 0);
    let mut cost = 0;
    let push = |merged: &mut Groups, mt: &mut usize, mh: usize, w: u32, c: u32| {
        if *mt > mh && merged[*mt - 1].0 == w {
            merged[*mt - 1].1 += c;
        } else {
            merged[*mt] = (w, c);
            *mt += 1;
        }
    };
    while total > 1 {
        let from_leaves = lh < nl && (mh == mt || leaves[lh].0 <= merged[mh].0);
        let (w, c) = if from_leaves { leaves[lh] } else { merged[mh] };
        if c >= 2 {
            let pairs = c / 2;
            if from_leaves {
                leaves[lh].1 -= 2 * pairs;
                lh += (leaves[lh].1 == 0) as usize;
            } else {
                merged[mh].1 -= 2 * pairs;
                mh += (merged[mh].1 == 0) as usize;
            }
            cost += 2 * w as usize * pairs as usize;
            total -= pairs as usize;
            push(merged, &mut mt, mh, 2 * w, pairs);
        } else {
            if from_leaves {
                lh += 1;
            } else {
                mh += 1;
            }
            let from_leaves = lh < nl && (mh == mt || leaves[lh].0 <= merged[mh].0);
            let w2 = if from_leaves {
                leaves[lh].1 -= 1;
                let w2 = leaves[lh].0;
                lh += (leaves[lh].1 == 0) as usize;
                w2
            } else {
                merged[mh].1 -= 1;
                let w2 = merged[mh].0;
                mh += (merged[mh].1 == 0) as usize;
                w2
            };
            cost += (w + w2) as usize;
            total -= 1;
            push(merged, &mut mt, mh, w + w2, 1);
        }
    }
    cost
}

/// A lower bound of zlib's `opt_len` for the block (dynamic trees).
///
/// `opt_len` = data bits + header bits. The data bits are exact: with at most 1025 symbols no
/// code can exceed 15 bits, so zlib's trees are optimal Huffman codes, whose cost is unique.
/// The header is `14 + 3 * (max_blindex + 1)` bits plus the code lengths 0..=max_code of both
/// trees sent as bit-length symbols (scan_tree/send_tree) coded with zlib's bit-length tree,
/// whose cost is at least the optimal Huffman cost of the symbol counts; that cost grows with
/// each count and does not grow when two symbols' counts are pooled. Which entries are zero is
/// known, so the zero-run symbols (0, 17, 18) and their extra bits are exact. The nonzero
/// lengths depend on zlib's tie-breaking: they are counted as one pooled symbol, and as few as
/// repeats (16, needing a run of 4) could make them. max_blindex is at least that of the zero
/// symbols used, and 17 (symbol 1) when the distance tree has two codes, both of length 1.
fn dynamic_bits_lower_bound(
    ltree: &[Node],
    dtree: &[Node],
    used: &Used,
    leaves: &mut Groups,
    merged: &mut Groups,
) -> usize {
    let mut bits = 0;
    let mut weights = Weights::new();
    let mut l_max = 0;
    for_each_bit(&used.lit, |c| {
        let f = ltree[c].a;
        weights.add(f);
        l_max = c;
        if c > LITERALS {
            bits += f as usize * EXTRA_LBITS[c - LITERALS - 1] as usize;
        }
    });
    bits += huffman_bits(&mut weights, leaves, merged);

    // The distance tree; with fewer than two codes zlib adds code 0 or 1 of frequency 1 and
    // both codes get length 1.
    let mut d_used = used.dist;
    let k = d_used.count_ones();
    let mut weights = Weights::new();
    for_each_bit(&[d_used as u64], |c| {
        let f = dtree[c].a;
        weights.add(f);
        bits += f as usize * EXTRA_DBITS[c] as usize;
    });
    if k <= 2 {
        bits += weights
            .small
            .iter()
            .enumerate()
            .map(|(w, &c)| w * c as usize)
            .sum::<usize>();
        bits += weights.big[..weights.nbig]
            .iter()
            .map(|&w| w as usize)
            .sum::<usize>();
        let mut max_code = 31 - d_used.leading_zeros() as i32; // -1 when none
        for _ in k..2 {
            let node = if max_code < 2 {
                max_code += 1;
                max_code
            } else {
                0
            };
            d_used |= 1 << node;
        }
    } else {
        bits += huffman_bits(&mut weights, leaves, merged);
    }
    let d_max = 31 - d_used.leading_zeros() as usize;

    // Bit-length symbols from the zero/nonzero runs of both trees.
    let mut counts = [0u16; BL_CODES];
    let mut rep_bits = 0;
    let mut nonzero = 0u16;
    for (words, end) in [
        (&used.lit[..], l_max + 1),
        (&[d_used as u64][..], d_max + 1),
    ] {
        for_each_run(words, end, |r, set| {
            if set {
                nonzero += if r >= 4 {
                    1 + (r as u16 - 1).div_ceil(6)
                } else {
                    r as u16
                };
                return;
            }
            let mut z = r;
            while z >= 138 {
                counts[REPZ_11_138] += 1;
                rep_bits += 7;
                z -= 138;
            }
            if z >= 11 {
                counts[REPZ_11_138] += 1;
                rep_bits += 7;
            } else if z >= 3 {
                counts[REPZ_3_10] += 1;
                rep_bits += 3;
            } else {
                counts[0] += z as u16;
            }
        });
    }
    let mut max_blindex = (3..BL_CODES)
        .rev()
        .find(|&i| counts[BL_ORDER[i] as usize] > 0)
        .unwrap_or(3);
    if k <= 2 {
        max_blindex = 17;
    }
    let mut weights = Weights::new();
    for &c in counts.iter().chain([&nonzero]) {
        if c > 0 {
            weights.add(c);
        }
    }
    let symbols = weights.nbig + weights.small.iter().map(|&c| c as usize).sum::<usize>();
    bits += 5 + 5 + 4 + 3 * (max_blindex + 1) + rep_bits;
    bits += if symbols == 1 {
        // One symbol: zlib adds another; each use costs a bit.
        nonzero as usize
    } else {
        huffman_bits(&mut weights, leaves, merged)
    };
    bits
}

/// LSB-first bit writer.
struct Bits {
    out: Vec<u8>,
    buf: u64,
    n: u32,
}

impl Bits {
    #[inline(always)]
    fn put(&mut self, val: u64, len: u32) {
        self.buf |= val << self.n;
        self.n += len;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.buf as u32).to_le_bytes());
            self.buf >>= 32;
            self.n -= 32;
        }
    }

    fn align(&mut self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.buf.to_le_bytes()[..bytes]);
        self.buf = 0;
        self.n = 0;
    }

    #[inline(always)]
    fn code(&mut self, tree: &[Node], c: usize) {
        self.put(tree[c].a as u64, tree[c].b as u32);
    }

    /// `send_tree`.
    fn send_tree(&mut self, tree: &[Node], bl_tree: &[Node], max_code: usize) {
        let mut prevlen: isize = -1;
        let mut nextlen = tree[0].b;
        let mut count: u64 = 0;
        let mut max_count = 7;
        let mut min_count = 4;
        if nextlen == 0 {
            max_count = 138;
            min_count = 3;
        }
        for n in 0..=max_code {
            let curlen = nextlen;
            nextlen = tree[n + 1].b;
            count += 1;
            if count < max_count && curlen == nextlen {
                continue;
            } else if count < min_count {
                while count > 0 {
                    self.code(bl_tree, curlen as usize);
                    count -= 1;
                }
            } else if curlen != 0 {
                if curlen as isize != prevlen {
                    self.code(bl_tree, curlen as usize);
                    count -= 1;
                }
                self.code(bl_tree, REP_3_6);
                self.put(count - 3, 2);
            } else if count <= 10 {
                self.code(bl_tree, REPZ_3_10);
                self.put(count - 3, 3);
            } else {
                self.code(bl_tree, REPZ_11_138);
                self.put(count - 11, 7);
            }
            count = 0;
            prevlen = curlen as isize;
            if nextlen == 0 {
                max_count = 138;
                min_count = 3;
            } else if curlen == nextlen {
                max_count = 6;
                min_count = 3;
            } else {
                max_count = 7;
                min_count = 4;
            }
        }
    }
}

fn adler32(data: &[u8]) -> u32 {
    // MAX_INPUT is far below zlib's NMAX (5552), so one reduction at the end suffices.
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a += x as u32;
        b += a;
    }
    ((b % 65521) << 16) | (a % 65521)
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            head: [0; HEAD_SLOTS],
            prev: [0; MAX_INPUT],
            hashes: [0; MAX_INPUT],
            syms: [Sym::default(); MAX_INPUT],
            ltree: [Node::default(); HEAP_SIZE],
            dtree: [Node::default(); 2 * D_CODES + 1],
            bltree: [Node::default(); 2 * BL_CODES + 1],
            heap: Heap::new(),
            used: Used::default(),
            leaves: [(0, 0); L_CODES + 2],
            merged: [(0, 0); L_CODES + 2],
        }
    }

    fn compress(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        let n = input.len();
        let slots = (2 * n).next_power_of_two().clamp(16, HEAD_SLOTS);
        self.head[..slots].fill(0);
        self.prev[..n].fill(0);
        self.ltree.fill(Node::default());
        self.dtree.fill(Node::default());
        self.bltree.fill(Node::default());
        self.ltree[END_BLOCK].a = 1;
        self.used = Used::default();
        self.used.lit[END_BLOCK / 64] |= 1 << (END_BLOCK % 64);

        let nsyms = self.parse(input, slots)?;
        let syms = &self.syms[..nsyms];

        let mut bits = Bits {
            out: Vec::with_capacity(n + 16),
            buf: 0,
            n: 0,
        };
        bits.out.extend_from_slice(&[0x78, 0x9c]);

        let mut lens = Lens::default();
        let (opt_lenb, static_lenb, max_blindex, l_max, d_max);
        let mut l_count = [0u16; MAX_BITS + 1];
        let mut d_count = [0u16; MAX_BITS + 1];
        let mut bl_count = [0u16; MAX_BITS + 1];
        if syms.is_empty() {
            // zng_tr_flush_block: static_len = 7, opt_lenb = static_lenb = 0.
            opt_lenb = 0;
            static_lenb = 0;
            max_blindex = 0;
            l_max = 0;
            d_max = 0;
        } else {
            // zng_tr_flush_block compares byte counts: dynamic trees only when strictly
            // shorter than static ones. Most short inputs are decided by a lower bound of
            // the dynamic length, without building zlib's trees.
            let static_len = static_bits(&self.ltree, &self.dtree, &self.used);
            let s = (static_len + 3 + 7) >> 3;
            let lower = dynamic_bits_lower_bound(
                &self.ltree,
                &self.dtree,
                &self.used,
                &mut self.leaves,
                &mut self.merged,
            );
            let bound = (lower + 3 + 7) >> 3;
            if bound >= s {
                stat!(BOUND_DECIDES);
            }
            if bound >= s && !VERIFY_BOUND {
                static_lenb = s;
                opt_lenb = s;
                max_blindex = 0;
                l_max = 0;
                d_max = 0;
            } else {
                (l_max, l_count) = build_tree(
                    &mut self.heap,
                    &mut self.ltree,
                    &self.used.lit,
                    &L_DESC,
                    &mut lens,
                );
                let d_used = [self.used.dist as u64];
                (d_max, d_count) =
                    build_tree(&mut self.heap, &mut self.dtree, &d_used, &D_DESC, &mut lens);
                // build_bl_tree
                scan_tree(&mut self.bltree, &mut self.ltree, l_max);
                scan_tree(&mut self.bltree, &mut self.dtree, d_max);
                let mut bl_used = 0u64;
                for (i, node) in self.bltree[..BL_CODES].iter().enumerate() {
                    bl_used |= ((node.a > 0) as u64) << i;
                }
                bl_count = build_tree(
                    &mut self.heap,
                    &mut self.bltree,
                    &[bl_used],
                    &BL_DESC,
                    &mut lens,
                )
                .1;
                let mut mb = BL_CODES - 1;
                while mb >= 3 {
                    if self.bltree[BL_ORDER[mb] as usize].b != 0 {
                        break;
                    }
                    mb -= 1;
                }
                max_blindex = mb;
                lens.opt = lens.opt.wrapping_add(3 * (mb + 1) + 5 + 5 + 4);

                let o = lens.opt.wrapping_add(3 + 7) >> 3;
                static_lenb = lens.stat.wrapping_add(3 + 7) >> 3;
                opt_lenb = if static_lenb <= o { static_lenb } else { o };
                #[cfg(test)]
                {
                    assert_eq!(lens.stat, static_len, "static length");
                    assert!(lower <= lens.opt, "lower bound {lower} > {}", lens.opt);
                    if bound >= s {
                        assert_eq!(opt_lenb, static_lenb);
                    }
                }
            }
        }

        if n + 4 <= opt_lenb {
            stat!(STORED);
            // Stored block, last: header bits 001, aligned, LEN, NLEN, data.
            bits.put(1, 3);
            bits.align();
            bits.out.extend_from_slice(&(n as u16).to_le_bytes());
            bits.out.extend_from_slice(&(!(n as u16)).to_le_bytes());
            bits.out.extend_from_slice(input);
        } else if static_lenb == opt_lenb {
            stat!(FIXED);
            bits.put(0b011, 3);
            for s in syms {
                if s.dist == 0 {
                    let c = s.lc as usize;
                    bits.put(STATIC_LCODE[c] as u64, STATIC_LLEN[c] as u32);
                } else {
                    let code = LENGTH_CODE[s.lc as usize] as usize;
                    let c = code + LITERALS + 1;
                    bits.put(STATIC_LCODE[c] as u64, STATIC_LLEN[c] as u32);
                    let extra = EXTRA_LBITS[code] as u32;
                    if extra != 0 {
                        bits.put((s.lc - BASE_LENGTH[code]) as u64, extra);
                    }
                    let dist = s.dist as usize - 1;
                    let dc = d_code(dist);
                    bits.put(((dc as u16).reverse_bits() >> 11) as u64, 5);
                    let extra = EXTRA_DBITS[dc] as u32;
                    if extra != 0 {
                        bits.put((dist - BASE_DIST[dc] as usize) as u64, extra);
                    }
                }
            }
            bits.put(
                STATIC_LCODE[END_BLOCK] as u64,
                STATIC_LLEN[END_BLOCK] as u32,
            );
        } else {
            stat!(DYNAMIC);
            gen_codes(&mut self.ltree, l_max, &l_count);
            gen_codes(&mut self.dtree, d_max, &d_count);
            gen_codes(&mut self.bltree, BL_CODES - 1, &bl_count);
            bits.put(0b101, 3);
            let (lcodes, dcodes, blcodes) = (l_max + 1, d_max + 1, max_blindex + 1);
            bits.put(lcodes as u64 - 257, 5);
            bits.put(dcodes as u64 - 1, 5);
            bits.put(blcodes as u64 - 4, 4);
            for &o in &BL_ORDER[..blcodes] {
                bits.put(self.bltree[o as usize].b as u64, 3);
            }
            bits.send_tree(&self.ltree, &self.bltree, lcodes - 1);
            bits.send_tree(&self.dtree, &self.bltree, dcodes - 1);
            let (lt, dt) = (&self.ltree, &self.dtree);
            for s in syms {
                if s.dist == 0 {
                    bits.code(lt, s.lc as usize);
                } else {
                    let code = LENGTH_CODE[s.lc as usize] as usize;
                    bits.code(lt, code + LITERALS + 1);
                    let extra = EXTRA_LBITS[code] as u32;
                    if extra != 0 {
                        bits.put((s.lc - BASE_LENGTH[code]) as u64, extra);
                    }
                    let dist = s.dist as usize - 1;
                    let dc = d_code(dist);
                    bits.code(dt, dc);
                    let extra = EXTRA_DBITS[dc] as u32;
                    if extra != 0 {
                        bits.put((dist - BASE_DIST[dc] as usize) as u64, extra);
                    }
                }
            }
            bits.code(lt, END_BLOCK);
        }
        bits.align();
        bits.out.extend_from_slice(&adler32(input).to_be_bytes());
        Some(bits.out)
    }

    /// deflate_medium over the whole input (flush = Finish); fills `syms` and the literal and
    /// distance frequencies, and returns the number of symbols.
    fn parse(&mut self, win: &[u8], slots: usize) -> Option<usize> {
        let nh = win.len().saturating_sub(3);
        for (h, w) in self.hashes[..nh].iter_mut().zip(win.windows(4)) {
            *h = hash(u32::from_le_bytes([w[0], w[1], w[2], w[3]])) as u16;
        }
        let mut chains = Chains {
            win,
            hashes: &self.hashes[..nh],
            head: &mut self.head[..slots],
            mask: slots - 1,
            prev: &mut self.prev[..],
        };
        let syms = &mut self.syms;
        let ltree = &mut self.ltree;
        let dtree = &mut self.dtree;
        let used = &mut self.used;
        let mut nsyms = 0usize;

        let mut strstart = 0usize;
        let mut lookahead = win.len();
        let mut state_match_start: u16 = 0;
        let mut current = Match::default();
        let mut next = Match::default();

        loop {
            if lookahead < MIN_LOOKAHEAD {
                // fill_window has nothing more to read.
                if lookahead == 0 {
                    break;
                }
                if next.match_length > 0 {
                    stat!(DISCARDED_NEXT);
                }
                next.match_length = 0;
            }

            if next.match_length > 0 {
                current = next;
                next.match_length = 0;
            } else {
                let mut hash_head = 0;
                if lookahead >= WANT_MIN_MATCH {
                    hash_head = chains.insert(strstart)?;
                }
                current.strstart = strstart as u16;
                current.orgstart = current.strstart;
                let dist = strstart as i64 - hash_head as i64;
                if dist <= MAX_DIST as i64 && dist > 0 && hash_head != 0 {
                    let Found::Match(len, start) =
                        chains.longest_match(strstart, lookahead, hash_head, state_match_start)?
                    else {
                        // Cannot happen: here `lookahead` is exactly the remaining input.
                        return None;
                    };
                    state_match_start = start;
                    current.match_length = len as u16;
                    current.match_start = start;
                    if (current.match_length as usize) < WANT_MIN_MATCH {
                        current.match_length = 1;
                    }
                    if current.match_start >= current.strstart {
                        current.match_length = 1;
                    }
                } else {
                    current.match_start = 0;
                    current.match_length = 1;
                }
            }

            chains.insert_match(lookahead, current)?;

            if lookahead > MIN_LOOKAHEAD
                && ((current.strstart + current.match_length) as usize)
                    < (WINDOW_SIZE - MIN_LOOKAHEAD)
            {
                stat!(LOOK_AHEAD);
                strstart = (current.strstart + current.match_length) as usize;
                let hash_head = chains.insert(strstart)?;
                next.strstart = strstart as u16;
                next.orgstart = next.strstart;
                let dist = strstart as i64 - hash_head as i64;
                if dist <= MAX_DIST as i64 && dist > 0 && hash_head != 0 {
                    match chains.longest_match(strstart, lookahead, hash_head, state_match_start)? {
                        Found::Match(len, start) => {
                            state_match_start = start;
                            next.match_length = len as u16;
                            next.match_start = start;
                            if next.match_start >= next.strstart {
                                next.match_length = 1;
                            }
                            if (next.match_length as usize) < WANT_MIN_MATCH {
                                next.match_length = 1;
                            } else {
                                fizzle_matches(win, MAX_DIST, &mut current, &mut next);
                            }
                        }
                        Found::PastEnd => {
                            // zlib-rs finds some match of length m >= remaining = n - strstart
                            // (< 258) whose exact length and start depend on stale bytes. None
                            // of it reaches the output:
                            // * fizzle_matches could only change `current` by walking back
                            //   current.match_length - 1 steps while next.match_length stays
                            //   below 256, i.e. if remaining + current.match_length < 258;
                            //   but that sum is the previous lookahead, > MIN_LOOKAHEAD;
                            // * after emitting `current` the lookahead is `remaining` <
                            //   MIN_LOOKAHEAD, so the next round discards this match;
                            // * state.match_start only matters for results shorter than
                            //   WANT_MIN_MATCH, which become literals whatever it is.
                            if win.len() - strstart >= MIN_LOOKAHEAD {
                                return None;
                            }
                            stat!(PAST_END);
                            next.match_length = 1;
                        }
                    }
                } else {
                    next.match_start = 0;
                    next.match_length = 1;
                }
                strstart = current.strstart as usize;
            } else {
                next.match_length = 0;
            }

            // emit_match
            let len = current.match_length as usize;
            if len < WANT_MIN_MATCH {
                for &lc in win.get(strstart..strstart + len)? {
                    *syms.get_mut(nsyms)? = Sym { dist: 0, lc };
                    nsyms += 1;
                    ltree[lc as usize].a += 1;
                    used.lit[lc as usize / 64] |= 1 << (lc % 64);
                }
            } else {
                if len == STD_MAX_MATCH {
                    stat!(MATCH_258);
                }
                let dist = current.strstart.checked_sub(current.match_start)? as usize;
                let lc = (len - STD_MIN_MATCH) as u8;
                *syms.get_mut(nsyms)? = Sym {
                    dist: dist as u16,
                    lc,
                };
                nsyms += 1;
                let lcode = LENGTH_CODE[lc as usize] as usize + LITERALS + 1;
                ltree[lcode].a += 1;
                used.lit[lcode / 64] |= 1 << (lcode % 64);
                let dcode = d_code(dist.checked_sub(1)?);
                dtree[dcode].a += 1;
                used.dist |= 1 << dcode;
            }
            lookahead = lookahead.checked_sub(len)?;
            strstart += len;
        }
        Some(nsyms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::access_token2::{self as at2, Service, TokenContent};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use flate2::{Compress, Compression};

    fn zlib(c: &mut Compress, input: &[u8]) -> Vec<u8> {
        at2::deflate(c, input)
    }

    fn fresh() -> Compress {
        Compress::new(Compression::default(), true)
    }

    #[test]
    fn tables_match_rfc1951() {
        assert_eq!(LENGTH_CODE[0], 0);
        assert_eq!(LENGTH_CODE[8], 8);
        assert_eq!(LENGTH_CODE[254], 27);
        assert_eq!(LENGTH_CODE[255], 28);
        assert_eq!(BASE_LENGTH[27], 224);
        assert_eq!(d_code(0), 0);
        assert_eq!(d_code(4), 4);
        assert_eq!(d_code(255), 15);
        assert_eq!(d_code(256), 16);
        assert_eq!(d_code(32767), 29);
        assert_eq!(BASE_DIST[29], 24576);
        // Fixed literal 0 is 00110000 (sent reversed), END_BLOCK is 0000000.
        assert_eq!(STATIC_LCODE[0], 12);
        assert_eq!(STATIC_LCODE[END_BLOCK], 0);
        assert_eq!(STATIC_LCODE[144], 19);
        assert_eq!(STATIC_LCODE[280], 3);
    }

    #[test]
    fn empty_and_tiny_inputs() {
        let mut c = fresh();
        for input in [&b""[..], b"a", b"ab", b"abc", b"abcd", b"aaaaaaaaaaaa"] {
            assert_eq!(compress(input).unwrap(), zlib(&mut c, input), "{input:?}");
        }
        assert_eq!(compress(b"").unwrap(), [0x78, 0x9c, 3, 0, 0, 0, 0, 1]);
        assert!(compress(&[0; MAX_INPUT + 1]).is_none());
    }

    /// Agora's official vectors (see access_token2's tests).
    const VECTORS: [&str; 4] = [
        "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj",
        "007eJxTYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMADacImo=",
        "007eJxTYOAQsrQ5s3TfH+1tvy8zZZ46EpCc0V43JXdGd2jS8porKo4KDJbmBs6OxqYpqWYGySYmZiamSUmJqRaJRoamBmaGScbG7l8EGCKYGBgYGRgYmBgYGVgYGMF8JjDJDCZZwKQCg3mKuZGxmWlqkqWFsYmFqbGleapxqnGaZYqJmUFSSkoiF4ORhYWRsYmhkbkxyCyISZwMJanFJfGlxalFACKnKng=",
        "007eJxTYDhuGCT90E3Yo2+N3efJV5hX1K1MZAqae/Sa8UP9VXvOhfArMFiaGzg7GpumpJoZJJuYmJmYJiUlplokGhmaGpgZJhkbu38RYIhgYmBgZABhRgYWBkYwnwlMMoNJFjCpwGCeYm5kbGaammRpYWxiYWpsaZ5qnGqcZpliYmaQlJKSyMVgZGFhZGxiaGRuDACosyXL",
    ];

    #[test]
    fn official_vectors_take_the_fast_path() {
        let mut c = fresh();
        for v in VECTORS {
            let expected = STANDARD.decode(&v[3..]).unwrap();
            let payload = at2::parse(v).unwrap().payload;
            assert_eq!(compress(&payload).as_deref(), Some(&expected[..]));
            assert_eq!(zlib(&mut c, &payload), expected);
        }
    }

    fn hex32(rng: &mut fastrand::Rng) -> String {
        (0..32)
            .map(|_| char::from(b"0123456789abcdefABCDEF"[rng.usize(..22)]))
            .collect()
    }

    fn name(rng: &mut fastrand::Rng, max: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-:_~";
        (0..rng.usize(1..=max))
            .map(|_| char::from(CHARS[rng.usize(..CHARS.len())]))
            .collect()
    }

    fn privileges(rng: &mut fastrand::Rng, ids: &[u16], lifetime: u32) -> Vec<(u16, u32)> {
        let same = rng.u8(..4) != 0;
        let mut p = Vec::new();
        for &id in ids {
            if rng.u8(..3) != 0 {
                p.push((id, if same { lifetime } else { rng.u32(..) }));
            }
        }
        if p.is_empty() && rng.bool() {
            p.push((ids[0], lifetime));
        }
        p
    }

    /// Random token content shaped like real Agora tokens.
    fn random_content(rng: &mut fastrand::Rng) -> (TokenContent, String) {
        let lifetime = match rng.u8(..4) {
            0 => 3600,
            1 => 86400,
            2 => rng.u32(1..=604_800),
            _ => rng.u32(..),
        };
        let account = match rng.u8(..8) {
            0 => String::new(),
            1 => name(rng, 64),
            _ => rng.u32(1..).to_string(),
        };
        let channel = if rng.u8(..8) == 0 {
            format!("call-{}:{}", name(rng, 12), name(rng, 40))
        } else {
            name(rng, 63)
        };
        let mut services = vec![Service::Rtc {
            channel,
            account: account.clone(),
            privileges: privileges(rng, &[1, 2, 3, 4], lifetime),
        }];
        if rng.u8(..3) == 0 {
            let user_id = match rng.u8(..3) {
                0 if !account.is_empty() => account,
                _ => name(rng, 64),
            };
            services.push(Service::Rtm {
                user_id,
                privileges: privileges(rng, &[1], lifetime),
            });
            if rng.bool() {
                services.reverse();
            }
        }
        let content = TokenContent {
            app_id: hex32(rng),
            issue_ts: if rng.bool() {
                rng.u32(1_600_000_000..1_900_000_000)
            } else {
                rng.u32(..)
            },
            expire: lifetime,
            salt: rng.u32(1..=99_999_999),
            services,
        };
        (content, hex32(rng))
    }

    /// Builds `cases` random tokens; every token must equal `"007" + base64(zlib-rs(payload))`
    /// and every fast-path result must equal zlib-rs. Returns (fast-path hits, cases).
    fn realistic_tokens(seed: u64, cases: usize) -> (usize, usize) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut reused = fresh();
        let mut hits = 0;
        for i in 0..cases {
            let (content, cert) = random_content(&mut rng);
            let token = at2::build(&content, &cert).unwrap();
            let payload = at2::parse(&token).unwrap().payload;
            let expected = if i % 64 == 0 {
                zlib(&mut fresh(), &payload)
            } else {
                zlib(&mut reused, &payload)
            };
            assert_eq!(
                STANDARD.decode(&token[3..]).unwrap(),
                expected,
                "token {i}: {content:?}"
            );
            if let Some(fast) = compress(&payload) {
                assert_eq!(fast, expected, "case {i}: {content:?}");
                hits += 1;
            }
        }
        (hits, cases)
    }

    /// Random inputs of varied entropy and structure.
    fn random_input(rng: &mut fastrand::Rng, max_len: usize) -> Vec<u8> {
        let len = rng.usize(..=max_len);
        let alphabet: Vec<u8> = {
            let k = match rng.u8(..6) {
                0 => 1,
                1 => 2,
                2 => rng.usize(3..=8),
                3 => rng.usize(9..=40),
                _ => 256,
            };
            let mut all: Vec<u8> = (0..=255).collect();
            rng.shuffle(&mut all);
            all.truncate(k);
            all
        };
        let mut v = Vec::with_capacity(len);
        match rng.u8(..5) {
            // Uniform over the alphabet.
            0 | 1 => v.extend((0..len).map(|_| alphabet[rng.usize(..alphabet.len())])),
            // Skewed (roughly geometric) over the alphabet: varied code lengths.
            2 => v.extend((0..len).map(|_| {
                let mut i = 0;
                while i + 1 < alphabet.len() && rng.u8(..3) != 0 {
                    i += 1;
                }
                alphabet[i]
            })),
            // Copies of earlier material with mutations: long and overlapping matches.
            3 => {
                while v.len() < len {
                    if v.len() > 4 && rng.u8(..3) != 0 {
                        let start = rng.usize(..v.len());
                        let n = rng.usize(1..=300).min(len - v.len());
                        for k in 0..n {
                            let b = v[start + k % (v.len() - start)];
                            v.push(b);
                        }
                    } else {
                        let n = rng.usize(1..=16).min(len - v.len());
                        v.extend((0..n).map(|_| alphabet[rng.usize(..alphabet.len())]));
                    }
                }
            }
            // Runs.
            _ => {
                while v.len() < len {
                    let b = alphabet[rng.usize(..alphabet.len())];
                    let max_run = rng.usize(1..=300);
                    let n = rng.usize(1..=max_run).min(len - v.len());
                    v.extend(std::iter::repeat_n(b, n));
                }
            }
        }
        v
    }

    /// Returns (fast-path hits, cases).
    fn random_bytes(seed: u64, cases: usize, max_len: usize) -> (usize, usize) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut reused = fresh();
        let mut hits = 0;
        for i in 0..cases {
            let input = random_input(&mut rng, max_len);
            if !input.is_empty() && rng.u8(..4) == 0 {
                // Leave stale window bytes that continue the input, so that zlib-rs's
                // comparisons past the end of the input find more matching bytes.
                let mut history = input.clone();
                let tail = input[rng.usize(..input.len())..].to_vec();
                history.extend_from_slice(&tail);
                history.extend_from_slice(&tail);
                zlib(&mut reused, &history);
            }
            let expected = zlib(&mut reused, &input);
            if let Some(fast) = compress(&input) {
                assert_eq!(fast, expected, "case {i}: {input:?}");
                // Nor may the result differ from a compressor without history (zeroed window).
                if i % 16 == 0 {
                    assert_eq!(fast, zlib(&mut fresh(), &input), "case {i}: {input:?}");
                }
                hits += 1;
            } else {
                assert!(input.len() > MAX_INPUT, "case {i}: {input:?}");
            }
        }
        (hits, cases)
    }

    #[test]
    fn differential_realistic_tokens() {
        let (hits, cases) = realistic_tokens(1, 20_000);
        assert_eq!(hits, cases);
    }

    #[test]
    fn differential_random_bytes() {
        random_bytes(2, 20_000, 600);
        random_bytes(3, 2_000, MAX_INPUT + 16);
    }

    fn report(what: &str, (hits, cases): (usize, usize)) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = |c: &std::sync::atomic::AtomicUsize| c.load(Relaxed);
        println!(
            "{what}: fast path {hits}/{cases} ({:.4}%); blocks stored {} fixed {} dynamic {}; \
             bl overflow {}; look-ahead {} fizzled {} discarded {}; chain exhausted {}; \
             258-matches {}; look-ahead past the end {}; history-dependent {}; \
             decided by the lower bound {}",
            100.0 * hits as f64 / cases as f64,
            s(&stats::STORED),
            s(&stats::FIXED),
            s(&stats::DYNAMIC),
            s(&stats::BL_OVERFLOW),
            s(&stats::LOOK_AHEAD),
            s(&stats::FIZZLED),
            s(&stats::DISCARDED_NEXT),
            s(&stats::CHAIN_EXHAUSTED),
            s(&stats::MATCH_258),
            s(&stats::PAST_END),
            s(&stats::HISTORY_DEPENDENT),
            s(&stats::BOUND_DECIDES),
        );
    }

    /// The heavy run (600k cases, ~15 s optimized); use an optimized build:
    /// `cargo test -p callbridge --lib --release -- --ignored differential_heavy --nocapture`
    /// (or `--profile bench`, quicker to build).
    #[test]
    #[ignore]
    fn differential_heavy() {
        report("realistic tokens", realistic_tokens(11, 250_000));
        report("random bytes 0..=600", random_bytes(12, 250_000, 600));
        report(
            "random bytes 0..=1040",
            random_bytes(13, 100_000, MAX_INPUT + 16),
        );
    }
}
