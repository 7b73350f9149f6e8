//! The local heads' attention window: the one definition of which keys a
//! local LGTE head may attend to.
//!
//! Query `j` of a sequence of `t` steps reads the keys
//! `clamp(j + o, 0, t - 1)` for the offsets `o` of [`window_offsets`]
//! (`-w/2 ..= w - 1 - w/2`, integer division). Near the ends of the sequence
//! the clamped positions repeat; like the release's boolean mask, a repeated
//! position counts once (the window is cut, not re-weighted, at the ends).

/// The `w` offsets of a window of size `w` around its query: `m - w/2` for
/// `m` in `0..w`.
pub fn window_offsets(w: usize) -> Vec<i64> {
    (0..w as i64).map(|m| m - (w / 2) as i64).collect()
}

/// The key position of window slot `m` for query `j` in `t` steps.
fn slot_key(j: usize, m: i64, t: usize) -> i64 {
    (j as i64 + m).clamp(0, t as i64 - 1)
}

/// The distinct key positions query `j` may attend to, ascending.
pub fn local_window_keys(j: usize, t: usize, w: usize) -> Vec<usize> {
    let mut keys: Vec<usize> = window_offsets(w)
        .into_iter()
        .map(|m| slot_key(j, m, t) as usize)
        .collect();
    keys.dedup();
    keys
}

/// The window of every query as a table: slot `m` of query `j` at `j * w + m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowTable {
    /// Key position of each slot (`[t, w]` row-major).
    pub index: Vec<i64>,
    /// True where a slot repeats the key of the slot before (clamped at an
    /// edge): such a slot must not count (its score is −inf).
    pub repeated: Vec<bool>,
}

/// The [`WindowTable`] of a sequence of `t` steps and window `w`.
pub fn window_table(t: usize, w: usize) -> WindowTable {
    let offsets = window_offsets(w);
    let mut index = Vec::with_capacity(t * w);
    let mut repeated = Vec::with_capacity(t * w);
    for j in 0..t {
        for (m, &o) in offsets.iter().enumerate() {
            let key = slot_key(j, o, t);
            repeated.push(m > 0 && index.last() == Some(&key));
            index.push(key);
        }
    }
    WindowTable { index, repeated }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_window_cut_at_the_ends() {
        assert_eq!(window_offsets(9), vec![-4, -3, -2, -1, 0, 1, 2, 3, 4]);
        assert_eq!(window_offsets(4), vec![-2, -1, 0, 1]);
        assert_eq!(local_window_keys(0, 20, 9), vec![0, 1, 2, 3, 4]);
        assert_eq!(local_window_keys(10, 20, 9), (6..=14).collect::<Vec<_>>());
        assert_eq!(local_window_keys(19, 20, 9), vec![15, 16, 17, 18, 19]);
        assert_eq!(local_window_keys(1, 3, 9), vec![0, 1, 2]);
    }

    #[test]
    fn table_marks_each_repeat_once() {
        let t = window_table(6, 5);
        assert_eq!(&t.index[..5], &[0, 0, 0, 1, 2]);
        assert_eq!(&t.repeated[..5], &[false, true, true, false, false]);
        for j in 0..6 {
            let kept: Vec<usize> = (0..5)
                .filter(|&m| !t.repeated[j * 5 + m])
                .map(|m| t.index[j * 5 + m] as usize)
                .collect();
            assert_eq!(kept, local_window_keys(j, 6, 5), "query {j}");
        }
    }
}
